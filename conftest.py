"""pytest set-up shared by tests/, lessons/ and solutions/ (nbval): one BLAS thread, NumPy and
OpenBLAS pinned to their AVX2 code (as the Makefile pins them), and a course secret for the
hidden tests of the solution notebooks.

The course's models are small; on a 2-core machine several BLAS threads wait for each other and
make notebooks several times slower. Set before any kernel starts, so the kernels inherit it.

Hidden tests draw their inputs from the course secret (backprop.labchecks.secret): one random
secret per run, unless BACKPROP_COURSE_SECRET is set already, shown in the report's header, so
a failing hidden test can be run again on the same inputs.
"""
import os
import secrets

from tools.execute_notebooks import KERNEL_ENVIRONMENT

# One BLAS thread; the committed lessons' numbers on every x86-64 machine (the Makefile says why).
for _name, _value in KERNEL_ENVIRONMENT.items():
    os.environ.setdefault(_name, _value)
os.environ.setdefault("BACKPROP_COURSE_SECRET", secrets.token_hex(16))


def pytest_report_header(config):
    return (f"BACKPROP_COURSE_SECRET={os.environ['BACKPROP_COURSE_SECRET']} (the hidden tests' "
            "inputs of this run; set it to draw them again)")
