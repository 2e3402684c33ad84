#!/usr/bin/env python
"""How reliably small backgrounds carry the message: DCT layouts, and protect/reveal repeats.

* Bits without a copy: for each image, the message bits (QR modules) that no written slot
  carries, under layout 1 (independent placement per chunk) and layout 2 (shifted chunks, the
  chunk size ``fit`` picks), averaged over fresh keys. Half of them read back wrong; the QR
  code's Reed-Solomon code has to absorb them.
* Protect/reveal repeats: the node's pipeline protects the image with a fresh key pair, the
  stego file is written and read back, segmented again and revealed; failures are counted.

Run from the repository root::

    .venv/bin/python benchmarks/dct_layout.py [--segmenter maskrcnn] [--repeats 100] [--quick] [IMAGE ...]
"""

from __future__ import annotations

import argparse
import copy
import io
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import numpy as np  # noqa: E402
import pydicom  # noqa: E402

from stegonode.codecs import keys as keyfiles  # noqa: E402
from stegonode.codecs import payload  # noqa: E402
from stegonode.codecs.dct import DctCodec, DctParams  # noqa: E402
from stegonode.errors import StegonodeError  # noqa: E402
from stegonode.handlers.pipeline import build_pipeline  # noqa: E402
from stegonode.handlers.protect import protect_object  # noqa: E402
from stegonode.handlers.reveal import reveal  # noqa: E402
from stegonode.node import config as node_config  # noqa: E402

from images import image_path  # noqa: E402


def fresh_keys() -> tuple[keyfiles.NodeKeys, keyfiles.PeerKeys]:
    with tempfile.TemporaryDirectory() as folder:
        keyfiles.generate(Path(folder))
        return (keyfiles.load_node_keys(Path(folder) / "node.keys"),
                keyfiles.load_peer_keys(Path(folder) / "peer.keys"))


def layouts(name: str, settings: dict, keys: int) -> None:
    """Bits without a copy under both layouts, for the message the pipeline makes of ``name``."""
    node_keys, _ = fresh_keys()
    pipeline = build_pipeline(settings["pipeline"]["handlers"], settings["handlers"], node_keys, ["pixels"])
    instance = protect_object(pydicom.dcmread(image_path(name)), pipeline).instance
    assert instance is not None, "a cover, not a stego object"
    usable = instance.usable
    n = payload.pack(instance.message).size  # the bits embed writes (message layout 2)
    figures = []
    for layout in (1, 2):
        missing = []
        for _ in range(keys):
            key = np.random.bytes(32)
            codec = DctCodec(DctParams(layout=layout)).fit(usable, n, key)
            missing.append(codec._bits_without_copy(usable, n, key))
        figures.append(f"layout {layout} {np.mean(missing):6.1f}")
    slots = DctCodec().fit(usable, n, b"k" * 32)
    votes = slots._message_slots(int(slots._usable_tiles(usable).sum()), len(slots.settings.coefficients)) / n
    print(f"{name:40s} {n:6d} bits, {votes:4.1f} votes/bit, without a copy: " + ", ".join(figures), flush=True)


def repeats(name: str, settings: dict, count: int) -> int:
    """Failed reveals in ``count`` protect/save/read/reveal runs, each with fresh keys."""
    original = pydicom.dcmread(image_path(name))
    failures = 0
    for _ in range(count):
        node_keys, peer_keys = fresh_keys()
        pipeline = build_pipeline(settings["pipeline"]["handlers"], settings["handlers"], node_keys, ["pixels"])
        ds = copy.deepcopy(original)
        protect_object(ds, pipeline)
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        try:
            reveal(pydicom.dcmread(io.BytesIO(buffer.getvalue())), peer_keys)
        except StegonodeError as exc:
            failures += 1
            print(f"  {name}: {type(exc).__name__}", flush=True)
    return failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="*", default=["examples_overlay.dcm"])
    parser.add_argument("--segmenter", default="maskrcnn", choices=node_config.SEGMENTER_CHOICES)
    parser.add_argument("--keys", type=int, default=10, help="fresh keys per layout figure")
    parser.add_argument("--repeats", type=int, default=100, help="protect/reveal runs per image (0: none)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="CI size: classical segmenter, 2 keys, 2 repeats")
    args = parser.parse_args()
    if args.quick:
        args.segmenter, args.keys, args.repeats = "classical", 2, 2
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # ONNX Runtime's threads, read when the network loads
    settings = node_config.defaults()
    settings["handlers"]["segment"]["segmenter"] = args.segmenter
    print(f"segmenter {args.segmenter}; bits without a copy, mean of {args.keys} keys")
    for name in args.images:
        layouts(name, settings, args.keys)
    for name in args.images if args.repeats else ():
        failures = repeats(name, settings, args.repeats)
        print(f"{name}: reveal failed {failures} of {args.repeats} runs with fresh keys ({args.segmenter})")


if __name__ == "__main__":
    main()
