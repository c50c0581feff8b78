"""Time one training step of the small character transformer against PyTorch (CPU).

The model: `backprop.attention.CharTransformer` (token embedding + learned positions, pre-norm
causal blocks of 4-head attention and a GELU MLP of width 4E, final LayerNorm, linear head),
vocabulary 94 (the characters of `backprop.data.load_text()`), batch 32, in two sizes: the one
lesson 12 trains (E = 32, 1 block, context 32) and a small GPT (E = 64, 2 blocks, context 64).
A step is forward, sequence cross-entropy, backward and an Adam update. The PyTorch model is
the same network written with nn.Embedding, nn.LayerNorm, nn.MultiheadAttention(batch_first=True),
nn.Linear and nn.GELU(approximate="tanh"), starting from the same weights (checked: the same
first loss, and the same loss after one update). The two steps are timed in alternation in this
one process, so a busy machine slows both alike; each figure is the median over many steps after
a warm-up. float64, one thread (NumPy's BLAS via threadpoolctl, PyTorch via
torch.set_num_threads). Without PyTorch only the library is timed.

    python bench/bench_transformer.py                 # prints a Markdown report
    python bench/bench_transformer.py --output FILE   # also writes it to FILE
"""
from contextlib import nullcontext

import numpy as np
from machine import (alternating_medians, bench_arguments, emit_report, machine_lines,
                     threadpool_limits, torch)

from backprop.attention import CharTransformer
from backprop.data import load_text
from backprop.optim import Adam
from backprop.sequence import sequence_cross_entropy

HEADS, BATCH, LR = 4, 32, 3e-3
# name: (embed_dim E, blocks, context); the vocabulary is the text's 94 characters
SIZES = {"lesson 12": (32, 1, 32), "small GPT": (64, 2, 64)}


def batch_of_text(rng, context):
    """A batch of BATCH windows of context + 1 characters of the course's text, as ids."""
    text = load_text()
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    ids = np.array([index[c] for c in text])
    starts = rng.integers(0, len(ids) - context - 1, BATCH)
    window = ids[starts[:, None] + np.arange(context + 1)]
    return window[:, :-1], window[:, 1:], len(chars)


def torch_model(ours):
    """The same network in PyTorch, with `ours`'s weights (Linear's W transposed: PyTorch
    stores (out, in)); MultiheadAttention's parameters have the same names and layouts."""
    nn = torch.nn
    E = ours.embed_dim

    def copy(param, array):
        with torch.no_grad():
            param.copy_(torch.from_numpy(np.ascontiguousarray(array)))

    def linear(temporal):
        layer = temporal.layer
        theirs = nn.Linear(layer.in_features, layer.out_features, dtype=torch.float64)
        copy(theirs.weight, layer.params["W"].T)
        copy(theirs.bias, layer.params["b"])
        return theirs

    def layer_norm(norm):
        theirs = nn.LayerNorm(E, dtype=torch.float64)
        copy(theirs.weight, norm.params["weight"])
        copy(theirs.bias, norm.params["bias"])
        return theirs

    class Block(nn.Module):
        def __init__(self, block):
            super().__init__()
            self.ln1, self.ln2 = layer_norm(block.ln1), layer_norm(block.ln2)
            heads = block.attn.num_heads
            self.attn = nn.MultiheadAttention(E, heads, batch_first=True, dtype=torch.float64)
            copy(self.attn.in_proj_weight, block.attn.params["in_proj_weight"])
            copy(self.attn.in_proj_bias, block.attn.params["in_proj_bias"])
            copy(self.attn.out_proj.weight, block.attn.params["out_proj_weight"])
            copy(self.attn.out_proj.bias, block.attn.params["out_proj_bias"])
            self.mlp = nn.Sequential(linear(block.mlp[0]), nn.GELU(approximate="tanh"),
                                     linear(block.mlp[2]))

        def forward(self, x, mask):
            a = self.ln1(x)
            h = x + self.attn(a, a, a, attn_mask=mask, need_weights=False)[0]
            return h + self.mlp(self.ln2(h))

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok_emb = nn.Embedding(ours.vocab_size, E, dtype=torch.float64)
            copy(self.tok_emb.weight, ours.tok_emb.params["W"])
            self.pos_emb = nn.Parameter(torch.from_numpy(ours.pos_emb.params["weight"].copy()))
            self.blocks = nn.ModuleList(Block(block) for block in ours.blocks)
            self.ln_f = layer_norm(ours.ln_f)
            self.head = linear(ours.head)

        def forward(self, ids):
            L = ids.shape[1]
            mask = torch.triu(torch.ones(L, L, dtype=torch.bool), 1)  # True: may not attend
            x = self.tok_emb(ids) + self.pos_emb[:L]
            for block in self.blocks:
                x = block(x, mask)
            return self.head(self.ln_f(x))

    return Model()


