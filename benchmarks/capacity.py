#!/usr/bin/env python
"""Which carriers each real image gets: the capacity table of the header-carrier issue.

For every image of the round-trip set, the small images and ../shared/realdata (when present),
the default pipeline protects it and the table shows its size, the safe background (the usable
region embed writes into, as a share of the image), the pixel payloads (QR modules of the full
and of the core identity) against what the background offers, the carriers it got, and the
requirement: the full identity in the pixels when the image is at least 256x256 with at least
20 % safe background; at least the core identity when at least 128x128 with at least 10 %;
the header carrier always. Each protected image is then revealed from its pixels alone
(header carrier removed) and from its header alone (pixels overwritten with noise).

Run from the repository root::

    .venv/bin/python benchmarks/capacity.py [--segmenter classical] [--recipients N] [--quick] [IMAGE ...]

``--recipients N`` seals for N recipients (node.keys's own and N-1 made for it, as
``[handlers.seal] recipients`` lists them); each image is revealed with the first one's key and,
from the pixels, with the last one's as well.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import pydicom  # noqa: E402

from stegonode.codecs import keys as keyfiles  # noqa: E402
from stegonode.errors import RefusedError  # noqa: E402
from stegonode.handlers.pipeline import build_pipeline  # noqa: E402
from stegonode.node import config as node_config  # noqa: E402

from capacity import Row, measure  # noqa: E402
from images import ROUND_TRIP, SMALL, image_path, realdata_images  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="*", help="pydicom-data names or paths (default: all)")
    parser.add_argument("--segmenter", choices=node_config.SEGMENTER_CHOICES)
    parser.add_argument("--recipients", type=int, default=1, help="recipients to seal for (default 1)")
    parser.add_argument("--quick", action="store_true", help="CI size: 693_UNCR only (unless images are named)")
    args = parser.parse_args()
    if args.quick and not args.images:
        args.images = ["693_UNCR.dcm"]
    config = node_config.defaults()
    if args.segmenter:
        config["handlers"]["segment"]["segmenter"] = args.segmenter
    with tempfile.TemporaryDirectory() as folder:
        keyfiles.generate(Path(folder))
        node = keyfiles.load_node_keys(Path(folder) / "node.keys")
        peer = keyfiles.load_peer_keys(Path(folder) / "peer.keys")
        last = peer
        if args.recipients > 1:
            extra = [keyfiles.generate_recipient(Path(folder), f"r{n}", Path(folder) / "node.keys")
                     for n in range(2, args.recipients + 1)]
            config["handlers"]["seal"]["recipients"] = [str(Path(folder) / "node.keys")] + [
                str(public) for public, _ in extra]
            last = keyfiles.load_peer_keys(extra[-1][1])
        pipeline = build_pipeline(config["pipeline"]["handlers"], config["handlers"], node)
    print(f"sealed for {args.recipients} recipient(s)")
    sources = [Path(p) if Path(p).exists() else image_path(p) for p in args.images] or (
        [image_path(n) for n in (*ROUND_TRIP, *SMALL)] + realdata_images())
    print(Row.HEADER)
    failed = refused = 0
    for path in sources:
        try:
            row = measure(pipeline, peer, copy.deepcopy(pydicom.dcmread(path)), path.name,
                          other_peer=last if last is not peer else None)
        except RefusedError as exc:  # refused for what it is (not for capacity): no requirement
            refused += 1
            print(f"{path.name:<40} refused: {exc}", flush=True)
            continue
        failed += not row.meets_requirement
        print(row.line(), flush=True)
    print(f"{len(sources) - refused - failed}/{len(sources) - refused} images meet the requirement"
          f" ({refused} refused for what they are)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
