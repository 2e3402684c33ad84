"""Embed: hide the QR module matrix in the usable background; and the protection block.

The protection block is a private block (creator ``STEGONODE 1``, group 0011) holding, as JSON,
what reveal needs besides the keys: the carriers the object has (``pixels``, ``header``),
codec name and strength parameters, the segmenter that actually ran (its parameters and
version: for Mask R-CNN, which weights; and the levels the cover was thresholded at), margin,
the safety guard's levels (:mod:`stegonode.handlers.guard`), whether the pixels carry all
identifying attributes or the core ones, the non-secret ids of the embedding key, of every
recipient key and of every header carrier certificate (so a wrong key is named as such, and
``stegonode keys objects`` counts objects per key), and the header carrier's MAC.

An image whose background cannot carry the full payload (or carries it unreadably) gets the
core attributes in its pixels, and failing that none: with the header carrier on, nothing is
refused for capacity alone. Without it, such an image is refused (CapacityError). Every
pixel payload is read back before it is kept; on a tight background (see :data:`TIGHT`) the
block records the region it was written to, and reveal reads there.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import Field, create_model, field_validator, model_validator
from pydicom import Dataset

from stegonode.codecs import payload
from stegonode.codecs.keys import key_id
from stegonode.codecs.registry import CODECS
from stegonode.codecs.seal import recipient_key_id
from stegonode.codecs.settings import Settings
from stegonode.codecs.stego import StegoCodec
from stegonode.errors import (
    CapacityError,
    ConfigError,
    MessageNotFoundError,
    NotProtectedError,
    UnreadableEmbeddingError,
)

from .base import HandlerBase, Instance, Revealing, choice_of
from .guard import BORDER_REACH, Guard, encode_region, measure, usable_region
from .header import HeaderCarrier
from .pixels import PixelFormat
from .private import read_document, remove_block, write_document
from .registry import HANDLERS
from .seal import PAYLOAD_DICTIONARY, recipients_of

if TYPE_CHECKING:
    from .pipeline import PipelineContext

PRIVATE_CREATOR = "STEGONODE 1"
PRIVATE_GROUP = 0x0011
MESSAGE_LAYOUT = 2  # what embed writes (Protection.message_layout)
# A background that offers less than this many times the minimum for a message is tight: the
# protection block records the region written, so that reveal reads exactly there.
TIGHT = 3
PROTECTION_VERSION = 4
READABLE_VERSIONS = (1, 2, 3, 4)  # 1: pixel carrier only, all attributes; 3: the steps that ran; 4: recipients


def make_codec(name: str, params: dict, error: Callable[[str], Exception] | None = None) -> StegoCodec:
    """The registered stego codec ``name`` with strength ``params`` (node.toml's, or as stored in
    the protection block). Unknown or bad: ``error(message)``, by default a ConfigError naming
    the node.toml key (reveal passes its own: the block is data, not configuration)."""
    entry = CODECS.get_or_error(name, error)
    try:
        return entry.build(params)
    except (TypeError, ValueError) as exc:
        # A TypeError is Python's text about a call (unknown keyword): name the parameters
        # instead. A ValueError comes from the codec's own checks, written for people.
        why = f"unknown or missing parameter among {', '.join(sorted(map(str, params)))[:120]}" \
            if isinstance(exc, TypeError) else str(exc)
        message = f"bad parameter for codec {name!r}: {why}"
        raise (error(message) if error else ConfigError(f"handlers.embed.{name}: {message}")) from None


@dataclass(frozen=True)
class Protection:
    """Contents of the protection block."""

    codec: str
    params: dict
    segmenter: str
    margin: int
    embedding_key_id: str
    recipient_key_id: str
    segmenter_version: str = ""  # Segmenter.version at protection; empty in blocks written before
    segmenter_levels: list[float | None] | None = None  # Segmentation.levels of the cover
    segmenter_params: dict | None = None  # Segmenter.params(); None in blocks written before
    guard: dict | None = None  # Guard.to_dict(); None in blocks written before the guard
    region: dict | None = None  # guard.encode_region(usable) where the segmenter proves its background
    carriers: list[str] = field(default_factory=lambda: ["pixels"])  # what the object has
    pixel_attributes: str = "all"  # "all", or "core": the pixels carry the core attributes only
    header_certificate_id: str = ""  # the header carrier's recipient certificate
    header_mac: str = ""  # MAC of the header carrier's envelope, bound to the study and series
    payload_dictionary: int = 1  # deflate dictionary of the pixel payload (handlers.seal)
    message_layout: int = 1  # 1: every QR module; 2: those the version does not fix (payload.pack)
    steps: list[str] | None = None  # the handlers that ran, in order; None in blocks before version 3
    # Several recipients (version 4): every recipient's key id, in the pixel payload's slot
    # order, and every header carrier certificate id; None in blocks written before (one each)
    recipient_key_ids: list[str] | None = None
    header_certificate_ids: list[str] | None = None

    @property
    def recipients(self) -> list[str]:
        """The pixel carrier's recipient key ids."""
        return list(self.recipient_key_ids or [self.recipient_key_id])

    @property
    def certificates(self) -> list[str]:
        """The header carrier's recipient certificate ids."""
        if self.header_certificate_ids:
            return list(self.header_certificate_ids)
        return [self.header_certificate_id] if self.header_certificate_id else []

    def guard_record(self) -> Guard | None:
        return None if self.guard is None else Guard.from_dict(self.guard)

    @property
    def has_pixels(self) -> bool:
        return "pixels" in self.carriers and bool(self.codec)


