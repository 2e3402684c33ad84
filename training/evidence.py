"""Measurements behind the report and the benchmarks: protect once, attack, reveal, compare.

A :class:`Protected` instance keeps the protected file's bytes, its stored pixels and what
protect sealed; :func:`attacked` adds seeded noise of one kind to a fresh copy (rounded and
clipped to the stored range, as a real corruption of the stored integers would be);
:func:`failure` calls the real reveal path and says why it failed, if it did; and
:func:`extracted_bits` reads the raw QR modules back (on the attacked image's own mask, as
reveal does) for the bit error rate and seed 002's NCC of the recovered QR code.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pydicom
from pydicom import Dataset

from stegonode.codecs import keys as keyfiles
from stegonode.codecs import payload
from stegonode.codecs.registry import make_codec
from stegonode.dicom.pixels import PixelFormat, read_pixels
from stegonode.errors import MessageNotFoundError
from stegonode.handlers.pipeline import Pipeline, build_pipeline
from stegonode.handlers.protect import protect_object
from stegonode.handlers.protection import read_protection
from stegonode.handlers.reveal import reveal, usable_in
from stegonode.node.config import DEFAULTS

COMPARED = ("PatientName", "PatientID", "StudyInstanceUID")  # checked in the re-identified header
ATTACKS = ("gaussian", "uniform", "salt-and-pepper")


@dataclass
class Protected:
    """One protected instance and what the trials compare against."""

    raw: bytes  # the protected file
    cover: np.ndarray  # the stored pixels before protection
    stego: np.ndarray  # the stored pixels after
    message: np.ndarray  # the bits embed wrote: the QR modules its version does not fix (layout 2)
    foreground: np.ndarray  # the cover's foreground, as the embed handler used it
    usable: np.ndarray  # where the codec could write: background less margin and safety guard
    attributes: Dataset  # what protect sealed
    report: dict

    def dataset(self) -> Dataset:
        return pydicom.dcmread(io.BytesIO(self.raw))


class PixelsNotCarried(Exception):
    """Protect wrote the header carrier only: the pixels carry nothing to measure."""


def pipeline_for(node_keys: keyfiles.NodeKeys, codec: str = "dct", carriers: Sequence[str] = ("pixels",),
                 **params: Any) -> Pipeline:
    """The default pipeline with ``codec`` at ``params`` (the other parameters at their defaults),
    writing ``carriers``: by default the pixel carrier alone (with the header carrier, reveal
    would succeed whatever the pixels)."""
    config = copy.deepcopy(DEFAULTS)
    embed = config["handlers"]["embed"]
    embed["codec"] = codec
    embed[codec].update(params)
    return build_pipeline(config["pipeline"]["handlers"], config["handlers"], node_keys, list(carriers))


def protect(ds: Dataset, pipeline: Pipeline) -> Protected:
    """Protect a copy of ``ds``; :class:`PixelsNotCarried` when only the header carries the identity."""
    ds = copy.deepcopy(ds)
    cover = read_pixels(ds).copy()
    protected = protect_object(ds, pipeline)
    instance = protected.instance
    if instance is None:
        raise PixelsNotCarried("already protected by stegonode: kept as it is")
    scope = instance.report.get("pixel_attributes")
    if scope == "core" and instance.core_message is not None:
        modules = instance.core_message()
    elif scope == "all" and instance.message is not None:
        modules = instance.message
    else:
        raise PixelsNotCarried(f"the pixels carry no identity (pixel attributes: {scope})")
    assert instance.foreground is not None and instance.usable is not None and instance.attributes is not None
    return Protected(
        raw=protected.data,
        cover=cover,
        stego=read_pixels(ds),
        message=payload.pack(modules),
        foreground=instance.foreground,
        usable=instance.usable,
        attributes=instance.attributes,
        report=instance.report,
    )


def noise(attack: str, level: float, stego: np.ndarray, value_range: tuple[int, int],
          rng: np.random.Generator) -> np.ndarray:
    """``stego`` attacked: Gaussian noise of standard deviation ``level``, uniform noise on
    [-level, level], or salt and pepper on a fraction ``level`` of the pixels (half each to the
    lowest and highest stored value); rounded and clipped to ``value_range``."""
    lo, hi = value_range
    if attack == "gaussian":
        noisy = stego + rng.normal(0.0, level, stego.shape)
    elif attack == "uniform":
        noisy = stego + rng.uniform(-level, level, stego.shape)
    elif attack == "salt-and-pepper":
        noisy = stego.astype(np.float64)
        hit = rng.random(stego.shape) < level
        salt = rng.random(stego.shape) < 0.5
        noisy[hit & salt], noisy[hit & ~salt] = hi, lo
    else:
        raise ValueError(f"unknown attack {attack!r}; choose one of {ATTACKS}")
    return np.clip(np.rint(noisy), lo, hi)


def attacked(protected: Protected, attack: str, level: float, rng: np.random.Generator
             ) -> tuple[Dataset, np.ndarray]:
    """A fresh copy of the protected dataset whose stored pixels carry the attack's noise."""
    ds = protected.dataset()
    fmt = PixelFormat.of(ds)
    noisy = noise(attack, level, protected.stego, fmt.value_range, rng).astype(fmt.dtype)
    ds.PixelData = noisy.tobytes()
    return ds, noisy


def failure(ds: Dataset, keys: keyfiles.PeerKeys, protected: Protected, original: Dataset) -> str | None:
    """Why reveal failed on ``ds`` (exception type or wrong attributes), or None on success."""
    try:
        revealed = reveal(ds, keys)
    except Exception as exc:  # any exception is a failed trial; the type is tallied
        return f"{type(exc).__name__} ({str(exc).split(':')[0]})"
    if not same_attributes(revealed.attributes, protected.attributes):
        return "wrong attributes"
    if any(revealed.dataset.get(k) != original.get(k) for k in COMPARED):
        return "wrong restored header"
    return None


def same_attributes(revealed: Dataset, sealed: Dataset) -> bool:
    """Every revealed attribute is the sealed one, group lengths (gggg,0000) aside: they are
    retired, and the sealed copy drops those of sequence items."""
    return _comparable(revealed) == _comparable(sealed)


def _comparable(ds: Dataset) -> list[tuple[int, str, Any]]:
    return [(int(element.tag), element.VR,
             [_comparable(item) for item in element.value] if element.VR == "SQ" else element.value)
            for element in ds if element.tag.element != 0]


def extracted_bits(ds: Dataset, pixels: np.ndarray, keys: keyfiles.PeerKeys) -> np.ndarray | None:
    """The raw QR modules read from ``pixels`` on their own mask; None if no header was read."""
    protection = read_protection(ds)
    usable = usable_in(ds, pixels, protection)
    codec = make_codec(protection.codec, protection.params)
    try:
        return codec.extract(pixels, usable, keys.embedding_key, PixelFormat.of(ds).value_range)
    except MessageNotFoundError:
        return None


def bit_error_rate(bits: np.ndarray | None, message: np.ndarray) -> float | None:
    """Extracted bits against the embedded modules; None if unread or of another length."""
    return float(np.mean(bits != message)) if bits is not None and bits.size == message.size else None

