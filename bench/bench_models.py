"""Time one training step of the library's MLP and CNN against the same models in PyTorch (CPU).

A step is forward, softmax cross-entropy, backward and an SGD update, on a batch of 64
single-channel 8x8 images (the size of sklearn's digits). Each figure is the median over many
steps after a warm-up, measured with time.perf_counter in this one run, so the ratios compare
like with like on this machine. PyTorch is optional: without it only the library is timed.

    python bench/bench_models.py                    # prints a Markdown report
    python bench/bench_models.py --output FILE      # also writes it to FILE
"""
import argparse
import os
import statistics
import time

import numpy as np
from machine import emit_report, machine_lines, torch

from backprop.conv import Conv2d, Flatten, MaxPool2d
from backprop.conv_naive import conv2d_backward_naive, conv2d_forward_naive
from backprop.layers import Linear, ReLU, Sequential
from backprop.losses import softmax_cross_entropy
from backprop.optim import SGD

try:  # to set NumPy's BLAS thread count (threadpoolctl comes with scikit-learn)
    from threadpoolctl import ThreadpoolController
except ImportError:
    ThreadpoolController = None


def numpy_blas():
    """A threadpoolctl controller of NumPy's BLAS only (not PyTorch's), or None."""
    if ThreadpoolController is None:
        return None
    controller = ThreadpoolController()
    blas = [info["filepath"] for info in controller.info() if info["user_api"] == "blas"]
    ours = [path for path in blas if "numpy" in path] or blas
    return controller.select(filepath=ours) if ours else None


NUMPY_BLAS = numpy_blas()

BATCH, IMAGE, CLASSES, LR = 64, (1, 8, 8), 10, 0.01


def library_mlp(rng, dtype):
    return Sequential(Linear(64, 128, rng=rng, dtype=dtype), ReLU(),
                      Linear(128, 64, rng=rng, dtype=dtype), ReLU(),
                      Linear(64, CLASSES, rng=rng, dtype=dtype))


def library_cnn(rng, dtype):
    return Sequential(Conv2d(1, 16, 3, padding=1, rng=rng, dtype=dtype), ReLU(), MaxPool2d(2),
                      Conv2d(16, 32, 3, padding=1, rng=rng, dtype=dtype), ReLU(), MaxPool2d(2),
                      Flatten(), Linear(128, CLASSES, rng=rng, dtype=dtype))


def torch_mlp():
    nn = torch.nn
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
                         nn.Linear(64, CLASSES))


def torch_cnn():
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(128, CLASSES))


def step_times(step, count):
    """(wall, cpu): seconds of each of `count` calls of ``step()``, by time.perf_counter and by
    time.process_time (CPU time of this process; other programs taking the CPU away do not
    count in it)."""
    wall, cpu = [], []
    for _ in range(count):
        start, start_cpu = time.perf_counter(), time.process_time()
        step()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return wall, cpu


