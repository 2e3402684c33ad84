"""Sealing: public-key authenticated encryption of the payload, bound to one instance.

Construction (ECIES-style, like HPKE base mode): a fresh X25519 ephemeral key agrees a secret
with the recipient's public key; HKDF-SHA256 derives an AES-256-GCM key and nonce from it (unique
per seal, so the nonce never repeats under a key); the associated data binds the ciphertext to
the stego instance's UIDs. Only the holder of the recipient's private key can open it.

Envelope layout (57 bytes of overhead)::

    version (1) | recipient key id (4) | binding tag (4) | ephemeral public key (32) | AES-GCM ciphertext + tag (16)

The recipient key id and binding tag are non-secret hashes that let :func:`open_sealed` say *why*
a payload does not open (another recipient, another instance) before the AEAD check proves it.

Several recipients (version 2, :func:`seal_for` with more than one key): a fresh random content
key encrypts the payload once (AES-256-GCM); one ephemeral X25519 key agrees a secret with each
recipient, and HKDF of that secret (salted with both public keys) masks the content key for that
recipient. Layout (50 bytes, plus 32 per recipient)::

    version (1) | binding tag (4) | ephemeral public key (32) | count (1)
    | count x masked content key (32) | AES-GCM ciphertext + tag (16)

Each extra recipient thus costs 32 bytes of payload (264 QR data bits in Base45). The slots carry
no key ids (the protection block lists them, in slot order); a recipient finds its slot by the
AEAD check. The whole header, slots included, is associated data: an altered slot fails
authentication for every recipient, like altered ciphertext.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

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
MULTI_VERSION = 2  # several recipients
_HEADER = 1 + 4 + 4 + 32
_MULTI_HEADER = 1 + 4 + 32 + 1
SLOT_BYTES = 32  # one masked AES-256 content key per recipient
MAX_RECIPIENTS = 255


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


def _mask(shared: bytes, ephemeral_public: bytes, recipient_public: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(),
        length=SLOT_BYTES,
        salt=ephemeral_public + recipient_public,
        info=b"stegonode seal v2 content key",
    ).derive(shared)


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def seal_for(plaintext: bytes, recipient_public_keys: Sequence[bytes], associated_data: bytes) -> bytes:
    """Seal for every recipient: :func:`seal` for one, the version-2 envelope for several."""
    if not recipient_public_keys:
        raise ValueError("seal needs at least one recipient")
    if len(recipient_public_keys) == 1:
        return seal(plaintext, recipient_public_keys[0], associated_data)
    if len(recipient_public_keys) > MAX_RECIPIENTS:
        raise ValueError(f"at most {MAX_RECIPIENTS} recipients")
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = ephemeral.public_key().public_bytes_raw()
    content_key = AESGCM.generate_key(bit_length=256)
    slots = b"".join(
        _xor(content_key, _mask(ephemeral.exchange(X25519PublicKey.from_public_bytes(public)),
                                ephemeral_public, public))
        for public in recipient_public_keys
    )
    header = (bytes([MULTI_VERSION]) + _binding(associated_data) + ephemeral_public
              + bytes([len(recipient_public_keys)]) + slots)
    # The content key is fresh for every seal: a fixed nonce never repeats under it.
    return header + AESGCM(content_key).encrypt(bytes(12), plaintext, header + associated_data)


def envelope_recipients(envelope: bytes) -> int:
    """How many recipients an envelope is sealed for (1 for version 1)."""
    return envelope[_MULTI_HEADER - 1] if envelope[:1] == bytes([MULTI_VERSION]) and len(envelope) >= _MULTI_HEADER else 1


def open_sealed(envelope: bytes, recipient_private_key: bytes, associated_data: bytes) -> bytes:
    """Open an envelope made by :func:`seal` or :func:`seal_for`; raise a specific RevealError if
    it does not open."""
    if envelope[:1] == bytes([MULTI_VERSION]):
        return _open_multi(envelope, recipient_private_key, associated_data)
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


def _open_multi(envelope: bytes, recipient_private_key: bytes, associated_data: bytes) -> bytes:
    """Open a version-2 envelope: the slot whose content key authenticates the payload."""
    count = envelope_recipients(envelope)
    end = _MULTI_HEADER + count * SLOT_BYTES
    if count < 2 or len(envelope) < end + 16:
        raise MessageNotFoundError("recovered data is not a stegonode sealed payload")
    if envelope[1:5] != _binding(associated_data):
        raise PayloadBindingError(
            "payload is bound to another instance (it was copied or moved into this image)"
        )
    header, ciphertext = envelope[:end], envelope[end:]
    ephemeral_public = envelope[5:37]
    private = X25519PrivateKey.from_private_bytes(recipient_private_key)
    public = private.public_key().public_bytes_raw()
    try:
        mask = _mask(private.exchange(X25519PublicKey.from_public_bytes(ephemeral_public)), ephemeral_public, public)
    except ValueError:
        raise PayloadIntegrityError("sealed payload failed authentication: it was tampered with") from None
    for slot in range(count):
        start = _MULTI_HEADER + slot * SLOT_BYTES
        content_key = _xor(envelope[start:start + SLOT_BYTES], mask)
        try:
            return AESGCM(content_key).decrypt(bytes(12), ciphertext, header + associated_data)
        except InvalidTag:
            continue
    raise PayloadIntegrityError(
        "sealed payload failed authentication for this recipient key: it was tampered with, "
        "or not sealed for this key"
    )
