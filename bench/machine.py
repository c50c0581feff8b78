"""What the benchmarks share (bench_*.py): the machine they ran on, and how a report goes out."""
import os
import platform

import numpy as np


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
