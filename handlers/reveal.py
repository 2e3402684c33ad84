"""Reveal: from a stego instance and the peer's keys back to the original identity.

[decrypt the pixels] -> segment -> read the codec's bits -> QR decode -> open the sealed
payload -> attributes -> re-identified dataset (header and UIDs as in the original, pixels as
stored before encryption).
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass

import numpy as np
from pydicom import Dataset

from stegonode.codecs import payload
from stegonode.codecs.errors import MessageNotFoundError, WrongEmbeddingKeyError, WrongRecipientKeyError
from stegonode.codecs.keys import PeerKeys, key_id
from stegonode.codecs.seal import open_sealed, recipient_key_id

from .collect import parse
from .deidentify import restore
from .embed import Protection, make_codec, read_protection, remove_protection
from .encrypt import decrypted
from .guard import decode_region, usable_region
from .pixels import PixelFormat, read_pixels
from .seal import stego_binding
from .segment import Segmenter, make_segmenter

log = logging.getLogger(__name__)


@dataclass
class Revealed:
    """The recovered identifying attributes and the re-identified dataset."""

    attributes: Dataset
    dataset: Dataset


def reveal(ds: Dataset, keys: PeerKeys, foreground: np.ndarray | None = None) -> Revealed:
    """Recover the identity hidden in ``ds``; ``foreground`` overrides the segmenter's mask."""
    protection = read_protection(ds)
    if protection.embedding_key_id != key_id(keys.embedding_key, "embedding"):
        raise WrongEmbeddingKeyError(
            f"object was protected with embedding key {protection.embedding_key_id}, "
            f"peer.keys holds {key_id(keys.embedding_key, 'embedding')}"
        )
    if protection.recipient_key_id != recipient_key_id(keys.recipient_public_key):
        raise WrongRecipientKeyError(
            f"payload is sealed for recipient key {protection.recipient_key_id}, "
            f"peer.keys holds {recipient_key_id(keys.recipient_public_key)}"
        )
    ds = decrypted(ds, keys.pixel_cipher_key)
    pixels = read_pixels(ds)
    usable = usable_in(ds, pixels, protection, foreground)
    codec = make_codec(protection.codec, protection.params)
    bits = codec.extract(pixels, usable, keys.embedding_key, PixelFormat.of(ds).value_range)
    side = math.isqrt(bits.size)
    if side * side != bits.size:
        raise MessageNotFoundError("hidden message is not a QR code")
    sealed = payload.from_text(payload.from_qr(bits.reshape(side, side).astype(bool)))
    plain = open_sealed(sealed, keys.recipient_private_key, stego_binding(ds))
    attributes = parse(payload.decompress(plain))
    restored = copy.deepcopy(ds)
    remove_protection(restored)
    restore(restored, attributes)
    restored.file_meta.MediaStorageSOPInstanceUID = restored.SOPInstanceUID
    return Revealed(attributes=attributes, dataset=restored)


def reveal_document(file: str, attributes: dict[str, object] | None, error: str | None = None) -> dict:
    """One file's reveal result as ``stegonode reveal --json`` prints it (and the web console
    downloads it): the file, whether it worked, why not, and the recovered attributes."""
    return {"file": file, "ok": error is None, "error": error, "attributes": attributes or {}}


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
    segmenter = make_segmenter(protection.segmenter, protection.segmenter_params)
    if protection.segmenter_version and protection.segmenter_version != segmenter.version:
        log.warning("object was protected with %s segmenter version %s, this node runs %s: "
                    "if reveal fails, reveal with the weights it was protected with",
                    protection.segmenter, protection.segmenter_version, segmenter.version)
    return segmenter
