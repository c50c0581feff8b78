"""Time one training step of the library's RNN against torch.nn.RNN (CPU).

The model reads a batch of 32 sequences of 50 steps with 16 features into a tanh RNN with 64
hidden units; a linear readout on the last hidden state predicts one number, trained with MSE.
A step is forward, loss, backward through time and an SGD update in place. Both models start
from the same weights (checked: same loss). Library and PyTorch steps are timed in alternation,
so a busy machine slows both alike; each figure is the median over many steps after a warm-up.
Each row uses the same number of threads on both sides (NumPy's BLAS via threadpoolctl, PyTorch
via torch.set_num_threads). PyTorch is optional: without it only the library is timed.

    python bench/bench_rnn.py                    # prints a Markdown report
    python bench/bench_rnn.py --output FILE      # also writes it to FILE
    python bench/bench_rnn.py --threads 1        # single-threaded rows only
"""
import argparse
import os
import statistics
import time
from contextlib import nullcontext

import numpy as np
from machine import emit_report, machine_lines, threadpool_limits, torch

from backprop.layers import Linear
from backprop.losses import mse_loss
from backprop.optim import SGD
from backprop.rnn import RNN


BATCH, STEPS, INPUT, HIDDEN, LR = 32, 50, 16, 64, 0.01


def library_step(x, y, dtype):
    """A closure running one training step of the library model, and the model's layers."""
    rng = np.random.default_rng(1)
    rnn, readout = RNN(INPUT, HIDDEN, rng=rng, dtype=dtype), Linear(HIDDEN, 1, rng=rng, dtype=dtype)
    optimizers = [SGD(rnn, lr=LR), SGD(readout, lr=LR)]
    dout = np.zeros((BATCH, STEPS, HIDDEN), dtype=dtype)  # only the last step feeds the loss

    def step():
        hidden = rnn.forward(x)
        loss, dpred = mse_loss(readout.forward(hidden[:, -1]), y)
        dout[:, -1] = readout.backward(dpred)
        rnn.backward(dout)
        for optimizer in optimizers:
            optimizer.step()
        return loss
    return step, rnn, readout


def torch_step(x, y, rnn, readout):
    """The same step in PyTorch, starting from the library model's weights."""
    dtype = torch.from_numpy(x).dtype
    model = torch.nn.RNN(INPUT, HIDDEN, nonlinearity="tanh", batch_first=True).to(dtype)
    head = torch.nn.Linear(HIDDEN, 1).to(dtype)
    with torch.no_grad():  # torch stores weights as (out, in): ours transposed; b_hh unused
        model.weight_ih_l0.copy_(torch.from_numpy(rnn.params["Wx"].T.copy()))
        model.weight_hh_l0.copy_(torch.from_numpy(rnn.params["Wh"].T.copy()))
        model.bias_ih_l0.copy_(torch.from_numpy(rnn.params["b"]))
        model.bias_hh_l0.zero_()
        head.weight.copy_(torch.from_numpy(readout.params["W"].T.copy()))
        head.bias.copy_(torch.from_numpy(readout.params["b"]))
    optimizer = torch.optim.SGD([*model.parameters(), *head.parameters()], lr=LR)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        optimizer.zero_grad(set_to_none=True)
        hidden, _ = model(xt)
        loss = torch.nn.functional.mse_loss(head(hidden[:, -1]), yt)
        loss.backward()
        optimizer.step()
        return loss.item()
    return step


def median_seconds_interleaved(steps, repeats, warmup):
    """{name: median wall time} of each step function, timed in turn, after `warmup` calls."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def time_rows(repeats, warmup, thread_counts):
    """Rows ``(dtype, threads, library seconds, PyTorch seconds or None)``."""
    rng = np.random.default_rng(0)
    x64, y64 = rng.standard_normal((BATCH, STEPS, INPUT)), rng.standard_normal((BATCH, 1))
    rows = []
    for dtype in (np.float64, np.float32):
        x, y = x64.astype(dtype), y64.astype(dtype)
        for threads in thread_counts:
            limit = threadpool_limits(threads) if threadpool_limits else nullcontext()
            with limit:
                ours, rnn, readout = library_step(x, y, dtype)
                steps = {"library": ours}
                if torch is not None:
                    torch.set_num_threads(threads)
                    steps["torch"] = torch_step(x, y, rnn, readout)
                    first = ours(), steps["torch"]()  # same weights, so the same first loss
                    if not np.isclose(first[0], first[1], rtol=1e-4):
                        raise RuntimeError(f"the two models disagree: losses {first}")
                medians = median_seconds_interleaved(steps, repeats, warmup)
            rows.append((np.dtype(dtype).name, threads, medians["library"], medians.get("torch")))
    return rows


def machine_description():
    return "\n".join(machine_lines(torch) + [
        "- threads set with " + ("threadpoolctl (NumPy's BLAS)" if threadpool_limits
                                 else "(threadpoolctl missing: NumPy at its default)")
        + (" and torch.set_num_threads" if torch is not None else ""),
    ])


def default_thread_counts():
    cores = os.cpu_count() or 1
    return [1] + ([cores] if cores > 1 else [])


def report(repeats=200, warmup=20, thread_counts=None):
    rows = time_rows(repeats, warmup, thread_counts or default_thread_counts())
    ms = lambda seconds: f"{seconds * 1e3:.3f}"  # noqa: E731
    lines = [f"RNN training step (forward, MSE on a linear readout of the last state, backward "
             f"through time, SGD update): batch {BATCH}, {STEPS} steps, input {INPUT}, hidden "
             f"{HIDDEN}, tanh. Median of {repeats} steps after {warmup} warm-up steps. "
             "ratio = backprop time / PyTorch time (below 1: backprop is faster).", ""]
    if torch is not None:
        lines += ["| model | dtype | threads | backprop ms/step | PyTorch ms/step | ratio |",
                  "| --- | --- | ---: | ---: | ---: | ---: |"]
    else:
        lines += ["| model | dtype | threads | backprop ms/step |", "| --- | --- | ---: | ---: |"]
    for dtype, threads, lib, theirs in rows:
        line = f"| RNN {INPUT}-{HIDDEN}, T={STEPS} + linear | {dtype} | {threads} | {ms(lib)} |"
        if theirs is not None:
            line += f" {ms(theirs)} | {lib / theirs:.2f} |"
        lines.append(line)
    return machine_description() + "\n\n" + "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", help="also write the Markdown report to this file")
    parser.add_argument("--repeats", type=int, default=200, help="timed steps per figure")
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps before timing")
    parser.add_argument("--threads", default=",".join(map(str, default_thread_counts())),
                        help="comma-separated thread counts, one row each (default: %(default)s); "
                             "on a busy machine more threads than idle cores only measure waiting")
    args = parser.parse_args(argv)
    text = report(args.repeats, args.warmup, [int(n) for n in args.threads.split(",")])
    emit_report(text, args.output)


if __name__ == "__main__":
    main()