def write_protection(ds: Dataset, protection: Protection) -> None:
    write_document(ds, PRIVATE_GROUP, PRIVATE_CREATOR, {"version": PROTECTION_VERSION, **protection.__dict__})


def read_protection(ds: Dataset) -> Protection:
    """The protection block of a stego instance; NotProtectedError if there is none."""
    try:
        document = read_document(ds, PRIVATE_GROUP, PRIVATE_CREATOR)
    except ValueError:
        document = None
    if document is None:
        raise NotProtectedError("not a stegonode-protected object (no protection block)")
    if not isinstance(document, dict) or document.pop("version", None) not in READABLE_VERSIONS:
        raise NotProtectedError("unknown stegonode protection block version")
    if document.get("codec") == "dct" and isinstance(document.get("params"), dict):
        document["params"].setdefault("layout", 1)  # written before the DCT codec had layouts
    levels = document.get("segmenter_levels")
    if levels is not None and not (isinstance(levels, list) and all(
            level is None or (isinstance(level, (int, float)) and math.isfinite(level)) for level in levels)):
        raise NotProtectedError("malformed stegonode protection block (segmenter_levels)")
    try:
        protection = Protection(**document)
    except TypeError:
        raise NotProtectedError("malformed stegonode protection block") from None
    protection.guard_record()  # malformed guard: NotProtectedError now, not in reveal
    return protection


def already_protected(ds: Dataset) -> bool:
    """A stegonode stego object: a protection block and Patient Identity Removed YES.

    Protecting it again would seal its pseudonyms over the identity it carries (the new
    payload overwrites the old one in the same background), so the node and the Orthanc
    plugin store such an object as it is.
    """
    try:
        read_protection(ds)
    except NotProtectedError:
        return False
    return str(ds.get("PatientIdentityRemoved", "")).upper() == "YES"


def remove_protection(ds: Dataset) -> None:
    """Delete the protection block (creator and elements), if present."""
    remove_block(ds, PRIVATE_GROUP, PRIVATE_CREATOR)


class _EmbedSettings(Settings):
    codec: str = "dct"

    @field_validator("codec")
    @classmethod
    def _registered(cls, value: str) -> str:
        return choice_of("handlers.embed.codec", value, list(CODECS))

    @model_validator(mode="after")
    def _buildable(self) -> _EmbedSettings:
        make_codec(self.codec, self[self.codec].model_dump())
        return self


