#!/usr/bin/env python
"""Whether this checkout computes what an earlier revision computed: per image, the segmenter's
foreground, the guard's levels, the usable region and the stego pixels of a fixed message.

A performance change must not change these (issue 29: every change equal in result to what it
replaces): the same foreground and usable region mean the same anatomy pixels left alone and the
same densest changed value as ``benchmarks/realdata.py`` reports, whatever the keys. The earlier
revision is taken from git (``git archive``) into a temporary folder and run there as the
``stegonode`` package, in its own process; this checkout runs in another; both with the same
keys, message and images (../shared/realdata and the round-trip set; the first four frames of a
multi-frame image). Revisions from the layout change on (``stegonode.dicom``) can be compared.
Run from the repository root::

    .venv/bin/python benchmarks/same_results.py [--against REV] [--quick]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
AGAINST = "95b525a"  # the commit before issue 29's processing work
PACKAGES = ("cli", "node", "handlers", "segmenters", "dicom", "codecs", "models", "web", "errors", "training")
QUICK = ("693_UNCR.dcm", "MR2_UNCR.dcm")
FRAMES = 4


def compute(out: Path, keys_path: Path, quick: bool) -> None:
    """What the pipeline decides from each image's pixels, saved to ``out`` (runs in a worker)."""
    sys.path.insert(0, str(ROOT / "tests"))
    import pydicom

    from stegonode.codecs import keys as keyfiles
    from stegonode.dicom.colour import carrier_pixels
    from stegonode.dicom.dicomfile import configure_pydicom
    from stegonode.dicom.pixels import PixelFormat
    from stegonode.handlers import guard
    from stegonode.handlers.pipeline import build_pipeline
    from stegonode.node.config import load

    from images import OTHER_MODALITIES, REALDATA, ROUND_TRIP, image_path

    configure_pydicom()
    config = load(None)
    keys = keyfiles.load_node_keys(keys_path)
    pipeline = build_pipeline(config["pipeline"]["handlers"], config["handlers"], keys)
    segment, embed = (next(h for h in pipeline.handlers if h.name == name) for name in ("segment", "embed"))
    paths = [image_path(name) for name in QUICK] if quick else (
        sorted(REALDATA.glob("*.dcm")) + [image_path(name) for name in ROUND_TRIP + OTHER_MODALITIES])
    arrays: dict[str, np.ndarray] = {}
    for path in paths:
        try:
            ds = pydicom.dcmread(path)
            pixels = carrier_pixels(ds)[:FRAMES]
        except Exception as exc:  # an image this version cannot decode: recorded, compared too
            arrays[f"{path.name}/unreadable"] = np.array([type(exc).__name__])
            continue
        segmenter = segment.policy.for_dataset(ds)
        if segmenter is None:
            arrays[f"{path.name}/not protected"] = np.array([1])
            continue
        foreground = np.stack([segmenter.segment(ds, pixels[i:i + 1]).mask[0] for i in range(len(pixels))])
        measured = guard.measure(ds, pixels, foreground, embed.codec.change_allowance(),
                                 border=0 if segmenter.proves_background else guard.BORDER_REACH)
        usable = guard.usable_region(ds, pixels, foreground, embed.margin, measured)
        arrays.update({f"{path.name}/foreground": foreground, f"{path.name}/usable": usable,
                       f"{path.name}/guard": np.array(measured.levels + measured.medians)})
        bits = int(min(4000, max(8, embed.codec.capacity(usable) // 3)))
        message = np.random.default_rng(3).integers(0, 2, bits).astype(np.uint8)
        try:
            codec = embed.codec.fit(usable, bits, keys.embedding_key)
            arrays[f"{path.name}/stego"] = codec.embed(pixels, usable, message, keys.embedding_key,
                                                       PixelFormat.of(ds).value_range)
        except Exception as exc:  # a background too small for the message: the same in both
            arrays[f"{path.name}/refused"] = np.array([type(exc).__name__])
    np.savez_compressed(out, **arrays)  # type: ignore[arg-type]


def earlier_package(revision: str, folder: Path) -> Path | None:
    """``revision`` of this repository as an importable ``stegonode`` package under ``folder``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", revision],
                             capture_output=True, check=False)
    if archive.returncode != 0:
        print(f"git has no revision {revision} here")
        return None
    source = folder / "source"
    source.mkdir()
    with tempfile.TemporaryFile() as tar_file:
        tar_file.write(archive.stdout)
        tar_file.seek(0)
        with tarfile.open(fileobj=tar_file) as tar:
            tar.extractall(source, filter="data")
    package = folder / "packages" / "stegonode"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    missing = [name for name in PACKAGES if not (source / name).is_dir()]
    if missing:  # this checkout's editable install would fill them in: a mix of both versions
        print(f"{revision} has no {', '.join(missing)} package: it predates the layout these runs need")
        return None
    for name in PACKAGES:
        (package / name).symlink_to(source / name)
    return package.parent


def run_worker(out: Path, keys: Path, quick: bool, path_entry: Path | None) -> bool:
    """Whether the worker ran (an earlier revision may lack what it calls)."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    if path_entry is not None:
        env["PYTHONPATH"] = str(path_entry)
    done = subprocess.run([sys.executable, __file__, "--worker", str(out), "--keys", str(keys),
                           *(["--quick"] if quick else [])], env=env, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        print(f"could not compute with {'the earlier revision' if path_entry else 'this checkout'}: "
              f"{(done.stderr.strip().splitlines() or ['no output'])[-1]}")
    return done.returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default=AGAINST, help=f"the earlier revision (default {AGAINST})")
    parser.add_argument("--quick", action="store_true", help=f"CI size: {' and '.join(QUICK)} only")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--keys", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        compute(args.worker, args.keys, args.quick)
        return 0
    from stegonode.codecs import keys as keyfiles

    with tempfile.TemporaryDirectory(prefix="stegonode-same-") as tmp:
        folder = Path(tmp)
        earlier = earlier_package(args.against, folder)
        if earlier is None:
            print(f"0 of 0 images identical to {args.against}: not compared (no such revision here, or too old)")
            return 0
        node_keys, _ = keyfiles.generate(folder)
        results = {}
        for name, entry in (("earlier", earlier), ("this", None)):
            if not run_worker(folder / f"{name}.npz", node_keys, args.quick, entry):
                print(f"0 of 0 images identical to {args.against}: not compared")
                return 1 if entry is None else 0
            results[name] = np.load(folder / f"{name}.npz")
        earlier_arrays, these = results["earlier"], results["this"]
        images = sorted({key.split("/")[0] for key in [*earlier_arrays.files, *these.files]})
        same = 0
        for image in images:
            keys = sorted({key for key in [*earlier_arrays.files, *these.files] if key.startswith(image + "/")})
            differ = [key.split("/", 1)[1] for key in keys if key not in earlier_arrays.files or key not in these.files
                      or not np.array_equal(earlier_arrays[key], these[key])]
            same += not differ
            parts = ", ".join(key.split("/", 1)[1] for key in keys)
            print(f"{image[:40]:40} {'identical' if not differ else 'DIFFERS: ' + ', '.join(differ)} ({parts})")
        print(f"{same} of {len(images)} images identical to {args.against} (foreground, guard, usable region, "
              "stego pixels of a fixed message and key)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
