"""Time one training step of a deep residual MLP with normalization against PyTorch (CPU).

The model: Linear(64, D), then 8 pre-norm residual blocks ``x + Linear(ReLU(Linear(norm(x))))``
of width D with LayerNorm or BatchNorm1d, then a final norm and Linear(D, 10): 35 layers on a
batch of 64 digit-sized inputs. A step is forward, softmax cross-entropy, backward and an SGD
update. Both models start from the same weights (checked: the same first loss). The library's
and PyTorch's steps are timed in alternation in this one process, so a busy machine slows both
alike; each figure is the median over many steps after a warm-up. One thread (NumPy's BLAS via
threadpoolctl, PyTorch via torch.set_num_threads). Without PyTorch only the library is timed.

    python bench/bench_norm.py                    # prints a Markdown report
    python bench/bench_norm.py --output FILE      # also writes it to FILE
    python bench/bench_norm.py --floor            # and the same step in plain NumPy (the floor)
"""
from contextlib import nullcontext

import numpy as np
from machine import (alternating_medians, bench_arguments, emit_report, machine_lines,
                     threadpool_limits, torch)

from backprop.layers import Linear, ReLU, Sequential
from backprop.losses import softmax_cross_entropy
from backprop.normalization import BatchNorm1d, LayerNorm
from backprop.optim import SGD
from backprop.residual import Residual


BATCH, INPUT, CLASSES, BLOCKS, LR = 64, 64, 10, 8, 0.01
NORMS = {"LayerNorm": (LayerNorm, "LayerNorm"), "BatchNorm1d": (BatchNorm1d, "BatchNorm1d")}


def library_model(norm, width, rng):
    """The residual MLP in backprop, float64."""
    norm_cls = NORMS[norm][0]
    blocks = [Residual(Sequential(Linear(width, width, rng=rng), ReLU(),
                                  Linear(width, width, rng=rng)), norm=norm_cls(width))
              for _ in range(BLOCKS)]
    return Sequential(Linear(INPUT, width, rng=rng), *blocks, norm_cls(width),
                      Linear(width, CLASSES, rng=rng))


def torch_model(ours, norm):
    """The same network in PyTorch, with `ours`'s weights (PyTorch stores W as (out, in))."""
    nn = torch.nn

    class PreNormResidual(nn.Module):
        def __init__(self, block, norm_layer):
            super().__init__()
            self.block, self.norm = block, norm_layer

        def forward(self, x):
            return x + self.block(self.norm(x))

    def linear(layer):
        theirs = nn.Linear(layer.in_features, layer.out_features, dtype=torch.float64)
        with torch.no_grad():
            theirs.weight.copy_(torch.from_numpy(layer.params["W"].T.copy()))
            theirs.bias.copy_(torch.from_numpy(layer.params["b"]))
        return theirs

    def norm_layer(layer):
        return getattr(nn, NORMS[norm][1])(layer.params["weight"].shape[0], dtype=torch.float64)

    modules = [linear(ours[0])]
    for residual in ours.layers[1:-2]:
        block = residual.block
        modules.append(PreNormResidual(nn.Sequential(linear(block[0]), nn.ReLU(),
                                                     linear(block[2])), norm_layer(residual.norm)))
    modules += [norm_layer(ours[-2]), linear(ours[-1])]
    return nn.Sequential(*modules)


def library_step(model, x, y):
    optimizer = SGD(model, lr=LR)

    def step():
        loss, dlogits = softmax_cross_entropy(model.forward(x), y)
        model.backward(dlogits, input_grad=False)  # as fit: no dx for the data (nor in PyTorch)
        optimizer.step()
        return float(loss)
    return step


def torch_step(model, x, y):
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(xt), yt)
        loss.backward()
        optimizer.step()
        return loss.item()
    return step


