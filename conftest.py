"""pytest set-up shared by tests/, lessons/ and solutions/ (nbval): one BLAS thread.

The course's models are small; on a 2-core machine several BLAS threads wait for each other and
make notebooks several times slower. Set before any kernel starts, so the kernels inherit it.
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
