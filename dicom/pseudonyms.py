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

    def __init__(self, key: bytes, retain_uids: bool = False) -> None:
        self._key = key
        self.retain_uids = retain_uids  # PS3.15 Retain UIDs Option: every UID maps to itself

    def _digest(self, purpose: bytes, value: str) -> bytes:
        return hmac.new(self._key, purpose + b"\0" + value.encode("utf-8"), hashlib.sha256).digest()

    def uid(self, original: str) -> str:
        """A 2.25 UID (PS3.5 B.2) derived from a keyed hash formatted as a UUID (``original``
        itself under the Retain UIDs Option)."""
        if self.retain_uids:
            return original
        value = uuid.UUID(bytes=self._digest(b"uid", original)[:16], version=4)
        return f"2.25.{value.int}"

    def new_uids(self, ds: Dataset) -> NewUids:
        """The new Study, Series and SOP Instance UIDs of ``ds``: :meth:`uid` of the originals,
        the one derivation the seal's binding, the index's job key and de-identification share.

        A Study or Series Instance UID missing or empty in ``ds`` (Type 1, yet some senders and
        secondary-capture tools leave them out) gets one generated from the instance's own
        identity: the series from the SOP Instance UID, the study from the Series Instance UID
        (else the SOP Instance UID). De-identification writes them, so the stego object is
        valid and the seal is bound to this instance, never to a value every such object shares.
        """
        sop_instance, series, study = (_text(ds, keyword) for keyword in reversed(BOUND_UIDS))
        return NewUids(
            self.uid(study) if study else self._generated(b"study", series or sop_instance),
            self.uid(series) if series else self._generated(b"series", sop_instance),
            self.uid(sop_instance),
        )

    def _generated(self, purpose: bytes, basis: str) -> str:
        """A 2.25 UID standing for a missing ``purpose`` UID (also under Retain UIDs: there is
        no original to retain), keyed apart from :meth:`uid`'s."""
        value = uuid.UUID(bytes=self._digest(b"missing " + purpose, basis)[:16], version=4)
        return f"2.25.{value.int}"

    def patient_code(self, patient_id: str) -> str:
        """16 base32 characters standing for one patient."""
        return base64.b32encode(self._digest(b"patient", patient_id)[:10]).decode()

    def date_offset(self, patient: str, low: int, high: int) -> int:
        """Days every date of ``patient`` (:func:`patient_identity`) moves: keyed, so the same
        patient gets the same offset on every host sharing the key, in ``low..high``."""
        number = int.from_bytes(self._digest(b"date-shift", patient)[:8], "big")
        return low + number % (high - low + 1)

    def patient_id(self, original: str) -> str:
        return f"SN{self.patient_code(original)}"

    def patient_name(self, original_patient_id: str) -> str:
        return f"SN^{self.patient_code(original_patient_id)}"


def _text(ds: Dataset, keyword: str) -> str:
    return str(ds.get(keyword, "") or "")


def patient_identity(ds: Dataset) -> str:
    """What stands for the patient of ``ds`` when pseudonyms and date offsets are derived: the
    Patient ID; where it is empty or missing, the name and birth date (case and spacing
    normalised), so two unnamed patients without IDs never merge; where there is no name either,
    the study (its objects stay together, apart from every other study); where there is no Study
    Instance UID either, what its generated one comes from (:meth:`Pseudonymizer.new_uids`). The
    latter three start with a NUL, which no Patient ID (LO) holds, so they never collide with an ID."""
    patient_id = str(ds.get("PatientID", "") or "")
    if patient_id.strip():
        return patient_id
    name = " ".join(str(ds.get("PatientName", "") or "").upper().replace("^", " ").split())
    if name:
        return f"\0name\0{name}\0{str(ds.get('PatientBirthDate', '') or '').strip()}"
    study = _text(ds, "StudyInstanceUID")
    if study:
        return f"\0study\0{study}"
    return f"\0no study\0{_text(ds, 'SeriesInstanceUID') or _text(ds, 'SOPInstanceUID')}"
