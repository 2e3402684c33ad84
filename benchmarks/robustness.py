#!/usr/bin/env python
"""Robustness of the pixel carrier: noise, near-lossless and lossy codecs, 8-bit display values.

Protects each image (the bundled real CT 693_UNCR and, when ../shared/realdata is present, its
CT and MR images) once per embedding setting with both carriers, as the node does by default:
the DCT codec at the default step 10 and at steps 12, 16 and 24, at step 12 with 2 positions
per tile and 4 copies per bit aimed for (instead of 3 and 6), and the seed-002 ``paper`` codec.
Then perturbs the stored pixels:

* Gaussian noise of standard deviation sigma (stored units; seeded draws, ``--trials`` each);
* JPEG-LS near-lossless at NEAR 1, 2, 3 (CharLS through pyjpegls, pydicom's encoder);
* JPEG 2000 lossy at compression ratios 5, 10, 20 (OpenJPEG through pylibjpeg-openjpeg);
* a round trip through 8-bit display values: the stored values windowed (the object's first
  Window Center/Width, else its value range) to 0-255, then mapped back (images of more than 8
  bits stored only);

rounded and clipped to the stored range, written back uncompressed into a fresh copy of the
protected object, and calls the real reveal path (``reveal(ds, peer_keys)``, which segments the
perturbed image itself) twice: on the pixels alone (the header carrier, the Encrypted
Attributes Sequence (0400,0500), removed first) and with both carriers, where the table says
which carrier delivered (P: pixels, H: header, -: neither). A reveal succeeds when it raises
nothing and every attribute it returns is the one protect sealed (and, for the full pixel
payload, the re-identified PatientName, PatientID and StudyInstanceUID are the original's).

Per image and setting the table gives the embedding's PSNR (stego against cover, peak
2^BitsStored-1), the pixel payload (sealed bytes, QR modules, and whether the pixels carry all
attributes or the core ones), and per perturbation its own PSNR (perturbed against stego, same
peak), successes of the pixels alone, their mean raw bit error rate against the embedded QR
modules ("-" when no length header was read) and who delivered with both carriers. A setting
protect refuses, or a perturbation that cannot be applied, is a row with its reason. The
trade-off table gives per setting, over all images, the embedding PSNR and on how many images
every trial of each perturbation decoded from the pixels alone. The goal line per image: the
default setting decodes from the pixels alone at sigma 2 and after JPEG-LS NEAR 2 with an
embedding PSNR of at least 84 dB (and which settings do). A PNG of the pixels-alone success
rate per perturbation (all images together) is written with Pillow. Run from the repository
root::

    .venv/bin/python benchmarks/robustness.py [--trials 5] [--png benchmarks/robustness.png] [--quick] [IMAGE ...]
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from PIL import Image, ImageDraw
from pydicom import Dataset
from pydicom.uid import JPEG2000, JPEGLSNearLossless

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from stegonode.codecs import keys as keyfiles  # noqa: E402
from stegonode.codecs import payload  # noqa: E402
from stegonode.dicom.pixels import PixelFormat, read_pixels, write_pixels  # noqa: E402
from stegonode.errors import StegonodeError  # noqa: E402
from stegonode.handlers.reveal import reveal  # noqa: E402
from stegonode.training.evidence import (  # noqa: E402
    COMPARED,
    PixelsNotCarried,
    Protected,
    bit_error_rate,
    extracted_bits,
    pipeline_for,
    protect,
    same_attributes,
)

from images import image_path, realdata_images  # noqa: E402

SEED = 2024
BOTH = ("pixels", "header")  # the carriers protect writes, as the node does by default
GOAL_PSNR_DB = 84.0
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


@dataclass(frozen=True)
class Setting:
    label: str
    codec: str
    params: dict[str, Any]


SETTINGS = (
    Setting("dct step 10 (default)", "dct", {"step": 10.0}),
    Setting("dct step 12", "dct", {"step": 12.0}),
    # fewer copies, a larger step, about the default's distortion on large backgrounds
    Setting("dct step 12, 2 pos, 4 votes", "dct", {"step": 12.0, "min_coefficients": 2, "target_redundancy": 4.0}),
    Setting("dct step 16", "dct", {"step": 16.0}),
    Setting("dct step 24", "dct", {"step": 24.0}),
    Setting("paper beta 8 alpha .02", "paper", {}),
)


@dataclass(frozen=True)
class Perturbation:
    label: str
    kind: str  # none, gaussian, jpeg-ls, j2k, display8
    level: float = 0.0

    @property
    def random(self) -> bool:
        return self.kind == "gaussian"


PERTURBATIONS = (
    Perturbation("none", "none"),
    *(Perturbation(f"noise sigma {s:g}", "gaussian", s) for s in (0.5, 1.0, 2.0, 4.0)),
    *(Perturbation(f"JPEG-LS NEAR {n}", "jpeg-ls", n) for n in (1, 2, 3)),
    *(Perturbation(f"J2K ratio {r}", "j2k", r) for r in (5, 10, 20)),
    Perturbation("8-bit display", "display8"),
)
QUICK = ("none", "noise sigma 2", "JPEG-LS NEAR 2", "J2K ratio 10", "8-bit display")
GOAL = ("noise sigma 2", "JPEG-LS NEAR 2")


class NotApplicable(Exception):
    """The perturbation does not apply to this image (or its codec refused it)."""


def via_codec(ds: Dataset, pixels: np.ndarray, uid: str, **options: Any) -> np.ndarray:
    """``pixels`` encoded by pydicom's encoder for ``uid`` into a copy of ``ds``, and decoded back."""
    encoded = copy.deepcopy(ds)
    write_pixels(encoded, pixels)
    try:
        encoded.compress(uid, **options)
    except Exception as exc:  # pydicom raises several types for encoders missing or refusing
        raise NotApplicable(f"{type(exc).__name__}: {str(exc).splitlines()[0][:80]}") from None
    return read_pixels(encoded)


