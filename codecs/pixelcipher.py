"""The interface every pixel cipher implements, the helpers they share, and AES-256-GCM.

A pixel cipher turns an array of unsigned pixel words (uint8 or uint16, any shape) into cipher
words of the same shape and dtype, plus an authentication tag kept beside them. Every bit
pattern of a word is a legal cipher value, so the caller decides how words map to stored
pixels (handlers/encrypt.py uses the whole BitsAllocated word).

:class:`AesGcmCipher` is the standard choice: AES-256 in GCM mode over the little-endian pixel
bytes (GCM is counter mode plus GHASH, so the ciphertext has the length of the plaintext), with
the 16-byte tag beside it. Its security rests on the nonce never repeating under one key; a
random 96-bit nonce per image makes a repeat negligible for any realistic number of images.
The chaos cipher of seed 004 (codecs/chaos.py) implements the same interface.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from stegonode.errors import InputError, PixelIntegrityError

from .registry import CIPHERS

WORD_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16))
TAMPERED = "encrypted pixels failed authentication: the pixels or the cipher block were altered"


class PixelCipher(Protocol):
    """Authenticated encryption of pixel words under one secret key, with a per-image nonce."""

    name: ClassVar[str]
    version: ClassVar[int]
    nonce_size: ClassVar[int]
    tag_size: ClassVar[int]  # bytes of the authentication tag the cipher block records

    def encrypt(self, words: np.ndarray, nonce: bytes, associated_data: bytes) -> tuple[np.ndarray, bytes]:
        """Cipher words (same shape and dtype) and the authentication tag.

        ``associated_data`` is authenticated, not encrypted (the caller's image attributes).
        """

    def decrypt(self, words: np.ndarray, nonce: bytes, associated_data: bytes, tag: bytes) -> np.ndarray:
        """The plain words; PixelIntegrityError if the tag does not verify (wrong key or altered)."""


def derive(key: bytes, info: bytes, length: int, salt: bytes | None = None) -> bytes:
    """HKDF-SHA256 of the 32-byte pixel-cipher key, separated by ``info`` (and ``salt``)."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(key)


def check_words(words: np.ndarray, nonce: bytes, nonce_size: int) -> None:
    """Refuse what no pixel cipher handles: other dtypes, empty arrays, a wrong nonce length."""
    if words.dtype not in WORD_DTYPES:
        raise InputError(f"pixel cipher: words must be uint8 or uint16, got {words.dtype}")
    if words.size == 0:
        raise InputError("pixel cipher: no pixels to encrypt")
    if len(nonce) != nonce_size:
        raise ValueError(f"pixel cipher: nonce must be {nonce_size} bytes, got {len(nonce)}")


def bound_data(name: str, version: int, words: np.ndarray, associated_data: bytes) -> bytes:
    """What the tag authenticates besides nonce and ciphertext: cipher, shape, dtype, caller data."""
    shape = "x".join(str(n) for n in words.shape)
    header = f"stegonode pixel cipher\0{name}\0{version}\0{shape}\0{words.dtype.itemsize * 8}\0"
    return header.encode("ascii") + associated_data


def little_endian(words: np.ndarray) -> bytes:
    """The words as little-endian bytes (the byte order of the DICOM pixel data written)."""
    return np.ascontiguousarray(words, dtype=words.dtype.newbyteorder("<")).tobytes()


def from_little_endian(data: bytes, like: np.ndarray) -> np.ndarray:
    """Inverse of :func:`little_endian`: native words shaped like ``like``."""
    return np.frombuffer(data, dtype=like.dtype.newbyteorder("<")).astype(like.dtype).reshape(like.shape)


@CIPHERS.register
class AesGcmCipher:
    """AES-256-GCM over the pixel bytes: the standard choice."""

    name: ClassVar[str] = "aes-gcm"
    version: ClassVar[int] = 1
    nonce_size: ClassVar[int] = 12
    tag_size: ClassVar[int] = 16  # GCM tag

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(derive(key, b"stegonode pixel cipher aes-256-gcm v1", 32))

    def encrypt(self, words: np.ndarray, nonce: bytes, associated_data: bytes) -> tuple[np.ndarray, bytes]:
        check_words(words, nonce, self.nonce_size)
        sealed = self._aead.encrypt(nonce, little_endian(words), bound_data(self.name, self.version, words, associated_data))
        return from_little_endian(sealed[:-16], words), sealed[-16:]

    def decrypt(self, words: np.ndarray, nonce: bytes, associated_data: bytes, tag: bytes) -> np.ndarray:
        check_words(words, nonce, self.nonce_size)
        aad = bound_data(self.name, self.version, words, associated_data)
        try:
            plain = self._aead.decrypt(nonce, little_endian(words) + tag, aad)
        except InvalidTag:
            raise PixelIntegrityError(TAMPERED) from None
        return from_little_endian(plain, words)
