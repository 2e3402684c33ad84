"""The header carrier: PS3.15 E.1.1 Encrypted Attributes beside the pixel payload.

The original values of every attribute de-identification changes (what collect gathers) become
the single item of the Modified Attributes Sequence (0400,0550) of an Encrypted Attributes Data
Set, encoded Explicit VR Little Endian, enveloped with CMS for the recipient's certificate
(:mod:`stegonode.codecs.cms`) and stored as an item of the Encrypted Attributes Sequence
(0400,0500) with its Encrypted Content Transfer Syntax UID (0400,0510) and Encrypted Content
(0400,0520). Any peer that holds the certificate's private key decrypts it with standard tools.

CMS with AES-CBC is not authenticated, and anyone holding the certificate can encrypt, so the
protection block carries a MAC over the envelope and the stego object's Study and Series UIDs,
keyed from the embedding key (which node and peer share): an altered, replaced or moved header
carrier is reported as tampering, never decoded into wrong patient data. It is not bound to the
SOP Instance UID, which lossy re-encoding replaces; a header carrier moved, with its protection
block, between two instances of one series is caught by the pixel carrier where that still
reads, and not otherwise.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydicom import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

from stegonode.codecs import cms
from stegonode.errors import MessageNotFoundError, PayloadIntegrityError, WrongRecipientKeyError

from .collect import parse, serialize

MAC_BYTES = 16


@dataclass(frozen=True)
class HeaderCarrier:
    """The header carrier of one instance: envelope, its MAC and the certificates it is for."""

    envelope: bytes
    mac: str
    certificate_ids: list[str]


def mac_key(embedding_key: bytes) -> bytes:
    """The header carrier's MAC key, derived from the shared embedding key."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"stegonode header carrier mac v1").derive(embedding_key)


def mac(key: bytes, binding: bytes, envelope: bytes) -> str:
    """Hex MAC of an envelope bound to the stego series (``binding``: its UIDs)."""
    message = len(binding).to_bytes(4, "big") + binding + envelope
    return hmac.new(key, message, hashlib.sha256).digest()[:MAC_BYTES].hex()


def encrypted_attributes_data_set(attributes: Dataset) -> bytes:
    """The Encrypted Attributes Data Set: one Modified Attributes Sequence item, Explicit VR LE."""
    data_set = Dataset()
    data_set.ModifiedAttributesSequence = Sequence([attributes])
    return serialize(data_set)


def seal_header(attributes: Dataset, certificates: x509.Certificate | Iterable[x509.Certificate]) -> bytes:
    """The Encrypted Content: CMS EnvelopedData of the Encrypted Attributes Data Set, one
    RecipientInfo per certificate."""
    return cms.envelope(encrypted_attributes_data_set(attributes), certificates)


def write_header_carrier(ds: Dataset, envelope: bytes) -> None:
    """Append an Encrypted Attributes Sequence item holding ``envelope``."""
    item = Dataset()
    item.EncryptedContentTransferSyntaxUID = ExplicitVRLittleEndian
    item.EncryptedContent = envelope
    if "EncryptedAttributesSequence" in ds:
        ds.EncryptedAttributesSequence.append(item)
    else:
        ds.EncryptedAttributesSequence = Sequence([item])


def find_header_carrier(ds: Dataset, key: bytes, binding: bytes, expected_mac: str) -> bytes:
    """Our envelope among the Encrypted Attributes Sequence items: the one the MAC names.

    PayloadIntegrityError when items are there but
    none carries the MAC the protection block recorded: the header carrier was altered, replaced
    or moved from another instance.
    """
    for item in ds.get("EncryptedAttributesSequence") or []:
        content = stored_envelope(item)
        if content and hmac.compare_digest(mac(key, binding, content), expected_mac):
            return content
    raise PayloadIntegrityError(
        "the encrypted attributes (0400,0500) failed authentication: they were altered, "
        "replaced, or belong to another instance"
    )


def stored_envelope(item: Dataset) -> bytes:
    """An item's Encrypted Content without the byte that pads an odd-length DER envelope to the
    even length DICOM values have (the MAC covers the envelope as made, not the padding)."""
    content = bytes(item.get("EncryptedContent") or b"")
    if len(content) % 2 == 0 and content.endswith(b"\0") and _der_length(content) == len(content) - 1:
        return content[:-1]
    return content


def _der_length(data: bytes) -> int | None:
    """The length of the DER value that starts ``data`` (tag, length, contents), if it parses."""
    if len(data) < 2:
        return None
    if data[1] < 0x80:
        return 2 + data[1]
    size = data[1] & 0x7F
    if size == 0 or len(data) < 2 + size:
        return None
    return 2 + size + int.from_bytes(data[2:2 + size], "big")


def remove_header_carrier(ds: Dataset, envelope: bytes) -> None:
    """Delete our item (and the sequence, if that leaves it empty)."""
    items = ds.get("EncryptedAttributesSequence")
    if not items:
        return
    kept = [item for item in items if stored_envelope(item) != envelope]
    if kept:
        ds.EncryptedAttributesSequence = Sequence(kept)
    else:
        del ds.EncryptedAttributesSequence


def open_header(envelope: bytes, certificate: x509.Certificate | None,
                private_key: rsa.RSAPrivateKey | None, expected_certificate_ids: str | Iterable[str]) -> Dataset:
    """The original attributes from an authenticated envelope made for one of
    ``expected_certificate_ids`` (the protection block's)."""
    expected = [expected_certificate_ids] if isinstance(expected_certificate_ids, str) else list(expected_certificate_ids)
    named = "certificate " + expected[0] if len(expected) == 1 else "certificates " + ", ".join(expected)
    if certificate is None or private_key is None:
        raise WrongRecipientKeyError(
            f"the encrypted attributes are for {named}, and peer.keys "
            "holds no certificate with its private key (keygen --certificate CERT --private-key KEY)"
        )
    if cms.certificate_id(certificate) not in expected:
        raise WrongRecipientKeyError(
            f"the encrypted attributes are for {named}, "
            f"peer.keys holds certificate {cms.certificate_id(certificate)}"
        )
    data_set = parse(cms.open_envelope(envelope, certificate, private_key))
    items = data_set.get("ModifiedAttributesSequence")
    if not items or len(items) != 1:
        raise MessageNotFoundError("encrypted attributes hold no single Modified Attributes Sequence item")
    return items[0]