def library_step(model, ids, targets):
    optimizer = Adam(model, lr=LR)

    def step():
        loss, dlogits = sequence_cross_entropy(model.forward(ids), targets)
        model.backward(dlogits)  # returns None: the ids have no gradient
        optimizer.step()
        return float(loss)
    return step


def torch_step(model, ids, targets):
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    ids_t, targets_t = torch.from_numpy(ids), torch.from_numpy(targets)

    def step():
        optimizer.zero_grad(set_to_none=True)
        logits = model(ids_t)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                 targets_t.reshape(-1))
        loss.backward()
        optimizer.step()
        return loss.item()
    return step


def time_rows(repeats, warmup, sizes):
    """Rows ``(size name, parameters, library (wall, cpu) seconds, PyTorch's or None)``."""
    rows = []
    with threadpool_limits(1) if threadpool_limits else nullcontext():
        if torch is not None:
            torch.set_num_threads(1)
        for name in sizes:
            embed, layers, context = SIZES[name]
            ids, targets, vocab = batch_of_text(np.random.default_rng(0), context)
            model = CharTransformer(vocab, embed, HEADS, layers, context,
                                    rng=np.random.default_rng(1))
            steps = {"library": library_step(model, ids, targets)}
            if torch is not None:
                steps["torch"] = torch_step(torch_model(model), ids, targets)
                first = steps["library"](), steps["torch"]()
                if not np.isclose(first[0], first[1], rtol=1e-10):
                    raise RuntimeError(f"the two models disagree: first losses {first}")
                again = steps["library"](), steps["torch"]()  # after one Adam update each
                if not np.isclose(again[0], again[1], rtol=1e-8):
                    raise RuntimeError(f"the two models disagree after an update: {again}")
            medians = alternating_medians(steps, repeats, warmup)
            rows.append((name, model.num_parameters(), medians["library"],
                         medians.get("torch")))
    return rows


def report(repeats=60, warmup=5, sizes=tuple(SIZES)):
    rows = time_rows(repeats, warmup, sizes)
    ms = lambda seconds: f"{seconds * 1e3:.1f}"  # noqa: E731
    lines = machine_lines(torch) + [
        "", f"Character transformer training step (forward, sequence cross-entropy, backward, "
        f"Adam update): vocabulary 94, {HEADS} heads, pre-norm causal blocks (MLP 4E, GELU), "
        f"batch {BATCH}; float64, one thread. Median of {repeats} steps after {warmup} warm-up "
        "steps, the two timed in alternation, step by step. ratio = backprop time / PyTorch "
        "time (below 1: backprop is faster); CPU: the same with CPU time (time.process_time), "
        "which other programs on the machine barely disturb.", "",
        "| model | E | blocks | context | parameters | backprop ms/step | PyTorch ms/step | "
        "ratio | backprop CPU ms | PyTorch CPU ms | CPU ratio |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, count, (lib, lib_cpu), theirs in rows:
        embed, layers, context = SIZES[name]
        if theirs is None:
            timing = f"{ms(lib)} | n/a | n/a | {ms(lib_cpu)} | n/a | n/a"
        else:
            timing = (f"{ms(lib)} | {ms(theirs[0])} | {lib / theirs[0]:.2f} | {ms(lib_cpu)} | "
                      f"{ms(theirs[1])} | {lib_cpu / theirs[1]:.2f}")
        lines.append(f"| {name} | {embed} | {layers} | {context} | {count:,} | {timing} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = bench_arguments(__doc__.splitlines()[0], repeats=60, warmup=5)
    parser.add_argument("--sizes", nargs="+", choices=list(SIZES), default=list(SIZES),
                        help="model sizes to time, one row each")
    args = parser.parse_args(argv)
    emit_report(report(args.repeats, args.warmup, args.sizes), args.output)


if __name__ == "__main__":
    main()