def first(value: Any) -> float:
    return float(value[0] if isinstance(value, pydicom.multival.MultiValue) else value)


def display8(ds: Dataset, pixels: np.ndarray) -> np.ndarray:
    """Stored values -> 8-bit display values (linear window) -> stored values."""
    fmt = PixelFormat.of(ds)
    if fmt.bits_stored <= 8:
        raise NotApplicable("8 bits stored or fewer: display values are the stored values")
    slope, intercept = float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)
    values = pixels * slope + intercept
    if "WindowCenter" in ds and "WindowWidth" in ds:
        centre, width = first(ds.WindowCenter), first(ds.WindowWidth)
        low, high = centre - width / 2, centre + width / 2
    else:
        low, high = float(values.min()), float(values.max())
    shown = np.rint(np.clip((values - low) / max(high - low, 1e-9) * 255, 0, 255))
    return (low + shown / 255 * (high - low) - intercept) / slope


def perturbed(ds: Dataset, stego: np.ndarray, perturbation: Perturbation, rng: np.random.Generator) -> np.ndarray:
    """``stego`` perturbed, rounded and clipped to the stored range, in the stored type."""
    fmt = PixelFormat.of(ds)
    if perturbation.kind == "none":
        values: np.ndarray = stego
    elif perturbation.kind == "gaussian":
        values = stego + rng.normal(0.0, perturbation.level, stego.shape)
    elif perturbation.kind == "jpeg-ls":
        values = via_codec(ds, stego, JPEGLSNearLossless, jls_error=int(perturbation.level))
    elif perturbation.kind == "j2k":
        values = via_codec(ds, stego, JPEG2000, j2k_cr=[perturbation.level])
    elif perturbation.kind == "display8":
        values = display8(ds, stego)
    else:
        raise ValueError(f"unknown perturbation {perturbation.kind!r}")
    lo, hi = fmt.value_range
    return np.clip(np.rint(values), lo, hi).astype(fmt.dtype)


def psnr(a: np.ndarray, b: np.ndarray, peak: int) -> float:
    diff = (a.astype(np.int64) - b).ravel()
    mse = float(diff @ diff) / diff.size
    return float("inf") if mse == 0 else float(10 * np.log10(peak * peak / mse))


