"""The ``scalelab`` command-line interface (typer)."""

import os

# numpy's OpenBLAS starts a thread per core for every matrix product, and the fits multiply matrices of a
# few hundred elements, where the threads cost more than they save: `scalelab fit` on Epoch's 240 points
# took 2.4-3.0 s of user CPU with them and 1.6-1.8 s without, with the same output bit for bit (docs/laws.md).
# Set before numpy loads; a value the user sets wins. torch's threads (the wind tunnel) are not OpenBLAS's.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
