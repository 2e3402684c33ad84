"""Keyed, consistent replacements: the same original always maps to the same value.

So one patient's studies still group, and one study's instances keep their relations, without
the replacement revealing the original (HMAC-SHA256 under the node's pseudonym key).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from typing import NamedTuple

from pydicom import Dataset


BOUND_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")


class NewUids(NamedTuple):
    """The UIDs a protected object gets (the seal binds its payload to them, the index keys its
    job and object rows by the SOP Instance UID, de-identification writes them)."""

    study: str
    series: str
    sop_instance: str


class Pseudonymizer:
    """Maps originals to keyed pseudonyms and UIDs."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _digest(self, purpose: bytes, value: str) -> bytes:
        return hmac.new(self._key, purpose + b"\0" + value.encode("utf-8"), hashlib.sha256).digest()

    def uid(self, original: str) -> str:
        """A 2.25 UID (PS3.5 B.2) derived from a keyed hash formatted as a UUID."""
        value = uuid.UUID(bytes=self._digest(b"uid", original)[:16], version=4)
        return f"2.25.{value.int}"

    def new_uids(self, ds: Dataset) -> NewUids:
        """The new Study, Series and SOP Instance UIDs of ``ds``: :meth:`uid` of the originals,
        the one derivation the seal's binding, the index's job key and de-identification share."""
        return NewUids(*(self.uid(str(ds.get(keyword, ""))) for keyword in BOUND_UIDS))

    def patient_code(self, patient_id: str) -> str:
        """16 base32 characters standing for one patient."""
        return base64.b32encode(self._digest(b"patient", patient_id)[:10]).decode()

    def patient_id(self, original: str) -> str:
        return f"SN{self.patient_code(original)}"

    def patient_name(self, original_patient_id: str) -> str:
        return f"SN^{self.patient_code(original_patient_id)}"