def numpy_floor_step(model, x, y):
    """The library step's arithmetic for the LayerNorm model written out in plain NumPy: the
    same products, norm formulas, ReLU, softmax and SGD update on the model's own arrays, in
    one function, with no layer objects, checks or parameter walk (``--floor``). What is left
    is the cost of the NumPy calls themselves: the floor of any NumPy layer library."""
    first, last, final = model[0].params, model[-1].params, model[-2].params
    blocks = [(r.norm.params["weight"], r.norm.params["bias"], r.block[0].params["W"],
               r.block[0].params["b"], r.block[2].params["W"], r.block[2].params["b"])
              for r in model.layers[1:-2]]
    width = first["W"].shape[1]
    ones, mean_weights, rows = np.ones(len(x)), np.full(width, 1.0 / width), np.arange(len(x))

    def norm_forward(h, weight, bias):
        xc = h - h.dot(mean_weights)[:, None]
        inv_std = ((np.vecdot(xc, xc) * (1.0 / width) + 1e-5) ** -0.5)[:, None]
        xc *= inv_std
        out = xc * weight
        out += bias
        return out, xc, inv_std

    def norm_backward(dout, xhat, inv_std, weight):
        dout_xhat = dout * xhat
        dweight, dbias = ones.dot(dout_xhat), ones.dot(dout)
        to_mean = inv_std * (1.0 / width)
        along = to_mean * dout_xhat.dot(weight)[:, None]
        shift = to_mean * dout.dot(weight)[:, None]
        dx = dout * weight
        dx *= inv_std
        dx -= np.multiply(xhat, along, dout_xhat)
        dx -= shift
        return dx, dweight, dbias

    def step():
        h = x @ first["W"]
        h += first["b"]
        kept = []
        for weight, bias, W1, b1, W2, b2 in blocks:
            n, xhat, inv_std = norm_forward(h, weight, bias)
            a = n @ W1
            a += b1
            r = np.maximum(a, 0)
            f = r @ W2
            f += b2
            kept.append((n, xhat, inv_std, r))
            h = h + f
        n, xhat, inv_std = norm_forward(h, final["weight"], final["bias"])
        logits = n @ last["W"]
        logits += last["b"]
        shifted = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        sums = exp.sum(axis=1, keepdims=True)
        loss = np.log(sums).sum() / len(x) - shifted[rows, y].sum() / len(x)
        exp /= sums
        exp[rows, y] -= 1
        exp /= len(x)
        grads = [(last["W"], n.T @ exp), (last["b"], ones.dot(exp))]
        d = exp @ last["W"].T
        d, dweight, dbias = norm_backward(d, xhat, inv_std, final["weight"])
        grads += [(final["weight"], dweight), (final["bias"], dbias)]
        for (weight, bias, W1, b1, W2, b2), (n, xhat, inv_std, r) in zip(blocks[::-1],
                                                                         kept[::-1]):
            grads += [(W2, r.T @ d), (b2, ones.dot(d))]
            da = (d @ W2.T) * (r > 0)
            grads += [(W1, n.T @ da), (b1, ones.dot(da))]
            dh, dweight, dbias = norm_backward(da @ W1.T, xhat, inv_std, weight)
            grads += [(weight, dweight), (bias, dbias)]
            d = d + dh
        grads += [(first["W"], x.T @ d), (first["b"], ones.dot(d))]
        for param, grad in grads:
            param -= LR * grad
        return float(loss)
    return step


def time_rows(repeats, warmup, widths, floor=False):
    """Rows ``(norm, width, library (wall, cpu) seconds, PyTorch's or None)``, one thread."""
    rng = np.random.default_rng(0)
    x, y = rng.random((BATCH, INPUT)), rng.integers(0, CLASSES, BATCH)
    rows = []
    with threadpool_limits(1) if threadpool_limits else nullcontext():
        if torch is not None:
            torch.set_num_threads(1)
        for norm in NORMS:
            for width in widths:
                model = library_model(norm, width, np.random.default_rng(1))
                steps = {"library": library_step(model, x, y)}
                if torch is not None:
                    steps["torch"] = torch_step(torch_model(model, norm), x, y)
                    first = steps["library"](), steps["torch"]()
                    if not np.isclose(first[0], first[1], rtol=1e-10):
                        raise RuntimeError(f"the two models disagree: first losses {first}")
                if floor and norm == "LayerNorm":
                    twin = library_model(norm, width, np.random.default_rng(1))
                    steps["floor"] = numpy_floor_step(twin, x, y)
                    fresh = library_model(norm, width, np.random.default_rng(1))
                    if steps["floor"]() != library_step(fresh, x, y)():  # bit for bit
                        raise RuntimeError("the NumPy floor step computes another loss")
                medians = alternating_medians(steps, repeats, warmup)
                rows.append((norm, width, medians["library"], medians.get("torch"),
                             medians.get("floor")))
    return rows


def report(repeats=300, warmup=30, widths=(64, 128), floor=False):
    rows = time_rows(repeats, warmup, widths, floor)
    ms = lambda seconds: f"{seconds * 1e3:.3f}"  # noqa: E731
    lines = machine_lines(torch) + [
        "", f"Deep residual MLP training step (forward, softmax cross-entropy, backward, SGD "
        f"update): Linear({INPUT}, D), {BLOCKS} pre-norm blocks x + Linear(ReLU(Linear(norm(x))))"
        f", norm, Linear(D, {CLASSES}); batch {BATCH}, float64, one thread. Median of {repeats} "
        f"steps after {warmup} warm-up steps, the two timed in alternation, step by step. "
        "ratio = backprop time / PyTorch time (below 1: backprop is faster); CPU ratio: the "
        "same with CPU time (time.process_time), which other programs on the machine barely "
        "disturb.", "",
        "| norm | width D | backprop ms/step | PyTorch ms/step | ratio | CPU ratio |"
        + (" NumPy floor CPU ratio |" if floor else ""),
        "| --- | ---: | ---: | ---: | ---: | ---: |" + (" ---: |" if floor else "")]
    for norm, width, (lib, lib_cpu), theirs, bare in rows:
        compared = ("n/a | n/a | n/a" if theirs is None else
                    f"{ms(theirs[0])} | {lib / theirs[0]:.2f} | {lib_cpu / theirs[1]:.2f}")
        if floor:
            compared += (" | n/a" if bare is None or theirs is None
                         else f" | {bare[1] / theirs[1]:.2f}")
        lines.append(f"| {norm} | {width} | {ms(lib)} | {compared} |")
    if floor:
        lines += ["", "NumPy floor: the LayerNorm step's arithmetic in plain NumPy, without the "
                  "library (`numpy_floor_step`), timed in the same alternation."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = bench_arguments(__doc__.splitlines()[0], repeats=300, warmup=30)
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 128],
                        help="widths D of the residual blocks, one row each")
    parser.add_argument("--floor", action="store_true",
                        help="also time the LayerNorm step written in plain NumPy (the floor)")
    args = parser.parse_args(argv)
    emit_report(report(args.repeats, args.warmup, args.widths, args.floor), args.output)


if __name__ == "__main__":
    main()
