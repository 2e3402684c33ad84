#!/usr/bin/env python
"""What each stored transfer syntax costs: bytes on disk and encode time of protected objects.

Protects every image of ../shared/realdata and the round-trip set with the default pipeline,
then stores the protected pixels in each ``[storage] transfer_syntax`` choice and prints, per
image and in total: the bytes received (the source file), the bytes stored and their ratio, and
the milliseconds of encoding (pydicom's encoding plugin plus the decode that proves it lossless).
An image received Deflated is stored Deflated where that is smaller than the syntax (marked d).
Then it checks node.toml's default against the targets: total stored <= 1.0 x total received,
and each losslessly compressed source stored in at most 1.3 x its own size (a lossy source
cannot be matched losslessly). Run from the repository root:

    .venv/bin/python benchmarks/storage.py [--quick]

``--quick``: the smallest image of each set only (a smoke run; the targets are printed, not
enforced). ``--header-only``: compressed sources whose pixels protection leaves unchanged (the
header carrier alone: palette colour, too small, data pixels, colour or grayscale without room
in the background), from pydicom-data and ../shared/realdata: stored as the pipeline leaves
them whatever the syntax (marked k), with the milliseconds the pipeline spends storing them
(targets printed, not enforced: a small object's header carrier outweighs its pixels).
Exit status 1 when the default misses a target.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from stegonode.codecs import keys as keyfiles  # noqa: E402
from stegonode.dicom.dicomfile import configure_pydicom, dicom_bytes  # noqa: E402
from stegonode.errors import StegonodeError  # noqa: E402
from stegonode.handlers.compression import DEFAULT_STORAGE, STORAGE_SYNTAXES, store_pixels  # noqa: E402
from stegonode.handlers.pipeline import build_pipeline  # noqa: E402
from stegonode.handlers.protect import protect_object  # noqa: E402
from stegonode.node.config import load  # noqa: E402

from images import OTHER_MODALITIES, ROUND_TRIP, image_path, realdata_images  # noqa: E402

# Sources whose transfer syntax is lossless by definition (JPEG 2000 "Image Compression" may be
# either, so it is not counted as lossless).
LOSSLESS_SOURCES = {JPEGLossless, JPEGLosslessSV1, JPEGLSLossless, JPEG2000Lossless, RLELossless,
                    DeflatedExplicitVRLittleEndian}
SHORT = {"jpeg-ls-lossless": "JPEG-LS", "jpeg2000-lossless": "JPEG2000", "rle-lossless": "RLE",
         "explicit-vr-little-endian": "ExplicitLE"}
LIMIT_TOTAL, LIMIT_LOSSLESS = 1.0, 1.3
# Compressed sources the default pipeline protects with the header carrier alone (pydicom-data,
# then ../shared/realdata): lossless and lossy, grayscale and colour, why no pixel carrier.
HEADER_ONLY = [
    "emri_small_RLE.dcm", "emri_small_jpeg_2k_lossless.dcm", "emri_small_jpeg_ls_lossless.dcm",  # no room
    "MR_small_jp2klossless.dcm", "JPGExtended.dcm", "SC_rgb_jpeg_dcmtk.dcm", "SC_rgb_jpeg_gdcm.dcm",  # no room
    "SC_rgb_jls_lossy_line.dcm", "SC_rgb_rle_16bit_2frame.dcm", "GDCMJ2K_TextGBR.dcm",  # no room
    "OBXXXX1A_rle_2frame.dcm",  # palette colour
    "JPEGLSNearLossless_16.dcm", "SC_rgb_small_odd_jpeg.dcm",  # too small
    "rtdose_rle.dcm",  # data pixels
]
REALDATA_HEADER_ONLY = ["mg_fodicom_2.dcm", "pt_fodicom_1.dcm"]  # JPEG Lossless SV1: no room


@dataclass
class Row:
    name: str
    source_syntax: UID
    received: int
    stored: dict[str, int] = field(default_factory=dict)
    encode_ms: dict[str, float] = field(default_factory=dict)
    fallback: dict[str, str] = field(default_factory=dict)  # "*" stored uncompressed, "d" deflated


def measure(path: Path, pipeline) -> Row | str:
    """One image protected, then stored in each syntax; a refusal's reason instead."""
    ds = pydicom.dcmread(path)
    row = Row(path.name, UID(str(ds.file_meta.TransferSyntaxUID)), path.stat().st_size)
    try:
        instance = protect_object(ds, pipeline).instance
        assert instance is not None, "a cover, not a stego object"
    except StegonodeError as exc:
        return str(exc)
    pixels = instance.pixels
    if pixels is None or "pixels" not in instance.report.get("carriers", "pixels"):
        for name in STORAGE_SYNTAXES:  # header carrier only: stored as the pipeline left it
            row.encode_ms[name] = 1000 * instance.timings["encode"]
            row.stored[name] = len(dicom_bytes(ds))
            row.fallback[name] = "k"
        return row
    for name, syntax in STORAGE_SYNTAXES.items():
        start = time.perf_counter()
        used = store_pixels(ds, pixels, syntax, received=row.source_syntax)
        row.encode_ms[name] = 1000 * (time.perf_counter() - start)
        row.stored[name] = len(dicom_bytes(ds))
        row.fallback[name] = "" if used == syntax else "d" if used == DeflatedExplicitVRLittleEndian else "*"
    return row