def outcome(ds: Dataset, keys: keyfiles.PeerKeys, protected: Protected, original: Dataset) -> tuple[str | None, str]:
    """(why reveal failed or None, the carrier that delivered or "-")."""
    try:
        revealed = reveal(ds, keys)
    except Exception as exc:  # any exception is a failed trial; its type and first words are tallied
        return f"{type(exc).__name__} ({str(exc).split(':')[0][:60]})", "-"
    sealed = Dataset()
    for element in revealed.attributes:  # the core payload carries a subset of what protect sealed
        if element.tag in protected.attributes:
            sealed.add(protected.attributes[element.tag])
    if len(sealed) != len(revealed.attributes) or not same_attributes(revealed.attributes, sealed):
        return "wrong attributes", "-"
    if revealed.complete and any(revealed.dataset.get(k) != original.get(k) for k in COMPARED):
        return "wrong restored header", "-"
    return None, "P" if revealed.carrier == "pixels" else "H"


@dataclass
class Cell:
    """All trials of one perturbation on one protected image."""

    trials: int = 0
    pixels_alone: int = 0
    delivered: Counter = field(default_factory=Counter)  # P / H / - with both carriers
    bit_error_rates: list[float] = field(default_factory=list)
    attack_psnr: list[float] = field(default_factory=list)
    failures: Counter = field(default_factory=Counter)
    not_applicable: str | None = None


def run_perturbation(protected: Protected, keys: keyfiles.PeerKeys, original: Dataset,
                     perturbation: Perturbation, trials: int) -> Cell:
    rng = np.random.default_rng(SEED)
    template = protected.dataset()
    peak = PixelFormat.of(template).peak
    cell = Cell()
    for _ in range(trials if perturbation.random else 1):
        try:
            pixels = perturbed(template, protected.stego, perturbation, rng)
        except NotApplicable as exc:
            cell.not_applicable = str(exc)
            return cell
        cell.trials += 1
        cell.attack_psnr.append(psnr(pixels, protected.stego, peak))
        both = protected.dataset()
        write_pixels(both, pixels)
        alone = copy.deepcopy(both)
        if "EncryptedAttributesSequence" in alone:
            del alone.EncryptedAttributesSequence
        reason, _ = outcome(alone, keys, protected, original)
        if reason is None:
            cell.pixels_alone += 1
        else:
            cell.failures[reason] += 1
        cell.delivered[outcome(both, keys, protected, original)[1]] += 1
        ber = bit_error_rate(extracted_bits(alone, pixels, keys), protected.message)
        if ber is not None:
            cell.bit_error_rates.append(ber)
    return cell


@dataclass
class Row:
    """One image under one setting: protected (with its cells) or refused (with the reason)."""

    image: str
    setting: Setting
    protected: Protected | None = None
    cells: dict[str, Cell] = field(default_factory=dict)
    refused: str | None = None


def pixel_refusal(original: Dataset, setting: Setting, node_keys: keyfiles.NodeKeys) -> str:
    """Why protect with the pixel carrier alone refuses ``original`` under ``setting``."""
    try:
        protect(original, pipeline_for(node_keys, setting.codec, ("pixels",), **setting.params))
    except StegonodeError as exc:
        return f"{type(exc).__name__}: {str(exc)[:110]}"
    return "carried when alone"


def measure(path: Path, settings: tuple[Setting, ...], perturbations: tuple[Perturbation, ...], trials: int,
            node_keys: keyfiles.NodeKeys, peer_keys: keyfiles.PeerKeys, progress: Callable[[str], None]) -> list[Row]:
    original = pydicom.dcmread(path)
    rows = []
    for setting in settings:
        row = Row(path.name, setting)
        rows.append(row)
        try:
            row.protected = protect(original, pipeline_for(node_keys, setting.codec, BOTH, **setting.params))
        except StegonodeError as exc:
            row.refused = f"{type(exc).__name__}: {str(exc)[:110]}"
        except PixelsNotCarried:  # the header alone carries it: why the pixels could not
            row.refused = f"header carrier only; the pixel carrier: {pixel_refusal(original, setting, node_keys)}"
        if row.refused:
            continue
        for perturbation in perturbations:
            progress(f"{path.name} {setting.label} {perturbation.label}")
            row.cells[perturbation.label] = run_perturbation(row.protected, peer_keys, original, perturbation, trials)
    return rows