@functools.cache
def _embed_settings(codecs: tuple[tuple[str, type[Settings]], ...]) -> type[Settings]:
    """The ``[handlers.embed]`` model of these registered codecs."""
    fields: dict[str, Any] = {name: (model, Field(default_factory=model)) for name, model in codecs}
    return create_model("EmbedSettings", __base__=_EmbedSettings, __module__=__name__, **fields)


@HANDLERS.register
class EmbedHandler(HandlerBase):
    """Writes ``instance.message`` into the usable background of ``instance.pixels``: the
    segmenter's background less the margin and the safety guard. Writes the protection block
    (with the steps that ran); reveal's inverse step removes it."""

    name: ClassVar[str] = "embed"
    requires: ClassVar[tuple[str, ...]] = ("seal", "segment")

    @classmethod
    def settings_model(cls) -> type[Settings]:
        """``[handlers.embed]``: the codec, and each registered codec's table (its ``settings``)."""
        return _embed_settings(tuple((name, CODECS[name].settings) for name in CODECS))

    @classmethod
    def from_config(cls, context: PipelineContext) -> EmbedHandler:
        embed = context.settings["embed"]
        return cls(make_codec(embed.codec, embed[embed.codec].model_dump()),
                   context.settings["segment"].margin, context.keys.embedding_key,
                   [recipient.public_key for recipient in context.shared(recipients_of)])

    def finish(self, instance: Instance) -> None:
        if instance.protection is not None:
            write_protection(instance.dataset, replace(instance.protection, steps=list(instance.steps)))

    @classmethod
    def unprotect(cls, state: Revealing) -> None:
        remove_protection(state.output)

    def __init__(
        self,
        codec: StegoCodec,
        margin: int,
        embedding_key: bytes,
        recipient_public_keys: bytes | list[bytes],
    ) -> None:
        self.codec = codec
        self.margin = margin
        self.embedding_key = embedding_key
        self.recipient_public_keys = (
            [recipient_public_keys] if isinstance(recipient_public_keys, bytes) else list(recipient_public_keys))

    def __call__(self, instance: Instance) -> None:
        if instance.pixels is None:  # nothing to write in: the header carrier alone
            assert instance.header_carrier is not None, "admission refuses such objects without it"
            instance.protection = self._protection(instance, instance.header_carrier, codec="", params={},
                                                   segmenter="", margin=0)
            instance.report["pixel_attributes"] = "none"
            return
        ds, cover, segmenter = instance.dataset, instance.pixels, instance.segmenter
        assert segmenter is not None and instance.foreground is not None, "embed runs after segment"
        fmt = PixelFormat.of(ds)
        guard = measure(ds, cover, instance.foreground, self.codec.change_allowance(),
                        border=0 if segmenter.proves_background else BORDER_REACH)
        usable = usable_region(ds, cover, instance.foreground, self.margin, guard)
        instance.usable = usable
        header = instance.header_carrier
        full = instance.message
        choices: list[tuple[Callable[[], np.ndarray], str]] = [] if full is None else [(lambda: full, "all")]
        if instance.core_message is not None:
            choices.append((instance.core_message, "core"))
        refusal: CapacityError | None = None
        for get_modules, scope in choices:
            modules = get_modules()
            message = payload.pack(modules)
            try:
                codec = self.codec.fit(usable, message.size, self.embedding_key)
                stego = codec.embed(cover, usable, message, self.embedding_key, fmt.value_range)
                _check_readable(codec, stego, usable, modules, self.embedding_key, fmt.value_range)
            except CapacityError as exc:  # too small, or unreadable: the next choice, or the header
                refusal = refusal or exc
                continue
            # Reveal reads where protect wrote: on the region this block records where the
            # segmenter proves its background or the background is tight (a mask computed
            # afresh on the stego image may differ by a few tiles, which a tight message cannot
            # spare); elsewhere on the region it computes from the stego image.
            tight = codec.capacity(usable) < TIGHT * message.size
            instance.pixels, instance.protection = stego, self._protection(
                instance, header, codec=codec.name, params=codec.params(), segmenter=segmenter.name,
                segmenter_version=segmenter.version, segmenter_levels=instance.foreground_levels,
                segmenter_params=segmenter.params(), margin=self.margin, guard=guard.to_dict(),
                region=encode_region(usable) if segmenter.proves_background or tight else None,
                pixel_attributes=scope,
            )
            instance.report.update(distortion(cover, stego, fmt.peak))
            instance.report["segmenter"] = segmenter.name
            return
        if header is None:
            assert refusal is not None, "embed ran without a message"
            raise refusal  # nothing else carries the identity: refuse rather than lose it
        instance.protection = self._protection(instance, header, codec="", params={}, segmenter="", margin=0)
        instance.report["pixel_attributes"] = "none" if choices else "off"
        instance.report["segmenter"] = segmenter.name
        instance.report.update(distortion(cover, cover, fmt.peak))

    def _protection(self, instance: Instance, header: HeaderCarrier | None, **pixel_fields) -> Protection:
        carriers = (["pixels"] if pixel_fields["codec"] else []) + (["header"] if header else [])
        instance.report["carriers"] = "+".join(carriers)
        instance.report["pixel_attributes"] = pixel_fields.get("pixel_attributes", "none")
        return Protection(
            **pixel_fields,
            embedding_key_id=key_id(self.embedding_key, "embedding"),
            recipient_key_id=recipient_key_id(self.recipient_public_keys[0]),
            carriers=carriers,
            header_certificate_id=header.certificate_ids[0] if header else "",
            recipient_key_ids=[recipient_key_id(key) for key in self.recipient_public_keys],
            header_certificate_ids=list(header.certificate_ids) if header else [],
            header_mac=header.mac if header else "",
            payload_dictionary=PAYLOAD_DICTIONARY,
            message_layout=MESSAGE_LAYOUT,
        )