def print_row(name: str, source: str, received: int, stored: dict[str, int], ms: dict[str, float],
              fallback: dict[str, str] | None = None) -> None:
    cells = []
    for syntax in STORAGE_SYNTAXES:
        mark = (fallback or {}).get(syntax) or " "
        cells.append(f"{stored[syntax]:>10} {stored[syntax] / received:5.2f}x{mark}{ms[syntax]:>7.0f}")
    print(f"{name[:30]:30} {source[:14]:14} {received:>10}  " + "  ".join(cells), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the smallest image of each set only")
    parser.add_argument("--header-only", action="store_true",
                        help="compressed sources protected with the header carrier alone")
    args = parser.parse_args()
    configure_pydicom()
    config = load(None)
    with tempfile.TemporaryDirectory() as tmp:
        node_keys = keyfiles.load_node_keys(keyfiles.generate(Path(tmp))[0])
    # --header-only: the pipeline stores as the node does (in the default syntax, unless it keeps
    # the received bytes); otherwise it leaves the pixels uncompressed and each syntax is measured.
    pipeline = build_pipeline(config["pipeline"]["handlers"], config["handlers"], node_keys,
                              config["pipeline"]["carriers"],
                              DEFAULT_STORAGE if args.header_only else "explicit-vr-little-endian")
    sets = {"realdata": realdata_images(), "round-trip": [image_path(n) for n in ROUND_TRIP + OTHER_MODALITIES]}
    if args.header_only:
        sets = {"header carrier only": [image_path(n) for n in HEADER_ONLY]
                + [p for p in realdata_images() if p.name in REALDATA_HEADER_ONLY]}
    if args.quick:
        sets = {label: sorted(paths, key=lambda p: p.stat().st_size)[:1] for label, paths in sets.items()}
    print(f"{'':30} {'':14} {'':>10}  " + "  ".join(f"{SHORT[s]:^25}" for s in STORAGE_SYNTAXES))
    print(f"{'image':30} {'source syntax':14} {'received':>10}  "
          + "  ".join(f"{'stored':>10} {'ratio':>6} {'ms':>7}" for _ in STORAGE_SYNTAXES))
    rows: list[Row] = []
    for label, paths in sets.items():
        if not paths:
            print(f"-- {label}: no images (folder absent)")
            continue
        print(f"-- {label}")
        for path in paths:
            outcome = measure(path, pipeline)
            if isinstance(outcome, str):
                print(f"{path.name[:30]:30} refused: {outcome}")
                continue
            rows.append(outcome)
            print_row(outcome.name, outcome.source_syntax.name, outcome.received, outcome.stored,
                      outcome.encode_ms, outcome.fallback)
    if not rows:
        print("no image protected")
        return 1
    received = sum(row.received for row in rows)
    print_row(f"TOTAL ({len(rows)} protected)", "", received,
              {s: sum(row.stored[s] for row in rows) for s in STORAGE_SYNTAXES},
              {s: sum(row.encode_ms[s] for row in rows) for s in STORAGE_SYNTAXES})
    print("* stored uncompressed: the encoder refused these pixels or did not give them back exactly;\n"
          "d stored Deflated: received so, and deflate codes the pixels smaller than this syntax\n"
          "k header carrier only: stored as the pipeline leaves it, whatever the syntax; ms: storing it")
    met = check_default(rows, received)
    return 0 if met or args.quick or args.header_only else 1  # --quick: too few images for the targets to mean anything


def check_default(rows: list[Row], received: int) -> bool:
    """Whether node.toml's default meets the targets (printed)."""
    total = sum(row.stored[DEFAULT_STORAGE] for row in rows) / received
    over = [f"{row.name} {row.stored[DEFAULT_STORAGE] / row.received:.2f}x" for row in rows
            if row.source_syntax in LOSSLESS_SOURCES and row.stored[DEFAULT_STORAGE] > LIMIT_LOSSLESS * row.received]
    print(f"default {DEFAULT_STORAGE}: total stored {total:.2f} x received (target <= {LIMIT_TOTAL}); "
          f"losslessly compressed sources over {LIMIT_LOSSLESS} x: {', '.join(over) or 'none'}")
    return total <= LIMIT_TOTAL and not over


if __name__ == "__main__":
    sys.exit(main())