def print_table(rows: list[Row], perturbations: tuple[Perturbation, ...]) -> None:
    print(f"{'image':<18}{'setting':<28}{'PSNR':>6}{'bytes':>6}{'QR':>8}{'pixels':>7}  "
          f"{'perturbation':<16}{'PSNR':>7}{'alone':>7}{'BER':>8}  both")
    for row in rows:
        head = f"{row.image[:17]:<18}{row.setting.label:<28}"
        if row.protected is None:
            print(f"{head}refused: {row.refused}")
            continue
        report = row.protected.report
        side = payload.unpack(row.protected.message).shape[0]
        head += (f"{report['psnr_db']:>6.1f}{report['payload_bytes']:>6}{f'{side}^2':>8}"
                 f"{report['pixel_attributes']:>7}  ")
        for perturbation in perturbations:
            cell = row.cells[perturbation.label]
            if cell.not_applicable:
                print(f"{head}{perturbation.label:<16}   n/a: {cell.not_applicable}")
            else:
                ber = f"{100 * np.mean(cell.bit_error_rates):.2f}%" if cell.bit_error_rates else "-"
                both = " ".join(f"{n}{who}" for who, n in sorted(cell.delivered.items()))
                print(f"{head}{perturbation.label:<16}{np.mean(cell.attack_psnr):>7.1f}"
                      f"{f'{cell.pixels_alone}/{cell.trials}':>7}{ber:>8}  {both}")
            head = " " * len(head)
    print("PSNR (dB, peak 2^BitsStored-1): after the setting, stego against cover; after the perturbation, "
          "perturbed against stego. alone: reveals from the pixels alone (header carrier removed) / trials; "
          "BER: their mean raw bit error rate; both: who delivered with both carriers (P pixels, H header, - none)")
    for row in rows:
        causes: Counter = Counter()
        for cell in row.cells.values():
            causes.update(cell.failures)
        if causes:
            print(f"pixels-alone failures, {row.image} {row.setting.label}: "
                  + "; ".join(f"{n} x {why}" for why, n in causes.most_common()))


def decoded(row: Row, label: str) -> bool | None:
    """Whether every trial of ``label`` decoded from the pixels alone (None: not measured)."""
    cell = row.cells.get(label)
    if cell is None or cell.not_applicable or not cell.trials:
        return None
    return cell.pixels_alone == cell.trials


def meets_goal(row: Row) -> bool:
    return (row.protected is not None and row.protected.report["psnr_db"] >= GOAL_PSNR_DB
            and all(decoded(row, label) for label in GOAL))


def print_goal(rows: list[Row]) -> None:
    """Per image: the default setting against the goal, and the settings that meet it."""
    for row in rows:
        if row.setting != SETTINGS[0]:
            continue
        others = [r.setting.label for r in rows if r.image == row.image and meets_goal(r)]
        also = f"; settings meeting it: {', '.join(others) or 'none'}"
        if row.protected is None:
            print(f"goal, {row.image}: NOT met (refused: {row.refused}){also}")
            continue
        psnr_db = row.protected.report["psnr_db"]
        print(f"goal, {row.image}: default setting, PSNR {psnr_db:.1f} dB (>= {GOAL_PSNR_DB:g}), pixels alone "
              + ", ".join(f"{label} {'decoded' if decoded(row, label) else 'NOT decoded'}" for label in GOAL)
              + f": {'met' if meets_goal(row) else 'NOT met'}{also}")


def print_tradeoff(rows: list[Row], perturbations: tuple[Perturbation, ...]) -> None:
    """Per setting over all images: embedding PSNR, and on how many images every trial of each
    perturbation decoded from the pixels alone (of those the pixels carry)."""
    shown = [p.label for p in perturbations if p.kind != "none"]
    print(f"\ntrade-off, all images: {'setting':<28}{'carried':>8}{'PSNR min':>9}{'median':>7}  "
          + "  ".join(label.replace("noise ", "") for label in shown))
    for setting in SETTINGS:
        mine = [row for row in rows if row.setting == setting]
        carried = [row for row in mine if row.protected is not None]
        if not mine:
            continue
        psnrs = [row.protected.report["psnr_db"] for row in carried if row.protected is not None]
        line = f"{'':<23}{setting.label:<28}{f'{len(carried)}/{len(mine)}':>8}"
        line += f"{min(psnrs):>9.1f}{float(np.median(psnrs)):>7.1f}  " if psnrs else f"{'-':>9}{'-':>7}  "
        for label in shown:
            outcomes = [decoded(row, label) for row in carried]
            measured = [ok for ok in outcomes if ok is not None]
            line += f"{f'{sum(measured)}/{len(measured)}':>{len(label.replace('noise ', '')) + 2}}"
        print(line)
    print("trade-off cells: images on which every trial decoded from the pixels alone / images the pixels carry "
          "(and where the perturbation applies); PSNR at peak 2^BitsStored-1")


