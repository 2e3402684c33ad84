"""Seal: compress the identifying attributes, encrypt them for the recipient, render a QR code.

The associated data binds the sealed payload to the *stego* instance: its new Study, Series and
SOP Instance UIDs (computed here with the same keyed mapping de-identification uses), so a
payload copied into another image does not open.
"""

from __future__ import annotations

from typing import ClassVar

from pydicom import Dataset

from stegonode.codecs import payload
from stegonode.codecs.seal import seal

from .base import Instance
from .collect import serialize
from .pseudonyms import Pseudonymizer

_BOUND = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")


def binding(study_uid: str, series_uid: str, sop_instance_uid: str) -> bytes:
    """Associated data of the seal: the stego instance's identity."""
    return "\0".join(("stegonode/1", study_uid, series_uid, sop_instance_uid)).encode("ascii")


def stego_binding(ds: Dataset) -> bytes:
    """Associated data read from a stego instance's header."""
    return binding(*(str(ds.get(keyword, "")) for keyword in _BOUND))


class SealHandler:
    """Fills ``instance.message`` with the QR module matrix of the sealed attributes."""

    name: ClassVar[str] = "seal"
    requires: ClassVar[tuple[str, ...]] = ("collect",)

    def __init__(
        self, recipient_public_key: bytes, pseudonyms: Pseudonymizer, error_correction: str = "M"
    ) -> None:
        self.recipient_public_key = recipient_public_key
        self.pseudonyms = pseudonyms
        self.error_correction = error_correction

    def __call__(self, instance: Instance) -> None:
        ds = instance.dataset
        associated = binding(*(self.pseudonyms.uid(str(ds.get(k, ""))) for k in _BOUND))
        sealed = seal(payload.compress(serialize(instance.attributes)), self.recipient_public_key, associated)
        instance.message = payload.to_qr(payload.to_text(sealed), self.error_correction)
        instance.report["payload_bytes"] = len(sealed)
