#!/usr/bin/env python
"""The full evidence report: ``stegonode report`` on the round-trip set and ../shared/realdata.

Writes report.md, report.html and the plots to ``--out`` (default build/report), prints
report.md and the CPU and wall time taken (the target: at most 15 minutes on 2 cores). Run
from the repository root::

    .venv/bin/python benchmarks/report.py [--out build/report] [--trials 3] [--quick]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

from pydicom.data import get_testdata_file
from tqdm import tqdm

from stegonode.training import report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("build/report"))
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--quick", action="store_true",
                        help="CI size: 693_UNCR only, one noise draw, no held-out phantoms")
    args = parser.parse_args()
    if args.quick:
        settings = report.Settings(images=[Path(get_testdata_file("693_UNCR.dcm"))], out=args.out, trials=1, phantoms=0)
    else:
        settings = report.Settings(images=report.default_images(), out=args.out, trials=args.trials)
    start = time.monotonic()
    with tqdm(total=report.stages(settings), unit="step", file=sys.stderr) as bar:
        md, _ = report.build(settings, lambda stage: (bar.set_description(stage[:40]), bar.update(1)))
    wall = time.monotonic() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(md.read_text())
    print(f"wall {wall / 60:.1f} min, CPU (user + system) {(usage.ru_utime + usage.ru_stime) / 60:.1f} min, "
          f"{len(settings.images)} images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
