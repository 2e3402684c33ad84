"""``stegonode report``: the three seeds' tables measured on our images, the published figures
beside ours, written as report.md, report.html and PNG plots.

- Seed 002 (data hiding with Mask R-CNN): Table 3 (NCC of cover and stego masks, PSNR), Table 4
  (PSNR against embedding strength), Table 5 (capacity and payload), Table 6 (noise attacks:
  decode success, bit error rate, NCC of the recovered QR code), Table 7 (comparison),
  segmentation IoU; and the region kept bit-identical (what the DICOM SEG shows).
- Seed 004 (chaotic cipher): the statistics of ``cipher-report`` for the chaos cipher and
  AES-GCM, with histograms.
- Seed 000 (deep image-in-image steganography): the held-out table of ``deepstego-report``,
  with example images.

It needs the ``train`` extra (seed 000's table runs the torch networks, the IoU the network
alone) and the ``report`` extra (matplotlib, markdown).
- Provenance: images, git commit, weight fingerprints, versions, duration.

Every figure is measured here, on the images given (default: the round-trip set and
``../shared/realdata`` where present), with the default pipeline; the seeds' figures are
quoted from their text, on their own images.
"""

from __future__ import annotations

import hashlib
import os
import platform
import secrets
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom

from stegonode.codecs import cipher_stats
from stegonode.codecs import keys as keyfiles
from stegonode.codecs.metrics import distortion
from stegonode.codecs.registry import make_codec
from stegonode.dicom.dicomfile import read_dicom
from stegonode.dicom.pixels import PixelFormat, read_pixels
from stegonode.errors import StegonodeError, public_message
from stegonode.handlers.encrypt import CIPHERS, pixel_words
from stegonode.handlers.pipeline import Pipeline
from stegonode.handlers.protection import read_protection
from stegonode.handlers.reveal import usable_in
from stegonode.node.config import DEFAULTS
from stegonode.segmenters.maskrcnn import windowed
from stegonode.segmenters.registry import make_segmenter
from stegonode.training import evidence

ROOT = Path(__file__).resolve().parents[1]
Progress = Callable[[str], None]  # called with each stage's name as it starts
STEPS = (4.0, 6.0, 10.0, 16.0, 24.0)  # our strength: the DCT codec's QIM step (default 10)
# Attack levels: stored units (Gaussian sigma, uniform half-width) or the fraction of pixels hit.
# The last Gaussian and uniform levels are as strong as seed 002's: about 53 dB at peak 65535.
ATTACK_LEVELS = {"gaussian": (1.0, 4.0, 140.0), "uniform": (2.0, 8.0, 242.0),
                 "salt-and-pepper": (0.001, 0.01, 0.05)}
SEED = 2024

# -- the seeds' published figures (quoted from their text) -------------------------------------
SEED002_TABLE3 = (  # patient, scan type, size, NCC, PSNR (dB, 16-bit peak)
    (1, "CT", "512 x 512", 1.00, 116.07), (2, "CT", "512 x 512", 1.00, 113.69),
    (3, "CT", "512 x 512", 0.83, 115.53), (4, "CT", "512 x 512", 1.00, 116.57),
    (5, "CT", "512 x 512", 0.99, 116.02), (6, "MR", "256 x 256", 1.00, 107.47),
    (7, "MR", "256 x 256", 0.99, 110.3), (8, "MR", "512 x 512", 1.00, 117.4),
    (9, "MR", "256 x 256", 0.99, 110.3), (10, "MR", "256 x 256", 0.99, 110.33))
SEED002_BETAS = (10, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000)
SEED002_TABLE4 = {  # average PSNR (dB, 16-bit peak) per beta
    "CT": (74.4958, 95.4314, 95.7138, 104.3494, 107.0938, 109.155, 110.7842, 112.49, 113.6364, 114.7446, 115.5788),
    "MR": (70.2268, 91.0632, 97.1324, 100.655, 103.1998, 105.1404, 106.6804, 108.0844, 109.2256, 110.3362, 111.1628)}
SEED002_TABLE5 = {  # patient: (capacity, payload), fractions of the image as printed
    "CT": ((0.5, 0.031), (0.54, 0.037), (0.50, 0.031), (0.48, 0.032), (0.49, 0.031)),
    "MR": ((0.63, 0.09), (0.61, 0.10), (0.54, 0.02), (0.72, 0.08), (0.58, 0.10))}
