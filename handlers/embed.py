"""Embed: hide the QR module matrix in the usable background, and write the protection block
(:mod:`.protection`) that tells reveal how.

An image whose background cannot carry the full payload (or carries it unreadably) gets the
core attributes in its pixels, and failing that none: with the header carrier on, nothing is
refused for capacity alone. Without it, such an image is refused (CapacityError). Every
pixel payload is read back before it is kept; on a tight background (see :data:`TIGHT`) the
block records the region it was written to, and reveal reads there.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import Field, create_model, field_validator, model_validator

from stegonode.codecs import payload
from stegonode.codecs.keys import key_id
from stegonode.codecs.metrics import distortion
from stegonode.codecs.registry import CODECS, make_codec
from stegonode.codecs.seal import recipient_key_id
from stegonode.codecs.settings import Settings
from stegonode.codecs.stego import StegoCodec
from stegonode.dicom.pixels import PixelFormat
from stegonode.errors import (
    CapacityError,
    MessageNotFoundError,
    UnreadableEmbeddingError,
)

from .base import HandlerBase, Instance, Revealing, choice_of
from .guard import BORDER_REACH, encode_region, measure, usable_region
from .header import HeaderCarrier
from .protection import MESSAGE_LAYOUT, Protection, remove_protection, write_protection
from .registry import HANDLERS
from .seal import PAYLOAD_DICTIONARY, recipients_of

if TYPE_CHECKING:
    from .pipeline import PipelineContext

TIGHT = 3


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


