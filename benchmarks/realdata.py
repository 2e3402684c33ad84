"""Protect and reveal every image of ../shared/realdata and the round-trip set; one row each.

Prints modality, the segmenter that decided, carried (revealed exactly) or refused (why),
changed pixels inside the reviewed anatomy label, the densest changed CT value, PSNR (peak
2^BitsStored - 1) and the usable share of the image; writes build/realdata/<name>.png: the first
frame, the label's outline in green, changed pixels in red. Run from the repository root:

    .venv/bin/python benchmarks/realdata.py [--out build/realdata] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pydicom

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from stegonode.codecs import keys as keyfiles  # noqa: E402
from stegonode.handlers.pipeline import build_pipeline  # noqa: E402
from stegonode.node.config import load  # noqa: E402

from anatomy import evaluate, realdata_images, write_overlay  # noqa: E402
from images import OTHER_MODALITIES, ROUND_TRIP, image_path  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "realdata")
    parser.add_argument("--quick", action="store_true", help="CI size: one realdata CT and one MR image")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    config = load(None)
    with tempfile.TemporaryDirectory() as tmp:
        node_path, peer_path = keyfiles.generate(Path(tmp))
        node_keys, peer_keys = keyfiles.load_node_keys(node_path), keyfiles.load_peer_keys(peer_path)
    pipeline = build_pipeline(config["pipeline"]["handlers"], config["handlers"], node_keys)
    paths = realdata_images() + [image_path(name) for name in ROUND_TRIP + OTHER_MODALITIES]
    if args.quick:  # the first realdata CT and MR, or the bundled CT where ../shared/realdata is absent
        paths = [next((p for p in paths if p.name.startswith(prefix)), image_path("693_UNCR.dcm"))
                 for prefix in ("ct_", "mr_")]
    print(f"{'image':34} {'mod':4} {'segmenter':9} {'result':9} {'anatomy':>7} {'maxHU':>6} "
          f"{'PSNR':>6} {'usable':>6}  reason")
    for path in paths:
        outcome = evaluate(path, pipeline, peer_keys)
        result = "refused" if outcome.refused else ("revealed" if outcome.revealed else "WRONG")
        hu = "" if outcome.densest_changed_hu is None else f"{outcome.densest_changed_hu:.0f}"
        psnr = "" if outcome.refused else f"{outcome.psnr_db:.1f}"
        usable = "" if outcome.refused else f"{outcome.usable_fraction:.1%}"
        anatomy = "" if outcome.refused else str(outcome.anatomy_changed)
        print(f"{path.name[:34]:34} {outcome.modality:4} {outcome.segmenter:9} {result:9} {anatomy:>7} "
              f"{hu:>6} {psnr:>6} {usable:>6}  {outcome.refused or outcome.error}", flush=True)
        if outcome.cover is not None:
            write_overlay(outcome, pydicom.dcmread(path), args.out / f"{path.stem}.png")
    print(f"overlays: {args.out}")


if __name__ == "__main__":
    main()