SEED002_TABLE6 = {"gaussian": (0.3188, 53.36), "uniform": (0.3150, 53.33), "salt-and-pepper": (0.3193, 53.39)}
SEED002_TABLE7 = (  # method, image size, technique, capacity (bpp), payload (bits), best PSNR (dB)
    ("Bozhidar and Borislav", "336 x 336", "Nuclear spin generator", "0.75", "83,883", "113.50"),
    ("Subhadip et al.", "256 x 256", "LSB and shell matrix", "3", "786,432", "48.42"),
    ("Akshay et al.", "128 x 128", "Deep learning", "24", "-", "37.55"),
    ("Atique et al.", "300 x 300", "Deep learning", "8", "89,910", "36.58"),
    ("Seed 002 (proposed)", "512 x 512", "Deep learning", "0.50", "131,524", "115.53"))
SEED002_IOU = 0.9146
SEED004 = {  # test -> what seed 004 reports
    "chi-square": "< 293 (8-bit images)",
    "avalanche, one key bit flipped": "50.75 % (existing model 50.037 %)",
}


@dataclass(frozen=True)
class Settings:
    """What to measure, and how much (the defaults are the full report)."""

    images: list[Path]
    out: Path
    trials: int = 3  # noise draws per attack and level
    phantoms: int = 30  # held-out phantoms for the segmentation IoU (plus the labelled real images)
    attack_images: int = 2  # images attacked with noise: the first CT and the first MR
    cipher_images: int = 2  # images for seed 004's statistics: the first 16-bit and 8-bit ones
    steps: tuple[float, ...] = STEPS


@dataclass
class Measured:
    """One image through protect, re-segmentation and reveal."""

    path: Path
    modality: str
    size: str
    bits_stored: int
    refused: str | None = None
    protected: evidence.Protected | None = None
    figures: dict = field(default_factory=dict)


