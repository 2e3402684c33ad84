"""Seal: the identifying attributes, encrypted for the recipient, for each configured carrier.

Pixel carrier: compress, encrypt for each recipient's X25519 key (one masked content key per
recipient beyond the first: :mod:`stegonode.codecs.seal`), render a QR code; when the
header carrier is on as well, a second, smaller QR code of the core attributes alone is ready
in case the full one does not fit the background (embed chooses). Header carrier: the PS3.15
Encrypted Attributes (:mod:`stegonode.handlers.header`) for the recipients' certificates.
The recipients are node.toml's ``[handlers.seal] recipients`` (files), or node.keys's own.

The pixel payload's associated data binds it to the *stego* instance: its new Study, Series and
SOP Instance UIDs (computed here with the same keyed mapping de-identification uses), so a
payload copied into another image does not open. The header carrier's MAC binds it to the new
Study and Series UIDs only: an archive that re-encodes lossily issues a new SOP Instance UID
(as the standard asks), and that is when the header carrier is needed.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import numpy as np
from cryptography import x509
from pydantic import field_validator
from pydicom import Dataset
from pydicom.datadict import DicomDictionary
from pydicom.tag import BaseTag, Tag

from stegonode.codecs import cms, payload
from stegonode.codecs.keys import NodeKeys, Recipient, load_recipient
from stegonode.codecs.seal import MAX_RECIPIENTS, seal_for
from stegonode.codecs.settings import Choice, Names, Settings
from stegonode.dicom.profile import BASIC_PROFILE
from stegonode.dicom.pseudonyms import BOUND_UIDS, Pseudonymizer
from stegonode.errors import ConfigError, KeyFileError, MessageNotFoundError, PayloadTooLargeError

from .base import HandlerBase, Instance, Revealing, keyword_tags
from .collect import serialize, without_bulk
from .header import HeaderCarrier, mac, mac_key, remove_header_carrier, seal_header, write_header_carrier
from .registry import HANDLERS
from .settings import CARRIERS as CARRIERS  # re-exported: where callers look for it

if TYPE_CHECKING:
    from .pipeline import PipelineContext

CORE_ATTRIBUTES = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber",
    "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID",
)


# Dictionaries for deflating the pixel payload; the protection block names the one used.
# Dictionary 2: the Explicit VR Little Endian element header (tag, VR) of every attribute of
# the Basic Profile table, then dictionary 1, then the headers of the core attributes (nearest
# the end, so cheapest to refer to). Built from the profile table and the DICOM dictionary;
# tests pin its digest, since changing it would break every payload written with it.
PAYLOAD_DICTIONARY = 2


def payload_dictionary(version: int) -> bytes:
    """Deflate dictionary ``version`` (1: before the header carrier; 2: since)."""
    if version == 1:
        return payload.ZDICT
    if version == 2:
        return _dictionary_2()
    raise MessageNotFoundError(f"unknown payload dictionary {version}: reveal with a newer stegonode")


@functools.cache
def _dictionary_2() -> bytes:
    profile = b"".join(_element_header(tag) for tag in sorted(BASIC_PROFILE) if tag in DicomDictionary)
    core = b"".join(_element_header(int(Tag(keyword))) for keyword in CORE_ATTRIBUTES)
    return profile + payload.ZDICT + core


def _element_header(tag: int) -> bytes:
    vr = DicomDictionary[tag][0].split(" or ")[0]
    return struct.pack("<HH", tag >> 16, tag & 0xFFFF) + vr.encode("ascii")


def binding(study_uid: str, series_uid: str, sop_instance_uid: str) -> bytes:
    """Associated data of the seal: the stego instance's identity."""
    return "\0".join(("stegonode/1", study_uid, series_uid, sop_instance_uid)).encode("ascii")


def stego_binding(ds: Dataset) -> bytes:
    """Associated data read from a stego instance's header."""
    return binding(*(str(ds.get(keyword, "")) for keyword in BOUND_UIDS))


