#!/usr/bin/env python
"""Robustness of reveal to additive Gaussian noise, per embedding strength.

Protects the bundled real CT 693_UNCR (512 x 512, BitsStored 14, signed; its full identifying
set, as protect collects it) once per setting: the DCT codec at the default step 10 and at
steps 16 and 24, and the seed-002 ``paper`` codec at its defaults. Then, for every noise level
sigma (stored units) and trial, adds Gaussian noise to the stego pixels (rounded, clipped to the
stored range), writes them back into a fresh copy of the protected dataset and calls the real
reveal path, ``reveal(ds, peer_keys)``, which segments the noisy image itself. A trial succeeds
when reveal raises nothing and the recovered attributes equal the ones protect sealed, and the
re-identified PatientName, PatientID and StudyInstanceUID equal the original's.

Each cell of the table gives successes / trials and the mean bit error rate of the raw extracted
bits against the embedded QR modules (over the trials whose length header was read; "-" when
none was). Each row also gives PSNR (peak 2^BitsStored-1 and 65535), MSE and payload bytes.
Noise draws are seeded, so every setting sees the same noise; keys are fresh each run.
Sigma 0 is a baseline: the stego image as stored. Failure causes are listed under the table,
and a PNG of successes vs sigma is written with Pillow. Run from the repository root::

    .venv/bin/python benchmarks/robustness.py [--trials 20] [--png benchmarks/robustness.png]
"""

from __future__ import annotations

import argparse
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from PIL import Image, ImageDraw
from pydicom import Dataset
from pydicom.data import get_testdata_file

from stegonode.codecs import keys as keyfiles
from stegonode.codecs import payload
from stegonode.training.evidence import Protected, attacked, bit_error_rate, extracted_bits, failure, pipeline_for, protect

SIGMAS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)
SEED = 2024
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd")


@dataclass(frozen=True)
class Setting:
    label: str
    codec: str
    params: dict[str, Any]


SETTINGS = (
    Setting("dct step 10 (default)", "dct", {"step": 10.0}),
    Setting("dct step 16", "dct", {"step": 16.0}),
    Setting("dct step 24", "dct", {"step": 24.0}),
    Setting("paper beta 8 alpha .02", "paper", {}),
)


@dataclass
class Cell:
    """Outcome of all trials at one sigma."""

    successes: int = 0
    bit_error_rates: list[float] = field(default_factory=list)
    failures: Counter = field(default_factory=Counter)


def run_setting(protected: Protected, keys: keyfiles.PeerKeys, original: Dataset, trials: int) -> list[Cell]:
    rng = np.random.default_rng(SEED)
    cells = []
    for sigma in SIGMAS:
        cell = Cell()
        for _ in range(trials):
            ds, noisy = attacked(protected, "gaussian", sigma, rng)
            reason = failure(ds, keys, protected, original)
            if reason is None:
                cell.successes += 1
            else:
                cell.failures[reason] += 1
            ber = bit_error_rate(extracted_bits(ds, noisy, keys), protected.message)
            if ber is not None:
                cell.bit_error_rates.append(ber)
        cells.append(cell)
    return cells


def cell_text(cell: Cell, trials: int) -> str:
    ber = f"{100 * np.mean(cell.bit_error_rates):.2f}%" if cell.bit_error_rates else "-"
    return f"{cell.successes:>2}/{trials} {ber:>6}"


def print_table(rows: list[tuple[Setting, Protected, list[Cell]]], trials: int) -> None:
    sigma_heads = "".join(f"{f'sigma={s:g}':>14}" for s in SIGMAS)
    print(f"{'setting':<24}{'PSNR14':>8}{'PSNR16':>8}{'MSE':>10}{'bytes':>6}{'QR':>6}{sigma_heads}")
    for setting, protected, cells in rows:
        r = protected.report
        side = payload.unpack(protected.message).shape[0]
        print(f"{setting.label:<24}{r['psnr_db']:>8.1f}{r['psnr_65535_db']:>8.1f}{r['mse']:>10.2f}"
              f"{r['payload_bytes']:>6}{side:>4}^2" + "".join(f"{cell_text(c, trials):>14}" for c in cells))
    print("cells: reveal successes / trials, mean raw bit error rate vs QR modules; "
          "PSNR14 at peak 2^14-1, PSNR16 at 65535 (dB); sigma in stored units")
    for setting, _, cells in rows:
        causes = Counter()
        for cell in cells:
            causes.update(cell.failures)
        if causes:
            print(f"failures, {setting.label}: " + "; ".join(f"{n} x {why}" for why, n in causes.most_common()))


def plot(rows: list[tuple[Setting, Protected, list[Cell]]], trials: int, path: Path) -> None:
    """Line chart of successes vs sigma (one line per setting), sigma on a categorical axis."""
    width, height, left, right, top, bottom = 720, 420, 60, 200, 30, 50
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    x = [left + i * (width - left - right) / (len(SIGMAS) - 1) for i in range(len(SIGMAS))]

    def y(successes: float) -> float:
        return height - bottom - successes / trials * (height - top - bottom)

    draw.rectangle((left, top, width - right, height - bottom), outline="black")
    for xi, sigma in zip(x, SIGMAS):
        draw.text((xi - 8, height - bottom + 8), f"{sigma:g}", fill="black")
    for fraction in (0.0, 0.25, 0.5, 0.75, 1.0):
        draw.line((left - 4, y(fraction * trials), left, y(fraction * trials)), fill="black")
        draw.text((left - 40, y(fraction * trials) - 6), f"{fraction:.0%}", fill="black")
    draw.text(((width - right) / 2, height - 20), "noise sigma (stored units)", fill="black")
    draw.text((8, 8), f"693_UNCR: reveal success rate ({trials} trials) vs Gaussian noise", fill="black")
    for i, ((setting, _, cells), colour) in enumerate(zip(rows, COLOURS)):
        points = [(xi, y(c.successes)) for xi, c in zip(x, cells)]
        draw.line(points, fill=colour, width=2)
        for px, py in points:
            draw.ellipse((px - 3, py - 3, px + 3, py + 3), fill=colour)
        draw.line((width - right + 12, top + 10 + 18 * i, width - right + 32, top + 10 + 18 * i), fill=colour, width=3)
        draw.text((width - right + 38, top + 4 + 18 * i), setting.label, fill="black")
    image.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="noise draws per sigma and setting")
    parser.add_argument("--png", type=Path, default=Path(__file__).with_suffix(".png"), help="chart path")
    args = parser.parse_args()

    source = Path(get_testdata_file("693_UNCR.dcm"))
    original = pydicom.dcmread(source)
    with tempfile.TemporaryDirectory() as tmp:
        node_path, peer_path = keyfiles.generate(Path(tmp))
        node_keys, peer_keys = keyfiles.load_node_keys(node_path), keyfiles.load_peer_keys(peer_path)
    rows = []
    for setting in SETTINGS:
        protected = protect(original, pipeline_for(node_keys, setting.codec, **setting.params))
        rows.append((setting, protected, run_setting(protected, peer_keys, original, args.trials)))
    print_table(rows, args.trials)
    plot(rows, args.trials, args.png)
    print(f"chart: {args.png}")


if __name__ == "__main__":
    main()
