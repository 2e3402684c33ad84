"""Sealing: public-key authenticated encryption of the payload, bound to one instance.

Construction (ECIES-style, like HPKE base mode): a fresh X25519 ephemeral key agrees a secret
with the recipient's public key; HKDF-SHA256 derives an AES-256-GCM key and nonce from it (unique
per seal, so the nonce never repeats under a key); the associated data binds the ciphertext to
the stego instance's UIDs. Only the holder of the recipient's private key can open it.

Envelope layout (57 bytes of overhead)::

    version (1) | recipient key id (4) | binding tag (4) | ephemeral public key (32) | AES-GCM ciphertext + tag (16)

The recipient key id and binding tag are non-secret hashes that let :func:`open_sealed` say *why*
a payload does not open (another recipient, another instance) before the AEAD check proves it.
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from stegonode.errors import (
    MessageNotFoundError,
    PayloadBindingError,
    PayloadIntegrityError,
    WrongRecipientKeyError,
)

VERSION = 1
_HEADER = 1 + 4 + 4 + 32


def _recipient_id(public_key: bytes) -> bytes:
    return hashlib.sha256(b"stegonode recipient\0" + public_key).digest()[:4]


def _binding(associated_data: bytes) -> bytes:
    return hashlib.sha256(b"stegonode binding\0" + associated_data).digest()[:4]


def _derive(shared: bytes, ephemeral_public: bytes, recipient_public: bytes) -> tuple[bytes, bytes]:
    okm = HKDF(
        algorithm=hashes.SHA256(),
        length=44,
        salt=ephemeral_public + recipient_public,
        info=b"stegonode seal v1",
    ).derive(shared)
    return okm[:32], okm[32:]


def seal(plaintext: bytes, recipient_public_key: bytes, associated_data: bytes) -> bytes:
    """Encrypt and authenticate ``plaintext`` for the recipient, bound to ``associated_data``."""
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = ephemeral.public_key().public_bytes_raw()
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient_public_key))
    key, nonce = _derive(shared, ephemeral_public, recipient_public_key)
    header = (
        bytes([VERSION]) + _recipient_id(recipient_public_key) + _binding(associated_data) + ephemeral_public
    )
    return header + AESGCM(key).encrypt(nonce, plaintext, header + associated_data)


def open_sealed(envelope: bytes, recipient_private_key: bytes, associated_data: bytes) -> bytes:
    """Open an envelope made by :func:`seal`; raise a specific RevealError if it does not open."""
    if len(envelope) < _HEADER + 16 or envelope[0] != VERSION:
        raise MessageNotFoundError("recovered data is not a stegonode sealed payload")
    private = X25519PrivateKey.from_private_bytes(recipient_private_key)
    public = private.public_key().public_bytes_raw()
    header, ciphertext = envelope[:_HEADER], envelope[_HEADER:]
    if header[1:5] != _recipient_id(public):
        raise WrongRecipientKeyError(
            f"payload is sealed for recipient key {header[1:5].hex()}, "
            f"but peer.keys holds {_recipient_id(public).hex()}"
        )
    if header[5:9] != _binding(associated_data):
        raise PayloadBindingError(
            "payload is bound to another instance (it was copied or moved into this image)"
        )
    ephemeral_public = header[9:]
    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(ephemeral_public))
        key, nonce = _derive(shared, ephemeral_public, public)
        return AESGCM(key).decrypt(nonce, ciphertext, header + associated_data)
    except (InvalidTag, ValueError):
        raise PayloadIntegrityError("sealed payload failed authentication: it was tampered with") from None


def recipient_key_id(public_key: bytes) -> str:
    """Hex id of a recipient public key, as written into envelopes."""
    return _recipient_id(public_key).hex()