def series_binding(ds: Dataset) -> bytes:
    """What the header carrier's MAC binds to, read from a stego instance's header."""
    return binding(str(ds.get("StudyInstanceUID", "")), str(ds.get("SeriesInstanceUID", "")), "")


@dataclass(frozen=True)
class HeaderRecipient:
    """What the node needs to write the header carrier: the recipients' certificates (one
    RecipientInfo each) and the MAC key."""

    certificates: tuple[x509.Certificate, ...]
    mac_key: bytes

    @property
    def certificate_ids(self) -> list[str]:
        return [cms.certificate_id(certificate) for certificate in self.certificates]


def recipient_files(settings: Mapping[str, Any]) -> list[Path]:
    """``[handlers.seal] recipients``: the recipient files (empty: node.keys's own recipient)."""
    return [Path(str(name)) for name in settings["recipients"]]


def load_recipients(settings: Mapping[str, Any], keys: NodeKeys) -> tuple[Recipient, ...]:
    """The recipients objects are sealed for: those listed, or node.keys's own."""
    files = recipient_files(settings)
    if not files:
        return (keys.recipient,)
    try:
        recipients = tuple(load_recipient(path) for path in files)
    except KeyFileError as exc:
        raise ConfigError(f"handlers.seal.recipients: {exc}") from None
    ids = [recipient.key_id for recipient in recipients]
    if len(set(ids)) != len(ids):
        raise ConfigError("handlers.seal.recipients lists one recipient twice")
    return recipients


def recipients_of(context: PipelineContext) -> tuple[Recipient, ...]:
    """Who objects are sealed for: ``[handlers.seal] recipients``, or node.keys's own (shared by
    seal and embed: :meth:`PipelineContext.shared`)."""
    return load_recipients(context.settings.seal, context.keys)


def header_of(context: PipelineContext) -> HeaderRecipient | None:
    """The header carrier's recipients, when it is configured and can be written."""
    return header_recipient(context.carriers, context.keys, context.shared(recipients_of))


def header_recipient(carriers: Sequence[str], keys: NodeKeys,
                     recipients: Sequence[Recipient] | None = None) -> HeaderRecipient | None:
    """What the header carrier needs, when it is configured and every recipient (by default
    node.keys's own) has a certificate.

    Key files from before the header carrier have no certificate: they keep working, with the
    pixel carrier only (callers say so once). Only "header" and no certificate is an error, and
    so is a listed recipient without one while others have one. ``carriers`` are validated
    (:class:`~.settings.PipelineSettings`).
    """
    if "header" not in carriers:
        return None
    recipients = (keys.recipient,) if recipients is None else tuple(recipients)
    certificates = [recipient.certificate for recipient in recipients]
    if any(certificate is None for certificate in certificates):
        if "pixels" not in carriers or any(certificate is not None for certificate in certificates):
            raise ConfigError("pipeline.carriers names 'header', which needs a certificate for every "
                              "recipient (stegonode keygen writes one; --certificate CERT.pem takes yours)")
        return None
    return HeaderRecipient(tuple(c for c in certificates if c is not None), mac_key(keys.embedding_key))


def core_subset(attributes: Dataset, core: Collection[BaseTag]) -> Dataset:
    """The attributes whose tags are in ``core`` (and the character set their text needs)."""
    subset = Dataset()
    for element in attributes:
        if element.tag in core or element.keyword == "SpecificCharacterSet":
            subset.add(element)
    return subset


