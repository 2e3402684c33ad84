"""Reveal: from a stego instance and the peer's keys back to the original identity.

[decrypt the pixels] -> pixel carrier (segment -> read the codec's bits -> QR decode -> open
the sealed payload) and header carrier (check its MAC -> open the CMS envelope) -> attributes
-> re-identified dataset (header and UIDs as in the original, pixels as stored before
encryption).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydicom import Dataset

from stegonode.codecs import payload
from stegonode.codecs.keys import PeerKeys, key_id
from stegonode.codecs.registry import make_codec
from stegonode.codecs.seal import open_sealed, recipient_key_id
from stegonode.dicom.colour import carrier_pixels
from stegonode.dicom.pixels import PixelFormat
from stegonode.errors import (
    CarrierMismatchError,
    ConfigError,
    MessageNotFoundError,
    NotProtectedError,
    WrongEmbeddingKeyError,
    WrongRecipientKeyError,
)
from stegonode.handlers.protection import Protection, read_protection
from stegonode.segmenters.base import Segmenter
from stegonode.segmenters.registry import make_segmenter

from .base import Identity, Revealing
from .collect import parse, without_bulk
from .encrypt import is_encrypted
from .guard import decode_region, usable_region
from .header import find_header_carrier, mac_key, open_header
from .registry import HANDLERS
from .seal import payload_dictionary, series_binding, stego_binding

log = logging.getLogger(__name__)


@dataclass
class Revealed:
    """The recovered identifying attributes and the re-identified dataset.

    ``carrier`` delivered the attributes ("pixels" or "header"); ``confirmed_by`` lists the
    other carrier when it was read too and agreed. ``complete`` is False when only the core
    attributes could be recovered (the pixels carried those, the header carrier was gone).
    """

    attributes: Dataset
    dataset: Dataset
    carrier: str = "pixels"
    confirmed_by: tuple[str, ...] = ()
    complete: bool = True


LEGACY_STEPS = ["collect", "seal", "segment", "embed", "deidentify"]  # blocks before version 3


def reveal(ds: Dataset, keys: PeerKeys, foreground: np.ndarray | None = None) -> Revealed:
    """Recover the identity hidden in ``ds``; ``foreground`` overrides the segmenter's mask.

    Runs the inverse steps of the handlers the protection block names (:func:`steps_of`), in
    reverse order, those that undo pixel transforms (decryption) first: each is the registered
    handler's ``unprotect``. The identity they restore is read from the carriers once, when a
    step first needs it (:func:`read_identity`).
    """
    protection = read_protection(ds)
    if protection.embedding_key_id != key_id(keys.embedding_key, "embedding"):
        raise WrongEmbeddingKeyError(
            f"object was protected with embedding key {protection.embedding_key_id}, "
            f"peer.keys holds {key_id(keys.embedding_key, 'embedding')}"
        )
    state = Revealing(ds, keys, protection, read_identity, foreground)
    for step in steps_of(ds, protection):
        step.unprotect(state)
    identity, restored = state.identity, state.output
    restored.file_meta.MediaStorageSOPInstanceUID = restored.SOPInstanceUID
    return Revealed(attributes=identity.attributes, dataset=restored, carrier=identity.carrier,
                    confirmed_by=identity.confirmed_by, complete=identity.complete)


def steps_of(ds: Dataset, protection: Protection) -> list[Any]:
    """The registered handlers whose inverse steps reveal runs, in the order it runs them: the
    steps the block records (before version 3: the fixed pipeline), and encryption when the
    pixels are encrypted (``stegonode encrypt`` encrypts a protected object after protect),
    reversed, pixel transforms first. A step this node has no handler for is an error before
    anything is read."""
    names = list(LEGACY_STEPS if protection.steps is None else protection.steps)
    if is_encrypted(ds) and "encrypt" not in names:
        names.append("encrypt")
    unknown = [name for name in names if name not in HANDLERS]
    if unknown:
        raise NotProtectedError(f"object was protected with handler(s) {unknown} this node does not have")
    return sorted((HANDLERS[name] for name in reversed(names)), key=lambda handler: handler.reveal_phase)


def read_identity(state: Revealing) -> Identity:
    """The identity the carriers hold, pixels first, header second.

    A pixel carrier that cannot be read (lossy re-encoding, overwritten background) or not opened
    with these keys leaves the header carrier to deliver; one that opens but fails
    authentication, a header carrier that fails its MAC, or two carriers that disagree are
    tampering: an error, never data.
    """
    ds, keys, protection = state.dataset, state.keys, state.protection
    associated = stego_binding(ds)
    header_present = "header" in protection.carriers and bool(ds.get("EncryptedAttributesSequence"))
    from_pixels, pixel_error = None, None
    if protection.has_pixels:
        try:
            from_pixels = _from_pixels(ds, keys, protection, state.foreground, associated)
        except (MessageNotFoundError, WrongRecipientKeyError) as exc:
            if not header_present:
                raise
            pixel_error = exc
    envelope = None
    if header_present:
        envelope = find_header_carrier(ds, mac_key(keys.embedding_key), series_binding(ds), protection.header_mac)
    from_header = None
    if envelope is not None:
        try:
            from_header = open_header(envelope, keys.certificate, keys.rsa_private_key,
                                      protection.certificates)
        except WrongRecipientKeyError as exc:
            if isinstance(pixel_error, WrongRecipientKeyError):
                raise WrongRecipientKeyError(f"{pixel_error}; {exc}") from None
            if from_pixels is None:
                raise
    if from_pixels is None and from_header is None:
        raise pixel_error or MessageNotFoundError("the object carries no readable identity")
    complete_pixels = from_pixels is not None and protection.pixel_attributes == "all"
    if from_pixels is not None and from_header is not None:
        _check_agreement(from_pixels, from_header, complete_pixels)
    attributes: Dataset | None
    other: Dataset | None
    if complete_pixels and from_pixels is not None and from_header is not None:
        # the pixels' attributes, and the bulk and private data only the header carries
        attributes, carrier, other = _with_bulk(from_pixels, from_header), "pixels", from_header
    elif complete_pixels or from_header is None:
        attributes, carrier, other = from_pixels, "pixels", from_header
    else:
        attributes, carrier, other = from_header, "header", from_pixels
    assert attributes is not None
    return Identity(
        attributes=attributes, carrier=carrier,
        confirmed_by=("header" if carrier == "pixels" else "pixels",) if other is not None else (),
        complete=carrier == "header" or complete_pixels, envelope=envelope,
    )


def _from_pixels(ds: Dataset, keys: PeerKeys, protection: Protection, foreground: np.ndarray | None,
                 associated: bytes) -> Dataset:
    """The attributes the pixel carrier holds (all of them, or the core ones)."""
    recipients = protection.recipients
    if recipient_key_id(keys.recipient_public_key) not in recipients:
        named = "key " + recipients[0] if len(recipients) == 1 else "keys " + ", ".join(recipients)
        raise WrongRecipientKeyError(
            f"payload is sealed for recipient {named}, "
            f"peer.keys holds {recipient_key_id(keys.recipient_public_key)}"
        )
    pixels = carrier_pixels(ds)
    usable = usable_in(ds, pixels, protection, foreground)
    codec = make_codec(protection.codec, protection.params, _malformed)
    bits = codec.extract(pixels, usable, keys.embedding_key, PixelFormat.of(ds).value_range)
    sealed = payload.from_text(payload.from_qr(message_modules(bits, protection.message_layout)))
    plain = open_sealed(sealed, keys.recipient_private_key, associated)
    return parse(payload.decompress(plain, payload_dictionary(protection.payload_dictionary)))


def _with_bulk(from_pixels: Dataset, from_header: Dataset) -> Dataset:
    """What the pixels carry, and the bulk and private data only the header carrier holds."""
    merged = Dataset()
    for element in from_header:
        merged.add(from_pixels[element.tag] if element.tag in from_pixels else element)
    return merged


def _malformed(problem: str) -> NotProtectedError:
    return NotProtectedError(f"malformed stegonode protection block: {problem}")


def message_modules(bits: np.ndarray, layout: int) -> np.ndarray:
    """The QR module matrix from the extracted bits (Protection.message_layout)."""
    if layout == 2:
        return payload.unpack(bits)
    side = math.isqrt(bits.size)
    if side * side != bits.size:
        raise MessageNotFoundError("hidden message is not a QR code")
    return bits.reshape(side, side).astype(bool)


def _check_agreement(from_pixels: Dataset, from_header: Dataset, complete: bool) -> None:
    """Every attribute the pixels carry must be the header carrier's, and all of them if the
    pixels carry all; anything else means one of them was replaced."""
    same = all(element.tag in from_header and from_header[element.tag] == element for element in from_pixels)
    if not same or (complete and len(from_pixels) != len(without_bulk(from_header))):
        raise CarrierMismatchError(
            "the pixel and header carriers hold different identities: one of them was tampered "
            "with; nothing is returned"
        )


def reveal_document(file: str, attributes: dict[str, object] | None, error: str | None = None, *,
                    carrier: str | None = None, confirmed_by: tuple[str, ...] = (), complete: bool = False) -> dict:
    """One file's reveal result as ``stegonode reveal --json`` prints it (and the web console
    downloads it): the file, whether it worked, why not, the carrier that delivered, the other
    carrier if it agreed, whether all attributes came back, and the recovered attributes."""
    return {"file": file, "ok": error is None, "error": error, "carrier": carrier,
            "confirmed_by": list(confirmed_by), "complete": complete, "attributes": attributes or {}}


def usable_in(ds: Dataset, pixels: np.ndarray, protection: Protection,
              foreground: np.ndarray | None = None) -> np.ndarray:
    """Where the codec may have written in the (decrypted) ``pixels`` of protected ``ds``: the
    usable region computed on the stego pixels the way protect computed it on the cover (the
    recorded segmenter at the recorded levels, the margin, the recorded safety guard), or the
    region the block records where the segmenter proved its background. ``foreground``
    overrides the segmenter's mask.

    Reveal reads the message here; its complement is the region protection kept bit-identical,
    which :mod:`stegonode.handlers.dicomseg` writes as a DICOM Segmentation.
    """
    if protection.region is not None and foreground is None:
        return decode_region(protection.region, pixels.shape)
    if foreground is None:
        foreground = _segmenter_for(protection).segment(ds, pixels, protection.segmenter_levels).mask
    return usable_region(ds, pixels, foreground, protection.margin, protection.guard_record())


def _segmenter_for(protection: Protection) -> Segmenter:
    """The segmenter the object was protected with; a warning if this node runs another version
    of it (other Mask R-CNN weights), whose masks may differ enough to lose the message."""
    try:
        segmenter = make_segmenter(protection.segmenter, protection.segmenter_params)
    except ConfigError as exc:  # the block is data: no node.toml key of this node is wrong
        raise _malformed(str(exc).removeprefix("handlers.segment.segmenter: ")) from None
    if protection.segmenter_version and protection.segmenter_version != segmenter.version:
        log.warning("object was protected with %s segmenter version %s, this node runs %s: "
                    "if reveal fails, reveal with the weights it was protected with",
                    protection.segmenter, protection.segmenter_version, segmenter.version)
    return segmenter
