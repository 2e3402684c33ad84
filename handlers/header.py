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
    """The header carrier of one instance: envelope, its MAC and the certificate it is for."""

    envelope: bytes
    mac: str
    certificate_id: str


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


def seal_header(attributes: Dataset, certificate: x509.Certificate) -> bytes:
    """The Encrypted Content: CMS EnvelopedData of the Encrypted Attributes Data Set."""
    return cms.envelope(encrypted_attributes_data_set(attributes), certificate)


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
        for content in _as_written(item.get("EncryptedContent")):
            if hmac.compare_digest(mac(key, binding, content), expected_mac):
                return content
    raise PayloadIntegrityError(
        "the encrypted attributes (0400,0500) failed authentication: they were altered, "
        "replaced, or belong to another instance"
    )


def _as_written(content: bytes | None) -> list[bytes]:
    """The envelope an Encrypted Content value may hold: a DER envelope of odd length is stored
    padded with one zero byte (DICOM values have even length)."""
    if not content:
        return []
    content = bytes(content)
    return [content, content[:-1]] if len(content) % 2 == 0 and content.endswith(b"\0") else [content]


def remove_header_carrier(ds: Dataset, envelope: bytes) -> None:
    """Delete our item (and the sequence, if that leaves it empty)."""
    items = ds.get("EncryptedAttributesSequence")
    if not items:
        return
    kept = [item for item in items if envelope not in _as_written(item.get("EncryptedContent"))]
    if kept:
        ds.EncryptedAttributesSequence = Sequence(kept)
    else:
        del ds.EncryptedAttributesSequence


def open_header(envelope: bytes, certificate: x509.Certificate | None,
                private_key: rsa.RSAPrivateKey | None, expected_certificate_id: str) -> Dataset:
    """The original attributes from an authenticated envelope."""
    if certificate is None or private_key is None:
        raise WrongRecipientKeyError(
            f"the encrypted attributes are for certificate {expected_certificate_id}, and peer.keys "
            "holds no certificate with its private key (keygen --certificate CERT --private-key KEY)"
        )
    if cms.certificate_id(certificate) != expected_certificate_id:
        raise WrongRecipientKeyError(
            f"the encrypted attributes are for certificate {expected_certificate_id}, "
            f"peer.keys holds certificate {cms.certificate_id(certificate)}"
        )
    data_set = parse(cms.open_envelope(envelope, certificate, private_key))
    items = data_set.get("ModifiedAttributesSequence")
    if not items or len(items) != 1:
        raise MessageNotFoundError("encrypted attributes hold no single Modified Attributes Sequence item")
    return items[0]