def plot(rows: list[Row], perturbations: tuple[Perturbation, ...], path: Path) -> None:
    """Pixels-alone success rate per perturbation (all protected images together), one line per setting."""
    width, height, left, right, top, bottom = 900, 440, 60, 210, 30, 70
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    step = (width - left - right) / max(len(perturbations) - 1, 1)
    x = [left + i * step for i in range(len(perturbations))]

    def y(fraction: float) -> float:
        return height - bottom - fraction * (height - top - bottom)

    draw.rectangle((left, top, width - right, height - bottom), outline="black")
    for i, (xi, perturbation) in enumerate(zip(x, perturbations, strict=True)):
        draw.text((xi - 20, height - bottom + 8 + 12 * (i % 3)), perturbation.label, fill="black")
    for fraction in (0.0, 0.25, 0.5, 0.75, 1.0):
        draw.line((left - 4, y(fraction), left, y(fraction)), fill="black")
        draw.text((left - 40, y(fraction) - 6), f"{fraction:.0%}", fill="black")
    images = sorted({row.image for row in rows})
    draw.text((8, 8), f"reveal from the pixels alone, {len(images)} image(s): success rate per perturbation",
              fill="black")
    settings = [setting for setting in SETTINGS if any(row.setting == setting for row in rows)]
    for i, (setting, colour) in enumerate(zip(settings, COLOURS, strict=False)):
        points = []
        for xi, perturbation in zip(x, perturbations, strict=True):
            cells = [row.cells[perturbation.label] for row in rows if row.setting == setting and row.cells
                     and not row.cells[perturbation.label].not_applicable]
            trials = sum(cell.trials for cell in cells)
            if trials:
                points.append((xi, y(sum(cell.pixels_alone for cell in cells) / trials)))
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        for px, py in points:
            draw.ellipse((px - 3, py - 3, px + 3, py + 3), fill=colour)
        draw.line((width - right + 12, top + 10 + 18 * i, width - right + 32, top + 10 + 18 * i), fill=colour, width=3)
        draw.text((width - right + 38, top + 4 + 18 * i), setting.label, fill="black")
    image.save(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="*", help="pydicom-data names or paths (default: 693_UNCR and the "
                        "realdata CT and MR images)")
    parser.add_argument("--trials", type=int, default=5, help="noise draws per sigma, image and setting")
    parser.add_argument("--png", type=Path, help="chart path (default benchmarks/robustness.png; quick: build/)")
    parser.add_argument("--quick", action="store_true", help="CI size: 693_UNCR, the default setting, "
                        "one draw of " + ", ".join(QUICK))
    args = parser.parse_args()
    settings, perturbations = SETTINGS, PERTURBATIONS
    if args.quick:
        settings, perturbations, args.trials = SETTINGS[:1], tuple(p for p in PERTURBATIONS if p.label in QUICK), 1
    paths = [Path(p) if Path(p).exists() else image_path(p) for p in args.images] or [image_path("693_UNCR.dcm")]
    if not args.images and not args.quick:
        paths += [p for p in realdata_images() if p.name.startswith(("ct_", "mr_"))]
    png = args.png or (ROOT / "build" / "robustness.png" if args.quick else Path(__file__).with_suffix(".png"))
    with tempfile.TemporaryDirectory() as tmp:
        node_path, peer_path = keyfiles.generate(Path(tmp))
        node_keys, peer_keys = keyfiles.load_node_keys(node_path), keyfiles.load_peer_keys(peer_path)
    rows = []
    for path in paths:
        rows += measure(path, settings, perturbations, args.trials, node_keys, peer_keys,
                        lambda stage: print(f"  {stage}", file=sys.stderr, flush=True))
    print_table(rows, perturbations)
    print_tradeoff(rows, perturbations)
    print_goal(rows)
    png.parent.mkdir(parents=True, exist_ok=True)
    plot(rows, perturbations, png)
    print(f"chart: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
