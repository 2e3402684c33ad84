"""Protect every object of the studies in ../shared/studies; one row each.

Prints the study, the file, its SOP class, the carriers it got (and why the pixels carry nothing,
when they do not), its references that name an object of the protected study out of all its
references (UIDs of other objects, at every depth: see stegonode.handlers.references), whether
reveal restored its header exactly, and the milliseconds protect took. References the original
study could not resolve either (contour images the source projects do not ship) stay unresolved.
Run from the repository root:

    .venv/bin/python benchmarks/studies.py [--studies ../shared/studies] [--quick]

``--quick``: the two smallest studies only (a smoke run).
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

import pydicom
from pydicom import Dataset

from stegonode.codecs import keys as keyfiles
from stegonode.dicom.references import identities, resolve
from stegonode.handlers.admission import pixel_carrier_obstacle
from stegonode.handlers.pipeline import build_pipeline, describe_carriers
from stegonode.handlers.protect import protect_object
from stegonode.handlers.reveal import reveal
from stegonode.node.config import load

ROOT = Path(__file__).resolve().parents[1]
QUICK = ("pydicom_highdicom_cr_seg", "pydicom_highdicom_ct_sr")


def exact(original: Dataset, restored: Dataset, pixel_path: bool) -> bool:
    """Every element restored (group lengths and padding aside, and the stego pixels of an
    image the pixel codec wrote into)."""
    def kept(ds: Dataset) -> dict:
        return {e.tag: e for e in ds if e.tag.element != 0 and e.tag != 0xFFFCFFFC
                and not (pixel_path and e.keyword == "PixelData")}
    if original.file_meta.TransferSyntaxUID.is_compressed:
        return True  # stored decoded: pixel attributes differ by design
    return kept(original) == kept(restored)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--studies", type=Path, default=ROOT.parent / "shared" / "studies")
    parser.add_argument("--quick", action="store_true", help="the two smallest studies only")
    args = parser.parse_args()
    if not args.studies.is_dir():
        args.studies = Path("/work/shared/studies")
    config = load(None)
    with tempfile.TemporaryDirectory() as tmp:
        node_path, peer_path = keyfiles.generate(Path(tmp))
        node_keys, peer_keys = keyfiles.load_node_keys(node_path), keyfiles.load_peer_keys(peer_path)
    pipeline = build_pipeline(config["pipeline"]["handlers"], config["handlers"], node_keys)
    folders = sorted(p for p in args.studies.iterdir() if p.is_dir() and (not args.quick or p.name in QUICK))
    print(f"{'study':28} {'file':24} {'SOP class':36} {'carriers':14} {'refs':>9} {'exact':5} {'ms':>7}  "
          "why no pixel carrier")
    totals = [0, 0]
    for folder in folders:
        originals = {path.name: pydicom.dcmread(path) for path in sorted(folder.glob("*.dcm"))}
        protected, rows = {}, []
        for name, original in originals.items():
            ds = copy.deepcopy(original)
            start = time.perf_counter()
            instance = protect_object(ds, pipeline).instance
            ms = 1000 * (time.perf_counter() - start)
            assert instance is not None and instance.protection is not None
            protected[name] = ds
            restored = reveal(copy.deepcopy(ds), peer_keys).dataset
            obstacle = pixel_carrier_obstacle(original)
            why = obstacle or ("" if instance.protection.has_pixels else "background too small")
            rows.append((name, describe_carriers(instance.protection), exact(original, restored, obstacle is None),
                         ms, why))
        known = identities(protected.values())
        for name, carriers, is_exact, ms, obstacle in rows:
            resolution = resolve(protected[name], known)
            totals[0] += len(resolution.resolved)
            totals[1] += resolution.total
            sop = originals[name].SOPClassUID.name.removesuffix(" Storage")
            print(f"{folder.name[:28]:28} {name[:24]:24} {sop[:36]:36} {carriers:14} "
                  f"{len(resolution.resolved):>4}/{resolution.total:<4} {'yes' if is_exact else 'NO':5} "
                  f"{ms:7.0f}  {obstacle}", flush=True)
    print(f"references resolved: {totals[0]} of {totals[1]} (the rest name objects the studies do not hold)")


if __name__ == "__main__":
    main()