class SealSettings(Settings):
    """``[handlers.seal]``: the QR code's error correction, the core attributes (what the pixels
    carry when the whole payload does not fit), and who objects are sealed for."""

    qr_error_correction: Annotated[str, Choice("L", "M", "Q", "H")] = "L"
    core_attributes: Names = tuple(CORE_ATTRIBUTES)
    recipients: Names = ()

    @field_validator("core_attributes")
    @classmethod
    def _keywords(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        keyword_tags(value, "handlers.seal.core_attributes")
        return value

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not all(value):
            raise ConfigError("handlers.seal.recipients must be a list of recipient file paths")
        if len(value) > MAX_RECIPIENTS:
            raise ConfigError(f"handlers.seal.recipients: at most {MAX_RECIPIENTS} recipients")
        return value


@HANDLERS.register
class SealHandler(HandlerBase):
    """Fills ``instance.message`` (and ``core_message``) and ``instance.header_carrier``; writes
    the header carrier, and removes it in reveal."""

    name: ClassVar[str] = "seal"
    requires: ClassVar[tuple[str, ...]] = ("collect",)
    table: ClassVar[type[Settings]] = SealSettings

    @classmethod
    def carries_header(cls, context: PipelineContext) -> bool:
        return context.shared(header_of) is not None

    @classmethod
    def from_config(cls, context: PipelineContext) -> SealHandler:
        seal = context.settings["seal"]
        return cls([recipient.public_key for recipient in context.shared(recipients_of)], context.pseudonyms,
                   seal["qr_error_correction"],
                   header=context.shared(header_of), pixels="pixels" in context.carriers,
                   core=keyword_tags(seal["core_attributes"], "handlers.seal.core_attributes"))

    def __init__(
        self,
        recipient_public_keys: bytes | Sequence[bytes],
        pseudonyms: Pseudonymizer,
        error_correction: str = "M",
        header: HeaderRecipient | None = None,
        pixels: bool = True,
        core: Collection[BaseTag] = frozenset(),
    ) -> None:
        self.recipient_public_keys = (
            [recipient_public_keys] if isinstance(recipient_public_keys, bytes) else list(recipient_public_keys))
        self.pseudonyms = pseudonyms
        self.error_correction = error_correction
        self.header = header
        self.pixels = pixels
        self.core = core

    def __call__(self, instance: Instance) -> None:
        ds, attributes = instance.dataset, instance.attributes
        assert attributes is not None, "seal runs after collect"
        study, series, sop_instance = self.pseudonyms.new_uids(ds)
        associated = binding(study, series, sop_instance)
        if self.header is not None:
            envelope = seal_header(attributes, self.header.certificates)
            instance.header_carrier = HeaderCarrier(
                envelope, mac(self.header.mac_key, binding(study, series, ""), envelope),
                self.header.certificate_ids,
            )
            instance.report["header_bytes"] = len(envelope)
        if not self.pixels or instance.pixels is None:
            return
        sealed = self._seal(without_bulk(attributes), associated)
        instance.report["payload_bytes"] = len(sealed)
        try:
            instance.message = payload.to_qr(payload.to_text(sealed), self.error_correction)
        except PayloadTooLargeError:
            if self.header is None:
                raise  # without the header carrier, nothing else could carry the rest
        if self.header is not None and self.core:
            subset = core_subset(attributes, self.core)
            if len(subset) < len(without_bulk(attributes)):
                instance.core_message = functools.cache(lambda: self._core_message(instance, subset, associated))

    def _core_message(self, instance: Instance, subset: Dataset, associated: bytes) -> np.ndarray:
        core_sealed = self._seal(subset, associated)
        instance.report["core_payload_bytes"] = len(core_sealed)
        return payload.to_qr(payload.to_text(core_sealed), self.error_correction)

    def finish(self, instance: Instance) -> None:
        if instance.protection is not None and "header" in instance.protection.carriers:
            assert instance.header_carrier is not None, "the header carrier is recorded but was not made"
            write_header_carrier(instance.dataset, instance.header_carrier.envelope)

    @classmethod
    def unprotect(cls, state: Revealing) -> None:
        if state.identity.envelope is not None:
            remove_header_carrier(state.output, state.identity.envelope)

    def _seal(self, attributes: Dataset, associated: bytes) -> bytes:
        compressed = payload.compress(serialize(attributes), payload_dictionary(PAYLOAD_DICTIONARY))
        return seal_for(compressed, self.recipient_public_keys, associated)
