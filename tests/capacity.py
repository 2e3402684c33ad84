"""The capacity requirement of the header-carrier issue, measured on one image (test and benchmark).

Full identity in the pixels for images of at least 256x256 whose safe background is at least
20 % of the image; at least the core identity for images of at least 128x128 with at least 10 %;
the full identity in the header carrier for every image. "Safe background" is the usable region
embed writes into (the segmenter's background less the margin and the safety guard).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pydicom

from stegonode.codecs import payload
from stegonode.codecs.keys import PeerKeys
from stegonode.dicom.pixels import PixelFormat, read_pixels, write_pixels
from stegonode.errors import StegonodeError
from stegonode.handlers.embed import EmbedHandler
from stegonode.handlers.pipeline import Pipeline
from stegonode.handlers.protect import protect_object
from stegonode.handlers.reveal import reveal

FULL_MIN_SIDE, FULL_MIN_SHARE = 256, 0.20
CORE_MIN_SIDE, CORE_MIN_SHARE = 128, 0.10


@dataclass
class Row:
    name: str
    shape: tuple[int, int, int]
    safe_share: float
    full_bits: int
    core_bits: int
    offered_bits: int
    carriers: str
    pixel_attributes: str
    from_pixels: str  # "all", "core", "-" (nothing to read), or the error
    from_header: str  # "all" or the error

    HEADER = (f"{'image':<38}{'rows x cols x frames':>22}{'safe %':>8}{'full bits':>10}{'core bits':>10}"
              f"{'offered':>9}  {'carriers':<14}{'pixels':<7}{'required':<9}{'reveal px':<11}{'reveal hdr':<11}ok")

    @property
    def required(self) -> str:
        side = min(self.shape[1:])
        if side >= FULL_MIN_SIDE and self.safe_share >= FULL_MIN_SHARE:
            return "all"
        if side >= CORE_MIN_SIDE and self.safe_share >= CORE_MIN_SHARE:
            return "core"
        return "none"

    @property
    def meets_requirement(self) -> bool:
        rank = {"none": 0, "core": 1, "all": 2}
        carried = self.pixel_attributes if self.pixel_attributes in rank else "none"
        pixels_ok = self.from_pixels == carried or (carried == "none" and self.from_pixels == "-")
        return rank[carried] >= rank[self.required] and pixels_ok and self.from_header == "all"

    def line(self) -> str:
        shape = f"{self.shape[1]}x{self.shape[2]}x{self.shape[0]}"
        return (f"{self.name:<38}{shape:>22}{100 * self.safe_share:>8.1f}{self.full_bits:>10}{self.core_bits:>10}"
                f"{self.offered_bits:>9}  {self.carriers:<14}{self.pixel_attributes:<7}{self.required:<9}"
                f"{self.from_pixels[:10]:<11}{self.from_header[:10]:<11}{'yes' if self.meets_requirement else 'NO'}")


def measure(pipeline: Pipeline, peer: PeerKeys, ds: pydicom.Dataset, name: str,
            other_peer: PeerKeys | None = None) -> Row:
    """Protect ``ds`` with ``pipeline``; reveal it from each carrier alone (with ``peer``'s keys,
    and with ``other_peer``'s too when given: another recipient); one table row."""
    original = copy.deepcopy(ds)
    instance = protect_object(ds, pipeline).instance
    usable = instance.usable  # the safe background embed computed (segmenter, margin, guard)
    embed = next(h for h in pipeline.handlers if isinstance(h, EmbedHandler))
    report = instance.report
    return Row(
        name=name,
        shape=tuple(instance.pixels.shape),
        safe_share=float(usable.mean()),
        full_bits=0 if instance.message is None else int(payload.pack(instance.message).size),
        core_bits=0 if instance.core_message is None else int(payload.pack(instance.core_message()).size),
        offered_bits=int(embed.codec.capacity(usable)),
        carriers=str(report["carriers"]),
        pixel_attributes=str(report["pixel_attributes"]),
        from_pixels=_both(_from_pixels, other_peer, ds, peer, original) if "pixels" in report["carriers"] else "-",
        from_header=_both(_from_header, other_peer, ds, peer, original, usable),
    )


def _both(read, other_peer: PeerKeys | None, ds: pydicom.Dataset, peer: PeerKeys, *rest) -> str:
    """``read``'s result with ``peer``; with ``other_peer`` as well, "other:RESULT" if it differs."""
    first = read(ds, peer, *rest)
    if other_peer is None:
        return first
    second = read(ds, other_peer, *rest)
    return first if second == first else f"other:{second}"


def _exact(revealed, original: pydicom.Dataset) -> bool:
    """Every revealed attribute as in the original (group lengths inside sequence items, which
    the encoder drops, do not count)."""
    return all(e.tag in original and _same(e, original[e.tag]) for e in revealed.attributes)


def _same(a, b) -> bool:
    if a.VR != "SQ" or b.VR != "SQ":
        return a.VR == b.VR and a.value == b.value
    return len(a.value) == len(b.value) and all(_same_items(x, y) for x, y in zip(a.value, b.value, strict=True))


def _same_items(x: pydicom.Dataset, y: pydicom.Dataset) -> bool:
    tags = [e.tag for e in x if e.tag.element != 0]
    return tags == [e.tag for e in y if e.tag.element != 0] and all(_same(x[t], y[t]) for t in tags)


def _from_pixels(stego: pydicom.Dataset, peer: PeerKeys, original: pydicom.Dataset) -> str:
    ds = copy.deepcopy(stego)
    del ds.EncryptedAttributesSequence
    try:
        revealed = reveal(ds, peer)
    except StegonodeError as exc:
        return type(exc).__name__
    if revealed.carrier != "pixels" or not _exact(revealed, original):
        return "WRONG"
    return "all" if revealed.complete else "core"


def _from_header(stego: pydicom.Dataset, peer: PeerKeys, original: pydicom.Dataset, usable: np.ndarray) -> str:
    ds = copy.deepcopy(stego)
    pixels = read_pixels(ds).copy()
    pixels[usable] = PixelFormat.of(ds).value_range[0]  # the pixel carrier wiped out
    write_pixels(ds, pixels)
    try:
        revealed = reveal(ds, peer)
    except StegonodeError as exc:
        return type(exc).__name__
    if revealed.carrier != "header" or not revealed.complete or not _exact(revealed, original):
        return "WRONG"
    return "all"
