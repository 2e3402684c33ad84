"""segment: the foreground masks a segmenter finds, or (--seg) the DICOM SEG of the region protection kept."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from stegonode.dicom.dicomfile import read_dicom
from stegonode.dicom.pixels import read_pixels
from stegonode.errors import StegonodeError
from stegonode.node import config as node_config

from .common import (
    pixel_cipher_key,
    run_each,
)


def add_commands(sub: Any) -> None:
    segment = sub.add_parser("segment", help="write the foreground mask the segmenter finds, and an overlay")
    segment.add_argument("inputs", nargs="+", type=Path, metavar="IN", help="DICOM files or folders")
    segment.add_argument("--out", type=Path, required=True, metavar="DIR")
    segment.add_argument("--segmenter", choices=node_config.SEGMENTER_CHOICES,
                         default=node_config.DEFAULTS["handlers"]["segment"]["segmenter"],
                         help="default: the pipeline's default segmenter")
    segment.add_argument("--seg", action="store_true",
                         help="inputs are protected: write one DICOM SEG per series of the region kept bit-identical")
    segment.add_argument("--keys", type=Path, help="with --seg, for encrypted pixels: node.keys or peer.keys")
    segment.set_defaults(run=_segment)


def _segment(args: argparse.Namespace) -> int:
    if args.seg:
        return _kept_segmentations(args)
    from stegonode.handlers.overlay import write_mask, write_overlay
    from stegonode.segmenters.maskrcnn import windowed
    from stegonode.segmenters.registry import make_segmenter

    segmenter = make_segmenter(args.segmenter)
    args.out.mkdir(parents=True, exist_ok=True)

    def work(path: Path, relative: Path) -> str:
        start = time.perf_counter()
        ds = read_dicom(path)
        pixels = read_pixels(ds)
        masks = segmenter.foreground(ds, pixels)
        images = windowed(ds, pixels)
        stem = relative.with_suffix("").as_posix().replace("/", "_")
        for index, mask in enumerate(masks):
            name = stem if len(masks) == 1 else f"{stem}_f{index}"
            write_mask(args.out / f"{name}.png", mask)
            write_overlay(args.out / f"{name}-overlay.png", images[index], mask)
        share = 100 * float(masks.mean())
        return f"OK {path}: {len(masks)} frame(s), foreground {share:.1f} %, {1000 * (time.perf_counter() - start):.0f} ms"

    return run_each(args.inputs, work)


def _kept_segmentations(args: argparse.Namespace) -> int:
    """``segment --seg``: one SEG per series of the protected inputs, ``DIR/<SEG series UID>.dcm``."""
    from stegonode.handlers import dicomseg

    key = pixel_cipher_key(args.keys) if args.keys else None
    series: dict[str, list[dicomseg.Source]] = {}

    def work(path: Path, relative: Path) -> str:
        ds = read_dicom(path)
        mask = dicomseg.kept_region(ds, key)
        series.setdefault(str(ds.SeriesInstanceUID), []).append(dicomseg.Source(ds, mask))
        return f"OK {path}: {100 * float(mask.mean()):.1f} % of the pixels kept bit-identical"

    status = run_each(args.inputs, work)
    args.out.mkdir(parents=True, exist_ok=True)
    for uid, sources in series.items():
        try:
            seg = dicomseg.kept_segmentation(sources, dicomseg.software_version())
        except StegonodeError as exc:
            print(f"FAIL series {uid}: {exc}")
            status = 1
            continue
        target = args.out / f"{seg.SeriesInstanceUID}.dcm"
        seg.save_as(target, enforce_file_format=True)
        print(f"wrote {target}: SEG of {len(sources)} instance(s), {seg.NumberOfFrames} frame(s)")
    return status