class Report:
    """The report under construction: markdown lines and the PNGs beside them."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.lines: list[str] = []

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def table(self, head: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        self.add("| " + " | ".join(head) + " |", "|" + " --- |" * len(head))
        self.add(*("| " + " | ".join(_cell(v) for v in row) + " |" for row in rows))
        self.add("")

    def image(self, path: Path, title: str) -> None:
        self.add(f"![{title}]({path.relative_to(self.out).as_posix()})", "")

    def write(self) -> tuple[Path, Path]:
        import markdown

        text = "\n".join(self.lines) + "\n"
        md = self.out / "report.md"
        md.write_text(text)
        body = markdown.markdown(text, extensions=["tables"])
        html = self.out / "report.html"
        html.write_text(f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>stegonode report</title>"
                        f"<style>{_CSS}</style></head><body>\n{body}\n</body></html>\n")
        return md, html


_CSS = ("body{font-family:sans-serif;max-width:70em;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:2px 6px;"
        "text-align:right}th{background:#eee}td:first-child{text-align:left}img{max-width:100%}")


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "inf" if np.isinf(value) else f"{value:.4g}" if abs(value) < 1 else f"{value:.2f}"
    return str(value).replace("|", "\\|")  # a bare | would end the markdown cell


def stages(settings: Settings) -> int:
    """How many progress steps :func:`build` reports."""
    attacks = settings.attack_images * sum(len(levels) for levels in ATTACK_LEVELS.values())
    return len(settings.images) + 1 + attacks + 1 + settings.cipher_images + 1


def build(settings: Settings, progress: Progress = lambda stage: None) -> tuple[Path, Path]:
    """Measure everything and write the report; returns the paths of report.md and report.html."""
    start = time.monotonic()
    settings.out.mkdir(parents=True, exist_ok=True)
    report = Report(settings.out)
    report.add("# stegonode: the seeds' tables on our images", "",
               "Each table puts the seed's published figures (their images, their text) beside ours "
               "(measured now, on the images listed at the end, with the default pipeline: Mask R-CNN "
               "segmenter, DCT codec at step 10, margin 6). PSNR always states its peak.", "")
    with tempfile.TemporaryDirectory() as folder:
        node_path, peer_path = keyfiles.generate(Path(folder))
        node_keys, peer_keys = keyfiles.load_node_keys(node_path), keyfiles.load_peer_keys(peer_path)
    pipeline = evidence.pipeline_for(node_keys)
    measured = []
    for path in settings.images:
        progress(f"protect {path.name}")
        measured.append(_measure(path, pipeline, peer_keys))
    ok = [m for m in measured if m.protected is not None]
    _seed002(report, settings, ok, node_keys, peer_keys, progress)
    progress("segmentation IoU")
    _iou(report, settings)
    _kept(report, settings, ok)
    _seed004(report, settings, ok, progress)
    progress("seed 000")
    _seed000(report, settings)
    _provenance(report, measured, time.monotonic() - start)
    return report.write()


# -- per image: protect, segment the stego image, reveal ----------------------------------------

def _measure(path: Path, pipeline: Pipeline, peer_keys: keyfiles.PeerKeys) -> Measured:
    try:
        original = read_dicom(path)
        fmt = PixelFormat.of(original)
        frames = int(original.get("NumberOfFrames") or 1)
        result = Measured(path, str(original.get("Modality", "")), f"{original.Rows} x {original.Columns}"
                          + (f" x {frames}" if frames > 1 else ""), fmt.bits_stored)
    except Exception as exc:  # the report lists a file it cannot read, with the reason
        return Measured(path, "", "", 0, refused=str(exc) if isinstance(exc, StegonodeError) else
                        f"cannot read it as DICOM ({type(exc).__name__})")
    try:
        protected = evidence.protect(original, pipeline)
    except Exception as exc:  # the report lists any image the pipeline cannot take
        result.refused = public_message(exc)
        return result
    ds = protected.dataset()
    protection = read_protection(ds)
    again = make_segmenter(protection.segmenter, protection.segmenter_params).segment(ds, protected.stego, protection.segmenter_levels).mask
    kept = ~usable_in(ds, protected.stego, protection)  # reveal's region: the recorded one where there is one
    changed = protected.stego != protected.cover
    usable = protected.usable
    codec = make_codec(protection.codec, protection.params)
    reason = evidence.failure(ds, peer_keys, protected, original)
    result.protected = protected
    result.figures = {
        **protected.report,
        "ncc": _ncc(protected.foreground, again),
        "recorded": protection.region is not None,  # reveal reads the recorded region, not this mask
        "differing": int((protected.foreground != again).sum()),
        "revealed": reason is None,
        "reason": reason,
        "pixels": int(protected.cover.size),
        "message_bits": int(protected.message.size),
        "capacity_bits": int(codec.capacity(usable)),
        "kept_fraction": float(kept.mean()),
        "usable_fraction": float(usable.mean()),
        "kept_changed": int((kept & changed).sum()),
        "protection_kept_changed": int((~usable & changed).sum()),
        "kept_differing": int((kept != ~usable).sum()),
    }
    return result


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    from stegonode.training.maskrcnn_fit import ncc

    return ncc(a, b)


# -- seed 002 -------------------------------------------------------------------------------------

def _seed002(report: Report, settings: Settings, ok: list[Measured], node_keys: keyfiles.NodeKeys,
             peer_keys: keyfiles.PeerKeys, progress: Progress) -> None:
    report.add("## Seed 002: data hiding in medical images with Mask R-CNN", "")
    _table3(report, ok)
    progress("PSNR against strength")
    _table4(report, settings, ok, node_keys)
    _table5(report, ok)
    _table6(report, settings, ok, peer_keys, progress)
    _table7(report, ok)


def _table3(report: Report, ok: list[Measured]) -> None:
    report.add("### Table 3: NCC of cover and stego masks, PSNR", "",
               "Seed 002 (beta 1000, alpha 0.02; PSNR at the 16-bit peak 65535):", "")
    report.table(["patient", "scan type", "image size", "NCC", "PSNR (dB, peak 65535)"], SEED002_TABLE3)
    report.add("Ours: NCC (Eq. 13) of the mask Mask R-CNN finds on the cover and on the stored stego image "
               "(at the cover's recorded levels, as reveal does); PSNR after rounding to stored integers at "
               "the image's own peak 2^BitsStored - 1 and at 65535; and whether reveal recovered the exact "
               "identity from the stego image alone.", "")
    rows = [(m.path.name, m.modality, m.size, m.bits_stored,
             f"{m.figures['ncc']:.4f}" + (" (region recorded)" if m.figures["recorded"] else ""), m.figures["differing"],
             m.figures["psnr_db"], m.figures["psnr_65535_db"], m.figures["changed_pixels"],
             "yes" if m.figures["revealed"] else f"NO: {m.figures['reason']}") for m in ok]
    report.table(["image", "modality", "size", "bits", "NCC", "mask pixels differing", "PSNR (dB, 2^bits-1)",
                  "PSNR (dB, 65535)", "changed pixels", "revealed"], rows)
    if ok:
        ncc = np.array([m.figures["ncc"] for m in ok])
        psnr = np.array([m.figures["psnr_65535_db"] for m in ok])
        report.add(f"Over {len(ok)} images: NCC min {ncc.min():.4f}, mean {ncc.mean():.4f} (seed: 0.83-1.00); "
                   f"PSNR at 65535 {psnr.min():.2f}-{psnr.max():.2f} dB (seed: 107.47-117.40 dB); "
                   f"revealed {sum(m.figures['revealed'] for m in ok)} of {len(ok)}.", "")
        _plot_table3(report, ok)


def _plot_table3(report: Report, ok: list[Measured]) -> None:
    plt = _pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, max(3.0, 0.25 * len(ok) + 1)), sharey=True)
    names = [m.path.stem for m in ok]
    y = np.arange(len(ok))
    left.barh(y, [m.figures["ncc"] for m in ok], color="#1f77b4")
    left.axvspan(0.83, 1.0, color="#ff7f0e", alpha=0.15, label="seed 002 range (0.83-1.00)")
    left.set_xlim(0.8, 1.005)
    left.set_yticks(y, names, fontsize=7)
    left.invert_yaxis()  # the first image on top, as in the table
    left.set_xlabel("NCC of cover and stego masks")
    left.legend(loc="lower left", bbox_to_anchor=(0, 1.0), fontsize=8)
    right.barh(y - 0.2, [min(m.figures["psnr_65535_db"], 200) for m in ok], height=0.4, label="ours, peak 65535")
    right.barh(y + 0.2, [min(m.figures["psnr_db"], 200) for m in ok], height=0.4, label="ours, peak 2^bits-1")
    right.axvspan(107.47, 117.4, color="#ff7f0e", alpha=0.15, label="seed 002 range (peak 65535)")
    right.set_xlabel("PSNR (dB)")
    right.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncol=3, fontsize=8)
    figure.tight_layout()
    report.image(_save(figure, report.out / "seed002-table3.png"), "NCC and PSNR per image")


def _table4(report: Report, settings: Settings, ok: list[Measured], node_keys: keyfiles.NodeKeys) -> None:
    chosen = _by_modality(ok, ("CT", "MR"), 5)
    report.add("### Table 4: PSNR against embedding strength", "",
               "Seed 002: average PSNR (dB, peak 65535) of 5 CT and 5 MR patients against beta (larger beta, "
               "smaller change):", "")
    report.table(["scan type", *map(str, SEED002_BETAS)], [(k, *v) for k, v in SEED002_TABLE4.items()])
    report.add("Ours: the DCT codec's QIM step (larger step, larger change, more robust; default 10) on up to "
               "5 CT and 5 MR images of the set; the same cover, message and mask at every step. "
               "PSNR (dB) at 65535 / at 2^bits-1.", "")
    rows, curves = [], {}
    for m in chosen:
        assert m.protected is not None
        ds = m.protected.dataset()
        usable = m.protected.usable
        values = []
        for step in settings.steps:
            params = {**DEFAULTS["handlers"]["embed"]["dct"], "step": step}
            codec = make_codec("dct", params).fit(usable, m.protected.message.size, node_keys.embedding_key)
            fmt = PixelFormat.of(ds)
            stego = codec.embed(m.protected.cover, usable, m.protected.message, node_keys.embedding_key,
                                fmt.value_range)
            values.append(distortion(m.protected.cover, stego, fmt.peak))
        curves[m.path.stem] = (m.modality, [v["psnr_65535_db"] for v in values])
        rows.append((m.path.name, m.modality, *(f"{v['psnr_65535_db']:.2f} / {v['psnr_db']:.2f}" for v in values)))
    report.table(["image", "modality", *(f"step {s:g}" for s in settings.steps)], rows)
    if curves:
        plt = _pyplot()
        figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
        for name, (modality, psnr) in curves.items():
            left.plot(settings.steps, psnr, marker="o", linestyle="-" if modality == "CT" else "--", label=name)
        left.set_xlabel("ours: QIM step (stored units)")
        left.set_ylabel("PSNR (dB, peak 65535)")
        left.legend(fontsize=7)
        for modality, averages in SEED002_TABLE4.items():
            right.plot(SEED002_BETAS, averages, marker="o", label=f"seed 002 {modality} average")
        right.set_xlabel("seed 002: beta")
        right.legend(fontsize=8)
        figure.tight_layout()
        report.image(_save(figure, report.out / "seed002-table4.png"), "PSNR against strength")


def _table5(report: Report, ok: list[Measured]) -> None:
    report.add("### Table 5: capacity and payload", "",
               "Seed 002 (fractions of the image, as printed; its Table 7 calls the capacity bits per pixel):", "")
    rows: list[tuple[Any, ...]] = [(modality, i + 1, c, p) for modality, values in SEED002_TABLE5.items() for i, (c, p) in enumerate(values)]
    report.table(["scan type", "patient", "capacity", "payload"], rows + [("average", "", 0.54, 0.05)])
    report.add("Ours: capacity is the message bits the DCT codec can carry in the image's usable background "
               "at its minimum redundancy (2 copies per bit); payload is what it carries: the sealed "
               "identity as QR modules (bits) and its bytes. Bits per pixel over all pixels of the image.", "")
    report.add("The usable share (pixels outside the foreground and margin) is the nearest to seed 002's "
               "capacity, a share of the image.", "")
    rows = [(m.path.name, m.modality, f"{m.figures['usable_fraction']:.2f}", m.figures["capacity_bits"],
             m.figures["capacity_bits"] / m.figures["pixels"], m.figures["message_bits"],
             m.figures["message_bits"] / m.figures["pixels"], m.figures["payload_bytes"],
             m.figures["capacity_bits"] / max(m.figures["message_bits"], 1)) for m in ok]
    report.table(["image", "modality", "usable share", "capacity (bits)", "capacity (bpp)", "payload (bits)",
                  "payload (bpp)", "payload (bytes)", "capacity / payload"], rows)


def _table6(report: Report, settings: Settings, ok: list[Measured], peer_keys: keyfiles.PeerKeys,
            progress: Progress) -> None:
    report.add("### Table 6: noise attacks", "",
               "Seed 002: NCC of the retrieved QR code and PSNR (dB, peak 65535) of the attacked stego image:", "")
    report.table(["attack", "NCC of QR", "PSNR (dB)"], [(k, *v) for k, v in SEED002_TABLE6.items()])
    chosen = _by_modality(ok, ("CT", "MR"), 1) or ok[:settings.attack_images]
    chosen = chosen[:settings.attack_images]
    report.add(f"Ours: each attack at three levels on {', '.join(m.path.name for m in chosen)}, "
               f"{settings.trials} seeded draws each; the attacked integers go through the real reveal path "
               "(segmenting the attacked image itself). Decoded: exact identity recovered. BER: raw "
               "extracted QR modules against the embedded ones (draws whose length header was read). NCC: "
               "seed 002's NCC of the recovered QR code (unread draws count 0). PSNR of the attacked image "
               "against the cover, at 65535 and at 2^bits-1. Gaussian: sigma; uniform: half-width; salt and "
               "pepper: fraction of pixels set to the lowest or highest stored value.", "")
    rows: list[tuple[Any, ...]] = []
    rates: dict[tuple[str, str], list[Any]] = {}
    rng = np.random.default_rng(SEED)
    for m in chosen:
        assert m.protected is not None
        original = read_dicom(m.path)
        peak = PixelFormat.of(original).peak
        for attack, levels in ATTACK_LEVELS.items():
            for level in levels:
                progress(f"{attack} {level:g} on {m.path.name}")
                decoded, bers, nccs, psnrs = 0, [], [], []
                for _ in range(settings.trials):
                    ds, noisy = evidence.attacked(m.protected, attack, level, rng)
                    decoded += evidence.failure(ds, peer_keys, m.protected, original) is None
                    bits = evidence.extracted_bits(ds, noisy, peer_keys)
                    ber = evidence.bit_error_rate(bits, m.protected.message)
                    if ber is not None:
                        bers.append(ber)
                    nccs.append(_ncc(bits, m.protected.message) if ber is not None and bits is not None else 0.0)
                    psnrs.append(distortion(m.protected.cover, noisy, peak))
                rates.setdefault((m.path.stem, attack), []).append((level, decoded / settings.trials))
                rows.append((m.path.name, attack, f"{level:g}", f"{decoded}/{settings.trials}",
                             float(np.mean(bers)) if bers else None, float(np.mean(nccs)),
                             float(np.mean([p["psnr_65535_db"] for p in psnrs])),
                             float(np.mean([p["psnr_db"] for p in psnrs]))))
    report.table(["image", "attack", "level", "decoded", "BER", "NCC of QR", "PSNR (dB, 65535)",
                  "PSNR (dB, 2^bits-1)"], rows)
    if rates:
        plt = _pyplot()
        figure, axes = plt.subplots(1, len(ATTACK_LEVELS), figsize=(13, 3.6), sharey=True)
        styles = {name: style for name, style in zip(dict.fromkeys(name for name, _ in rates),
                                                       (("o", "-"), ("s", "--"), ("^", ":"), ("d", "-.")), strict=False)}
        for axis, attack in zip(axes, ATTACK_LEVELS, strict=True):
            for (name, kind), points in rates.items():
                if kind == attack:
                    marker, line = styles.get(name, ("o", "-"))
                    axis.plot([str(level) for level, _ in points], [100 * r for _, r in points], marker=marker,
                              linestyle=line, markersize=8 if marker == "o" else 5, label=name)
            axis.set_title(attack)
            axis.set_xlabel("level")
            axis.set_ylim(-5, 105)
        axes[0].set_ylabel("identity recovered (% of draws)")
        axes[0].legend(fontsize=8)
        figure.tight_layout()
        report.image(_save(figure, report.out / "seed002-table6.png"), "decode success under noise")


def _table7(report: Report, ok: list[Measured]) -> None:
    report.add("### Table 7: comparison", "")
    rows = list(SEED002_TABLE7)
    if ok:
        best = max(ok, key=lambda m: m.figures["psnr_65535_db"])
        typical = sorted(ok, key=lambda m: m.figures["pixels"])[len(ok) // 2]
        rows.append(("stegonode (ours), median-size image " + typical.path.stem, typical.size,
                     "QIM in 4x4 DCT, Mask R-CNN",
                     f"{typical.figures['capacity_bits'] / typical.figures['pixels']:.3f}",
                     f"{typical.figures['message_bits']:,} (capacity {typical.figures['capacity_bits']:,})",
                     f"{typical.figures['psnr_65535_db']:.2f}"))
        rows.append(("stegonode (ours), best PSNR: " + best.path.stem, best.size, "QIM in 4x4 DCT, Mask R-CNN",
                     f"{best.figures['capacity_bits'] / best.figures['pixels']:.3f}",
                     f"{best.figures['message_bits']:,}",
                     f"{best.figures['psnr_65535_db']:.2f} (at 2^bits-1: {best.figures['psnr_db']:.2f})"))
    report.table(["method", "image size", "technique", "capacity (bpp)", "payload (bits)", "best PSNR (dB)"], rows)
    report.add("Seed 002's PSNRs (and ours at 65535) are at the 16-bit peak; the others in its table are at 8-bit "
               "peaks, so they do not compare. Our payload is what the sealed identity needs, not the capacity.", "")


def _iou(report: Report, settings: Settings) -> None:
    from stegonode.segmenters.maskrcnn import MaskRCNNSegmenter
    from stegonode.training import segmenter as segtrain

    segmenter = MaskRCNNSegmenter()
    report.add("### Segmentation IoU", "", f"Seed 002: IoU {SEED002_IOU} (its CHAOS CT/MR test set).", "")
    sets = [("labelled real images (held out)", segtrain.real_examples(True))]
    if settings.phantoms:
        sets.append((f"held-out phantoms ({settings.phantoms})", segtrain.phantoms(
            range(segtrain.HELD_OUT_SEED, segtrain.HELD_OUT_SEED + settings.phantoms))))
    rows = []
    for title, examples in sets:
        metrics, _ = segtrain.accuracy(segmenter, examples)
        rows.append((title, len(examples), metrics["maskrcnn_mean_iou"], metrics["maskrcnn_min_iou"],
                     metrics["network_mean_iou"], metrics["classical_mean_iou"]))
    report.table(["set", "images", "Mask R-CNN mean IoU", "min IoU", "network alone", "classical"], rows)


def _kept(report: Report, settings: Settings, ok: list[Measured]) -> None:
    report.add("### The region kept bit-identical (the DICOM SEG)", "",
               "`stegonode segment --seg` and the node (`seg = true`) write a DICOM SEG of the region reveal "
               "treats as untouchable: the complement of where it reads, computed on the stored image. "
               "Protection kept the same region computed on the original bit-identical. Per image: the share "
               "of the image in the SEG, pixels protection changed inside the region it kept (must be 0), "
               "pixels where the SEG's region and protection's differ, and pixels inside the SEG that "
               "protection changed (where the segmenter, seeing the embedded background, drew its edge "
               "further out).", "")
    rows = [(m.path.name, f"{100 * m.figures['kept_fraction']:.1f} %", m.figures["protection_kept_changed"],
             m.figures["kept_differing"], m.figures["kept_changed"]) for m in ok]
    report.table(["image", "in the SEG", "changed, protection's region", "regions differ", "changed, SEG region"],
                 rows)
    shown = _by_modality(ok, ("CT", "MR"), 1)[:settings.attack_images]
    worst = max(ok, key=lambda m: m.figures["kept_changed"], default=None)
    if worst is not None and worst.figures["kept_changed"] and worst not in shown:
        shown.append(worst)  # where the SEG's edge and protection's differ most
    for m in shown:
        _overlay(report, m)


def _overlay(report: Report, m: Measured) -> None:
    """One frame (the one with most changed pixels inside the SEG): the SEG region tinted green,
    changed pixels red, changed pixels inside the SEG yellow."""
    assert m.protected is not None
    ds = m.protected.dataset()
    kept = ~usable_in(ds, m.protected.stego, read_protection(ds))
    changed = m.protected.stego != m.protected.cover
    frame = int(np.argmax((kept & changed).sum(axis=(1, 2))))
    kept, changed = kept[frame], changed[frame]
    gray = windowed(ds, m.protected.cover[frame:frame + 1])[0]
    rgb = np.repeat(gray[..., None], 3, axis=2)
    rgb[kept] = 0.7 * rgb[kept] + 0.3 * np.array([0.0, 1.0, 0.0])
    rgb[changed] = (1.0, 0.0, 0.0)
    rgb[changed & kept] = (1.0, 1.0, 0.0)
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 6 * rgb.shape[0] / rgb.shape[1]))
    axis.imshow(rgb, interpolation="nearest")
    axis.set_axis_off()
    axis.set_title(f"{m.path.name}{f' frame {frame + 1}' if len(m.protected.stego) > 1 else ''}\nSEG region "
                   f"(green), changed (red), changed inside the SEG ({int((changed & kept).sum())}, yellow)", fontsize=8)
    figure.tight_layout()
    report.image(_save(figure, report.out / f"kept-{m.path.stem}.png"), f"kept region of {m.path.name}")


# -- seed 004 -------------------------------------------------------------------------------------

def _seed004(report: Report, settings: Settings, ok: list[Measured], progress: Progress) -> None:
    report.add("## Seed 004: chaotic cipher and AES-GCM statistics", "",
               "Seed 004 reports chi-square below 293 for every cipher image (8-bit), an avalanche effect of "
               "50.75 % for a changed key (50.037 % for the model it improves on), and histogram, entropy and "
               "correlation figures as plots only. Ours: `cipher-report`'s battery on the stored words of each "
               "image under a fresh random key, criteria for the image's own bit depth and size (alpha 0.05: "
               "a truly random image fails one test in twenty). AES-GCM with a fixed nonce changes only the "
               "changed pixel, so its one-pixel rows fail by design; it relies on a fresh nonce per image.", "")
    for path in _cipher_images(settings, ok):
        progress(f"ciphers on {path.name}")
        words = pixel_words(read_pixels(read_dicom(path)))
        bits = words.dtype.itemsize * 8
        nonces = {name: secrets.token_bytes(cipher.nonce_size) for name, cipher in CIPHERS.items()}
        rows, images = cipher_stats.battery(words, dict(CIPHERS), secrets.token_bytes(32), nonces)
        frames, height, width = words.shape
        report.add(f"### {path.name}: {height} x {width} x {frames}, {bits}-bit words", "")
        report.table(["test", "criterion", "seed 004", "plain", *CIPHERS], [
            (row.test, row.criterion, SEED004.get(row.test, "-"), row.plain,
             *(f"{value:.6g} {'PASS' if passed else 'FAIL'}" for value, passed in row.results.values()))
            for row in rows])
        histogram = report.out / f"seed004-{path.stem}-histograms.png"
        cipher_stats.histogram_png(histogram, {"plain": words, **images}, bits)
        report.image(histogram, f"histograms of {path.name}")


def _cipher_images(settings: Settings, ok: list[Measured]) -> list[Path]:
    """The first 16-bit and the first 8-bit single-frame image of the set."""
    chosen: dict[int, Path] = {}
    for m in ok:
        if m.protected is not None and m.protected.cover.shape[0] == 1:
            chosen.setdefault(m.protected.cover.dtype.itemsize, m.path)
    return [chosen[k] for k in sorted(chosen, reverse=True)][:settings.cipher_images]


# -- seed 000 -------------------------------------------------------------------------------------

def _seed000(report: Report, settings: Settings) -> None:
    from stegonode.models import deepnet
    from stegonode.training import deepstego as deeptrain

    model, src = deepnet.load(None), deeptrain.sources()
    report.add("## Seed 000: deep image-in-image steganography", "")
    report.add(*deeptrain.report(model, src).splitlines(), "")
    report.add("Each strip: cover | stego | 10 x |stego - cover| | secret | recovered (held-out images).", "")
    for path in deeptrain.write_examples(model, src, settings.out / "seed000"):
        report.image(path, path.stem)


# -- provenance -----------------------------------------------------------------------------------

def _provenance(report: Report, measured: list[Measured], seconds: float) -> None:
    import onnxruntime
    import torch

    from stegonode import models

    weights = sorted(Path(models.__file__).parent.glob("*.onnx")) + sorted(Path(models.__file__).parent.glob("*.pt"))
    report.add("## Provenance", "")
    report.add(f"- stegonode commit {_git('rev-parse', 'HEAD')}" + (" with uncommitted changes" if _git(
        "status", "--porcelain", "--untracked-files=no") else ""),
               *(f"- weights {path.name}: SHA-256 {_sha256(path)}" for path in weights),
               f"- Python {platform.python_version()}, numpy {np.__version__}, pydicom {pydicom.__version__}, "
               f"onnxruntime {onnxruntime.__version__}, torch {torch.__version__} (seed 000's table), "
               f"{platform.machine()}, {os.cpu_count()} CPUs",
               f"- took {seconds / 60:.1f} min", "")
    report.add("Images:", "")
    report.table(["image", "folder", "modality", "size", "bits stored", "outcome"], [
        (m.path.name, m.path.parent.name, m.modality, m.size, m.bits_stored,
         "protected" if m.protected is not None else f"refused: {m.refused}") for m in measured])


def _git(*args: str) -> str:
    try:
        result = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=30)
    except OSError:
        return "unknown (git not found)"
    return result.stdout.strip() if result.returncode == 0 else "unknown (not a git checkout)"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


# -- helpers --------------------------------------------------------------------------------------

def _by_modality(ok: list[Measured], modalities: Sequence[str], each: int) -> list[Measured]:
    return [m for modality in modalities for m in [m for m in ok if m.modality == modality][:each]]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: Path) -> Path:
    figure.savefig(path, dpi=110)
    _pyplot().close(figure)
    return path


def default_images() -> list[Path]:
    """The round-trip set and ``../shared/realdata`` where present."""
    from stegonode.training.images import realdata, round_trip

    return round_trip() + realdata()


def image_files(inputs: Sequence[Path]) -> list[Path]:
    """Files given, and the files of folders given (recursively), in order."""
    files: list[Path] = []
    for item in inputs:
        files.extend(sorted(p for p in item.rglob("*") if p.is_file()) if item.is_dir() else [item])
    return files