def median_seconds(steps, repeats, warmup, rounds=20, pause=0.02, prepare=None):
    """Median (wall, cpu) seconds per call of each function in `steps` (a dict), in turns.

    Each function gets `warmup` untimed calls, then the `repeats` timed calls are split into
    `rounds` blocks that take turns, so a burst of load from other programs on the machine
    hits every contender alike and the ratios stay fair. The pause between blocks lets the
    worker threads of the previous contender (OpenBLAS, OpenMP) stop spinning first.
    ``prepare[name]()``, when given, runs untimed before each block of that contender.
    """
    prepare = prepare or {}
    times = {name: ([], []) for name in steps}
    for name, step in steps.items():
        prepare.get(name, lambda: None)()
        for _ in range(warmup):
            step()
    for _ in range(rounds):
        for name, step in steps.items():
            prepare.get(name, lambda: None)()
            time.sleep(pause)
            step()  # one untimed call: caches and thread pools warm again after the pause
            wall, cpu = step_times(step, max(1, repeats // rounds))
            times[name][0].extend(wall)
            times[name][1].extend(cpu)
    return {name: (statistics.median(wall), statistics.median(cpu))
            for name, (wall, cpu) in times.items()}


def library_step(model, x, y):
    optimizer = SGD(model, lr=LR)

    def step():
        loss, dlogits = softmax_cross_entropy(model.forward(x), y)
        # Nothing needs the gradient with respect to the images (PyTorch does not compute it
        # either: they do not require one), so the first layer skips its dx.
        model.backward(dlogits, input_grad=False)
        optimizer.step()
    return step


def torch_step(model, x, y):
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimizer.step()
    return step


def time_models(repeats, warmup, thread_counts):
    """Rows ``(model, dtype, threads, backprop (wall, cpu) seconds, PyTorch's or None)``.

    With `threads` threads, NumPy's BLAS (through threadpoolctl) and PyTorch
    (torch.set_num_threads) get the same budget. Everything for one model and dtype is timed
    in turns (`median_seconds`).
    """
    rng = np.random.default_rng(0)
    images = rng.random((BATCH, *IMAGE))
    labels = rng.integers(0, CLASSES, BATCH)
    if NUMPY_BLAS is None:  # cannot set NumPy's thread count: time it as it is, once
        thread_counts = thread_counts[-1:]
    else:
        blas_threads = max(info["num_threads"] for info in NUMPY_BLAS.info())
    rows = []
    for name, make_library, make_torch, flat in [("MLP 64-128-64-10", library_mlp, torch_mlp, True),
                                                 ("CNN (2 conv + 2 pool + linear)", library_cnn,
                                                  torch_cnn, False)]:
        x = images.reshape(BATCH, -1) if flat else images
        for dtype in (np.float64, np.float32):
            steps, prepare = {}, {}
            for threads in thread_counts:
                model = make_library(np.random.default_rng(1), dtype)
                steps["backprop", threads] = library_step(model, x.astype(dtype), labels)
                if NUMPY_BLAS is not None:
                    prepare["backprop", threads] = lambda t=threads: NUMPY_BLAS.limit(limits=t)
                if torch is not None:
                    torch_dtype = {np.float64: torch.float64, np.float32: torch.float32}[dtype]
                    xt, yt = torch.tensor(x, dtype=torch_dtype), torch.tensor(labels)
                    torch.manual_seed(0)
                    steps["torch", threads] = torch_step(make_torch().to(torch_dtype), xt, yt)
                    prepare["torch", threads] = lambda t=threads: torch.set_num_threads(t)
            seconds = median_seconds(steps, repeats, warmup, prepare=prepare)
            for threads in thread_counts:
                rows.append((name, np.dtype(dtype).name, threads, seconds["backprop", threads],
                             seconds.get(("torch", threads))))
    if NUMPY_BLAS is not None:
        NUMPY_BLAS.limit(limits=blas_threads)  # as before, for what runs next
    return rows


def time_naive_gap(repeats, warmup):
    """(naive seconds, fast seconds) for forward + backward of the CNN's first layer, batch 8."""
    rng = np.random.default_rng(2)
    layer = Conv2d(1, 16, 3, padding=1, rng=rng)
    x = rng.random((8, *IMAGE))
    dout = rng.standard_normal(layer.output_shape(x.shape))
    W, b = layer.params["W"], layer.params["b"]

    def naive():
        conv2d_forward_naive(x, W, b, stride=1, padding=1)
        conv2d_backward_naive(dout, x, W, stride=1, padding=1)

    def fast():
        layer.forward(x)
        layer.backward(dout)

    slow = median_seconds({"naive": naive}, max(3, repeats // 50), 1, rounds=1)["naive"][0]
    return slow, median_seconds({"fast": fast}, repeats, warmup, rounds=1)["fast"][0]


def machine_description():
    return "\n".join(machine_lines(torch) + [
        f"- OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}",
    ])


def report(repeats=300, warmup=30, thread_counts=None):
    cores = os.cpu_count() or 1
    thread_counts = thread_counts or [1] + ([cores] if cores > 1 else [])
    load_before = os.getloadavg()[0]
    rows = time_models(repeats, warmup, thread_counts)
    naive, fast = time_naive_gap(repeats, warmup)
    load_after = os.getloadavg()[0]
    ms = lambda seconds: f"{seconds * 1e3:.3f}"  # noqa: E731
    lines = [machine_description(),
             f"- load average (1 min) {load_before:.1f} before, {load_after:.1f} after: "
             f"above ~0.5 other programs were competing for the {cores} cores",
             "",
             f"Training step (forward, softmax cross-entropy, backward, SGD update), batch "
             f"{BATCH}, input {'x'.join(map(str, IMAGE))}: median of {repeats} steps after "
             f"{warmup} warm-up steps, the contenders timed in turns. threads: NumPy's BLAS "
             "and PyTorch each limited to that many. ratio = backprop / PyTorch wall time "
             "(below 1: backprop is faster). CPU ratio: the same with CPU time "
             "(time.process_time), which other programs on the machine barely disturb; with "
             "1 thread on an idle machine the two ratios agree.",
             "",
             "| model | dtype | threads | backprop ms/step | PyTorch ms/step | ratio "
             "| CPU ratio |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, dtype, threads, (lib, lib_cpu), theirs in rows:
        if theirs is None:
            compared = "n/a | n/a | n/a"
        else:
            compared = f"{ms(theirs[0])} | {lib / theirs[0]:.2f} | {lib_cpu / theirs[1]:.2f}"
        lines.append(f"| {name} | {dtype} | {threads} | {ms(lib)} | {compared} |")
    lines += ["", "Naive (explicit loops) vs fast (im2col) convolution: forward + backward of "
              "Conv2d(1, 16, kernel_size=3, padding=1) on a batch of 8 images, float64.", "",
              "| naive ms | fast ms | speed-up |", "| ---: | ---: | ---: |",
              f"| {ms(naive)} | {ms(fast)} | {naive / fast:.0f}x |"]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", help="also write the Markdown report to this file")
    parser.add_argument("--repeats", type=int, default=300, help="timed steps per figure")
    parser.add_argument("--warmup", type=int, default=30, help="untimed steps before timing")
    parser.add_argument("--threads", type=int, nargs="+", metavar="N",
                        help="thread budgets to compare (default: 1 and the number of cores)")
    args = parser.parse_args(argv)
    text = report(args.repeats, args.warmup, args.threads)
    emit_report(text, args.output)


if __name__ == "__main__":
    main()
