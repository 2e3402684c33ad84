#!/usr/bin/env python
"""Speed of the two pixel ciphers on one core: a 512 x 512 16-bit slice and a large CR image.

For each cipher (seed 004's chaos cipher and AES-256-GCM) and each image: 3 warm-ups, then 30
encryptions and 30 decryptions (authentication included) of the pixel words alone, no DICOM
I/O. The table gives median and 90th percentile in milliseconds and the median throughput in
MB/s (pixel bytes per second, 10^6 bytes), and compares the chaos figures on the 512 x 512
slice (90th percentile) with the target "<= 50 ms each on one core". Images: the real CT
693_UNCR (512 x 512, 16-bit words) and the real CR RG1_UNCR (1955 x 1841, 16-bit words) from
pydicom-data.

The process pins itself to CPU 0 and sets OMP_NUM_THREADS and friends to 1 before numpy is
imported. Run from the repository root::

    .venv/bin/python benchmarks/cipher_speed.py [--quick]
"""

from __future__ import annotations

import os

import _one_core  # noqa: F401  (first: one BLAS thread, CPU 0)

# isort: split

import argparse  # noqa: E402
import platform  # noqa: E402
import secrets  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from functools import partial  # noqa: E402

import cryptography  # noqa: E402
import numpy as np  # noqa: E402
import pydicom  # noqa: E402
from pydicom.data import get_testdata_file  # noqa: E402

from stegonode.dicom.pixels import read_pixels
from stegonode.handlers.encrypt import CIPHERS, pixel_words  # noqa: E402

WARMUP = 3
RUNS = 30
TARGET_MS = 50.0
IMAGES = ("693_UNCR.dcm", "RG1_UNCR.dcm")


def timed(run: Callable[[], object], warmup: int = WARMUP, runs: int = RUNS) -> np.ndarray:
    """Milliseconds of ``runs`` calls after ``warmup`` discarded ones."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return np.array(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI size: the CT slice only, 1 warm-up, 3 runs")
    args = parser.parse_args()
    warmup, runs, images = (1, 3, IMAGES[:1]) if args.quick else (WARMUP, RUNS, IMAGES)
    print(f"CPU affinity {sorted(os.sched_getaffinity(0))}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}; "
          f"Python {platform.python_version()}, numpy {np.__version__}, cryptography {cryptography.__version__}")
    print(f"{'image':<26}{'cipher':<9}{'step':<9}{'median ms':>10}{'p90 ms':>9}{'MB/s':>9}   ({runs} runs)")
    key = secrets.token_bytes(32)
    for name in images:
        words = pixel_words(read_pixels(pydicom.dcmread(get_testdata_file(name))))
        label = f"{name} {words.shape[1]}x{words.shape[2]}"
        for cipher_name, cipher_type in CIPHERS.items():
            cipher = cipher_type(key)
            nonce = secrets.token_bytes(cipher.nonce_size)
            encrypted, tag = cipher.encrypt(words, nonce, b"")
            for step, run in (("encrypt", partial(cipher.encrypt, words, nonce, b"")),
                              ("decrypt", partial(cipher.decrypt, encrypted, nonce, b"", tag))):
                ms = timed(run, warmup, runs)
                median, p90 = float(np.median(ms)), float(np.percentile(ms, 90))
                line = f"{label:<26}{cipher_name:<9}{step:<9}{median:>10.2f}{p90:>9.2f}{words.nbytes / median / 1000:>9.1f}"
                if cipher_name == "chaos" and words.shape[1:] == (512, 512):
                    line += f"   target <= {TARGET_MS:.0f} ms: {'PASS' if p90 <= TARGET_MS else 'FAIL'} (p90)"
                print(line)


if __name__ == "__main__":
    main()
