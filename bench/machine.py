"""What the benchmarks share (bench_*.py): the machine they ran on, how a report goes out, the
command line, and timing contenders in alternation."""
import argparse
import os
import platform
import statistics
import time

import numpy as np

# What the benchmarks import from here: PyTorch when installed (without it they time the
# library alone), and threadpoolctl's limit on NumPy's BLAS threads.
try:
    import torch
except ImportError:  # the benchmark still times the library alone
    torch = None
try:
    from threadpoolctl import threadpool_limits
except ImportError:  # comes with scikit-learn; without it NumPy keeps its default threads
    threadpool_limits = None


def machine_lines(torch=None):
    """Markdown bullet lines: CPU model and core count, Python, NumPy and PyTorch versions."""
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f
                         if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return [
        f"- CPU: {model}, {os.cpu_count()} logical cores",
        f"- Python {platform.python_version()}, NumPy {np.__version__}, "
        + (f"PyTorch {torch.__version__}" if torch is not None else "PyTorch not installed"),
    ]


def emit_report(text, output=None):
    """Print the Markdown report and, when `output` names a file, write it there too."""
    print(text, end="")
    if output:
        with open(output, "w") as f:
            f.write(text)


def bench_arguments(description, repeats, warmup):
    """An argparse parser with the options every benchmark takes (add your own, then parse)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--output", help="also write the Markdown report to this file")
    parser.add_argument("--repeats", type=int, default=repeats, help="timed steps per figure")
    parser.add_argument("--warmup", type=int, default=warmup, help="untimed steps before timing")
    return parser


def alternating_medians(steps, repeats, warmup):
    """``{name: (wall, cpu)}``: median seconds per call of each function in `steps`, called in
    turn (one call each, `repeats` times) after `warmup` calls each.

    Taking turns call by call means a burst of load from other programs slows every contender
    alike. cpu is time.process_time (this process's CPU time, which other programs barely
    change); wall is time.perf_counter.
    """
    for step in steps.values():
        for _ in range(warmup):
            step()
    wall = {name: [] for name in steps}
    cpu = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start_cpu, start = time.process_time(), time.perf_counter()
            step()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    return {name: (statistics.median(wall[name]), statistics.median(cpu[name])) for name in steps}