def _check_readable(codec: StegoCodec, stego: np.ndarray, usable: np.ndarray, modules: np.ndarray,
                    key: bytes, value_range: tuple[int, int]) -> None:
    """Read the message back as reveal would (same region): a background that takes the bits
    but cannot give them back is too small, and protect says so rather than store an object
    whose identity is lost. Bit errors the QR code's own correction absorbs are fine."""
    message = payload.pack(modules)
    try:
        bits = codec.extract(stego, usable, key, value_range)
    except MessageNotFoundError:
        raise UnreadableEmbeddingError(message.size, message.size) from None
    if bits.size != message.size:
        raise UnreadableEmbeddingError(message.size, message.size)
    wrong = int(np.count_nonzero(bits != message))
    if wrong == 0:
        return
    try:
        if payload.from_qr(payload.unpack(bits)) == payload.from_qr(modules):
            return
    except MessageNotFoundError:
        pass
    raise UnreadableEmbeddingError(wrong, bits.size)


def distortion(cover: np.ndarray, stego: np.ndarray, peak: int) -> dict[str, float | int]:
    """Changed pixels, MSE and PSNR at ``peak`` and at 65535 (the seed paper's peak); frame by
    frame, so the 64-bit differences take one frame's memory."""
    changed, squares = 0, 0
    for cover_frame, stego_frame in zip(cover.reshape(-1, *cover.shape[-2:]), stego.reshape(-1, *stego.shape[-2:]), strict=True):
        diff = (stego_frame.astype(np.int64) - cover_frame).ravel()
        changed += int(np.count_nonzero(diff))
        squares += int(diff @ diff)
    mse = squares / cover.size

    def psnr(p: int) -> float:
        return float("inf") if mse == 0 else float(10 * np.log10(p * p / mse))

    return {
        "changed_pixels": changed,
        "mse": mse,
        "psnr_db": psnr(peak),
        "psnr_65535_db": psnr(65535),
    }
