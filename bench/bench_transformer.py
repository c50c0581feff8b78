"""Time one training step of the small character transformer against PyTorch (CPU).

The model: `backprop.attention.CharTransformer` (token embedding + learned positions, 2 pre-norm
causal blocks of 4-head attention and a GELU MLP of width 4E, final LayerNorm, linear head),
vocabulary 94 (the characters of `backprop.data.load_text()`), E = 64, context 64, batch 32,
the size lesson 12 trains. A step is forward, sequence cross-entropy, backward and an Adam
update. The PyTorch model is the same network written with nn.Embedding, nn.LayerNorm,
nn.MultiheadAttention(batch_first=True), nn.Linear and nn.GELU(approximate="tanh"), starting
from the same weights (checked: the same first loss). The two steps are timed in alternation in
this one process, so a busy machine slows both alike; each figure is the median over many steps
after a warm-up. float64, one thread (NumPy's BLAS via threadpoolctl, PyTorch via
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

VOCAB, EMBED, HEADS, LAYERS, CONTEXT, BATCH, LR = 94, 64, 4, 2, 64, 32, 3e-3


def batch_of_text(rng):
    """A batch of BATCH windows of CONTEXT + 1 characters of the course's text, as ids."""
    text = load_text()
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    ids = np.array([index[c] for c in text])
    starts = rng.integers(0, len(ids) - CONTEXT - 1, BATCH)
    window = ids[starts[:, None] + np.arange(CONTEXT + 1)]
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


def time_step(repeats, warmup):
    """``(library (wall, cpu) seconds, PyTorch's or None)`` per step, one thread."""
    ids, targets, vocab = batch_of_text(np.random.default_rng(0))
    with threadpool_limits(1) if threadpool_limits else nullcontext():
        if torch is not None:
            torch.set_num_threads(1)
        model = CharTransformer(vocab, EMBED, HEADS, LAYERS, CONTEXT,
                                rng=np.random.default_rng(1))
        steps = {"library": library_step(model, ids, targets)}
        if torch is not None:
            steps["torch"] = torch_step(torch_model(model), ids, targets)
            first = steps["library"](), steps["torch"]()
            if not np.isclose(first[0], first[1], rtol=1e-10):
                raise RuntimeError(f"the two models disagree: first losses {first}")
            again = steps["library"](), steps["torch"]()  # after one Adam update each
            if not np.isclose(again[0], again[1], rtol=1e-8):
                raise RuntimeError(f"the two models disagree after an update: losses {again}")
        medians = alternating_medians(steps, repeats, warmup)
    return medians["library"], medians.get("torch"), vocab


def report(repeats=60, warmup=5):
    (lib, lib_cpu), theirs, vocab = time_step(repeats, warmup)
    ms = lambda seconds: f"{seconds * 1e3:.1f}"  # noqa: E731
    if theirs is None:
        row = f"{ms(lib)} | n/a | n/a | {ms(lib_cpu)} | n/a | n/a"
    else:
        row = (f"{ms(lib)} | {ms(theirs[0])} | {lib / theirs[0]:.2f} | {ms(lib_cpu)} | "
               f"{ms(theirs[1])} | {lib_cpu / theirs[1]:.2f}")
    lines = machine_lines(torch) + [
        "", f"Character transformer training step (forward, sequence cross-entropy, backward, "
        f"Adam update): vocabulary {vocab}, E = {EMBED}, {HEADS} heads, {LAYERS} pre-norm "
        f"causal blocks (MLP 4E, GELU), context {CONTEXT}, batch {BATCH}; float64, one thread. "
        f"Median of {repeats} steps after {warmup} warm-up steps, the two timed in alternation, "
        "step by step. ratio = backprop time / PyTorch time (below 1: backprop is faster); CPU: "
        "the same with CPU time (time.process_time), which other programs on the machine "
        "barely disturb.", "",
        "| model | backprop ms/step | PyTorch ms/step | ratio | backprop CPU ms | "
        "PyTorch CPU ms | CPU ratio |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| CharTransformer | {row} |"]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = bench_arguments(__doc__.splitlines()[0], repeats=60, warmup=5)
    args = parser.parse_args(argv)
    emit_report(report(args.repeats, args.warmup), args.output)


if __name__ == "__main__":
    main()
