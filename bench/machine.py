"""What the benchmarks ran on, for the tables they print (shared by bench_*.py)."""
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
