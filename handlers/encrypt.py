"""Encrypt: replace the (stego) pixels by cipher pixels; and decryption, the first step of reveal.

The cipher works on the whole stored word (BitsAllocated bits), so every cipher value is a legal
pixel: while encrypted, BitsStored = BitsAllocated and HighBit = BitsAllocated - 1 (otherwise
decoders would drop the bits above HighBit); the original BitsStored and HighBit go into the
cipher block and come back on decryption. Shape, BitsAllocated and PixelRepresentation do not
change. The cipher block is a private block (creator ``STEGONODE CIPHER 1``, group 0013)
holding, as JSON: cipher name and version, nonce, authentication tag, the non-secret id of the
pixel-cipher key, and the original BitsStored and HighBit. The tag covers the cipher pixels,
the nonce and the Image Pixel attributes above; the rest of the header is not covered (the
sealed payload binds the identity to the instance's UIDs).
"""

from __future__ import annotations

import copy
import os
import secrets
import string
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from pydantic import field_validator
from pydicom import Dataset

from stegonode.codecs import cipher_stats
from stegonode.codecs.keys import key_id
from stegonode.codecs.pixelcipher import PixelCipher
from stegonode.codecs.registry import CIPHERS
from stegonode.codecs.settings import Settings
from stegonode.dicom.pixels import PixelFormat, read_pixels, write_pixels
from stegonode.dicom.private import read_document, remove_block, write_document
from stegonode.errors import CipherBlockError, ConfigError, InputError, WrongPixelCipherKeyError

from .base import HandlerBase, Instance, Revealing, choice_of
from .registry import HANDLERS

if TYPE_CHECKING:
    from .pipeline import PipelineContext

CIPHER_CREATOR = "STEGONODE CIPHER 1"
CIPHER_GROUP = 0x0013
CIPHER_BLOCK_VERSION = 1


def make_cipher(name: str, key: bytes) -> PixelCipher:
    """The pixel cipher ``name`` under the 32-byte pixel-cipher ``key``."""
    return CIPHERS.get_or_error(name)(key)


def cipher_key_id(key: bytes) -> str:
    return key_id(key, "pixel cipher")


@dataclass(frozen=True)
class CipherBlock:
    """Contents of the cipher block (nonce and tag in hex)."""

    cipher: str
    cipher_version: int
    nonce: str
    tag: str
    key_id: str
    bits_stored: int
    high_bit: int


def write_cipher_block(ds: Dataset, block: CipherBlock) -> None:
    write_document(ds, CIPHER_GROUP, CIPHER_CREATOR, {"version": CIPHER_BLOCK_VERSION, **block.__dict__})


def read_cipher_block(ds: Dataset) -> CipherBlock | None:
    """The cipher block; None if the pixels are not encrypted; CipherBlockError if it is damaged."""
    try:
        document = read_document(ds, CIPHER_GROUP, CIPHER_CREATOR)
    except ValueError:
        raise CipherBlockError("damaged cipher block: not readable JSON; the pixels cannot be decrypted") from None
    if document is None:
        return None
    if not isinstance(document, dict) or document.pop("version", None) != CIPHER_BLOCK_VERSION:
        raise CipherBlockError("damaged or unknown cipher block version; the pixels cannot be decrypted")
    try:
        block = CipherBlock(**document)
    except TypeError:
        raise CipherBlockError("damaged cipher block: fields missing or unknown") from None
    problem = _block_problem(block)
    if problem:
        raise CipherBlockError(f"damaged cipher block: {problem}")
    return block


def _block_problem(block: CipherBlock) -> str | None:
    """What is wrong with a parsed block, or None."""
    if not isinstance(block.cipher, str) or block.cipher not in CIPHERS:
        return f"unknown cipher {block.cipher!r}"
    cipher = CIPHERS[block.cipher]
    if block.cipher_version != cipher.version:
        return f"{block.cipher} version {block.cipher_version!r}, this node reads {cipher.version}"
    for field, size in (("nonce", cipher.nonce_size), ("tag", cipher.tag_size)):
        value = getattr(block, field)
        if not (isinstance(value, str) and len(value) == 2 * size and set(value) <= set(string.hexdigits)):
            return f"{field} is not {size} bytes of hex"
    if not isinstance(block.key_id, str):
        return "key id is not text"
    if not isinstance(block.bits_stored, int):
        return "original BitsStored is not a number"
    if not all(isinstance(v, int) and 0 <= v < 16 for v in (block.bits_stored - 1, block.high_bit)):
        return "original BitsStored/HighBit out of range"
    return None


def is_encrypted(ds: Dataset) -> bool:
    try:
        return read_document(ds, CIPHER_GROUP, CIPHER_CREATOR) is not None
    except ValueError:
        return True  # a damaged block still says the pixels are encrypted


def _associated_data(ds: Dataset, block: CipherBlock) -> bytes:
    """The Image Pixel attributes and block fields the tag covers (as in the encrypted object)."""
    values = (
        block.key_id, block.bits_stored, block.high_bit, int(ds.Rows), int(ds.Columns),
        int(ds.get("NumberOfFrames", 1) or 1), int(ds.BitsAllocated), int(ds.PixelRepresentation),
    )
    return "\0".join(str(v) for v in values).encode("ascii")


def pixel_words(pixels: np.ndarray) -> np.ndarray:
    """Stored values as unsigned words of the same size (two's complement for signed pixels)."""
    return pixels.view(np.dtype(f"u{pixels.dtype.itemsize}"))


def cipher_report(
    words: np.ndarray, names: Iterable[str] = tuple(CIPHERS)
) -> tuple[list[cipher_stats.Row], dict[str, np.ndarray]]:
    """The statistics battery of the ciphers ``names`` on ``words`` under a fresh random key and
    one fixed random nonce per cipher (the report describes the cipher, not a key in use)."""
    ciphers = {name: CIPHERS[name] for name in names}
    nonces = {name: secrets.token_bytes(cipher.nonce_size) for name, cipher in ciphers.items()}
    return cipher_stats.battery(words, ciphers, secrets.token_bytes(32), nonces)


class EncryptSettings(Settings):
    """``[handlers.encrypt]``: the pixel cipher, one of the registered ones."""

    cipher: str = "aes-gcm"

    @field_validator("cipher")
    @classmethod
    def _registered(cls, value: str) -> str:
        return choice_of("handlers.encrypt.cipher", value, list(CIPHERS))


@HANDLERS.register
class EncryptHandler(HandlerBase):
    """Replaces ``instance.pixels`` by cipher pixels; the cipher block goes to ``instance.encryption``
    and is written last. Its inverse step, decryption, runs first in reveal."""

    name: ClassVar[str] = "encrypt"
    needs_pixels: ClassVar[bool] = True
    requires: ClassVar[tuple[str, ...]] = ("embed",)
    table: ClassVar[type[Settings]] = EncryptSettings
    reveal_phase: ClassVar[int] = 0  # the pixels must be plain before anything reads them

    @classmethod
    def from_config(cls, context: PipelineContext) -> EncryptHandler:
        return cls(context.settings["encrypt"]["cipher"], context.keys.pixel_cipher_key)

    def finish(self, instance: Instance) -> None:
        if instance.encryption is not None:
            write_cipher_block(instance.dataset, instance.encryption)

    @classmethod
    def unprotect(cls, state: Revealing) -> None:
        state.dataset = decrypted(state.dataset, state.keys.pixel_cipher_key)

    def __init__(self, cipher: str, key: bytes, nonce: bytes | None = None) -> None:
        """``nonce`` fixes the nonce of every image (for analysis only); random per image otherwise."""
        self.cipher = make_cipher(cipher, key)
        self.key_id = cipher_key_id(key)
        if nonce is not None and len(nonce) != self.cipher.nonce_size:
            raise ConfigError(
                f"nonce for cipher {cipher} must be {self.cipher.nonce_size} bytes "
                f"({2 * self.cipher.nonce_size} hex digits), got {len(nonce)}"
            )
        self.nonce = nonce

    def __call__(self, instance: Instance) -> None:
        assert instance.pixels is not None, "encrypt runs on objects with a pixel carrier"
        instance.pixels, instance.encryption = self.encrypt(instance.dataset, instance.pixels)
        instance.report["cipher"] = self.cipher.name

    def encrypt(self, ds: Dataset, pixels: np.ndarray) -> tuple[np.ndarray, CipherBlock]:
        """Cipher pixels for ``ds`` (whose BitsStored and HighBit are set to the whole word)."""
        if is_encrypted(ds):
            raise InputError("pixels are already encrypted (cipher block present)")
        fmt = PixelFormat.of(ds)
        nonce = self.nonce if self.nonce is not None else os.urandom(self.cipher.nonce_size)
        block = CipherBlock(
            cipher=self.cipher.name, cipher_version=self.cipher.version, nonce=nonce.hex(), tag="",
            key_id=self.key_id, bits_stored=fmt.bits_stored,
            high_bit=int(ds.get("HighBit", fmt.bits_stored - 1)),
        )
        ds.BitsStored = fmt.bits_allocated
        ds.HighBit = fmt.bits_allocated - 1
        cipher, tag = self.cipher.encrypt(pixel_words(pixels), nonce, _associated_data(ds, block))
        return cipher.view(pixels.dtype), replace(block, tag=tag.hex())


def encrypt_dataset(ds: Dataset, encryptor: EncryptHandler) -> None:
    """Encrypt the pixels of ``ds`` in place (pixel data, BitsStored, HighBit, cipher block)."""
    pixels, block = encryptor.encrypt(ds, read_pixels(ds))
    write_pixels(ds, pixels)
    write_cipher_block(ds, block)


def decrypt_dataset(ds: Dataset, key: bytes) -> CipherBlock | None:
    """Decrypt ``ds`` in place with the pixel-cipher ``key``; its cipher block, None if not encrypted.

    A wrong key, altered pixels and a damaged cipher block each raise their DecryptionError;
    ``ds`` is then left as it was.
    """
    block = read_cipher_block(ds)
    if block is None:
        return None
    if block.key_id != cipher_key_id(key):
        raise WrongPixelCipherKeyError(
            f"pixels were encrypted with pixel-cipher key {block.key_id}, "
            f"the key file holds {cipher_key_id(key)}"
        )
    pixels = read_pixels(ds)
    plain = make_cipher(block.cipher, key).decrypt(
        pixel_words(pixels), bytes.fromhex(block.nonce), _associated_data(ds, block), bytes.fromhex(block.tag)
    )
    ds.BitsStored = block.bits_stored
    ds.HighBit = block.high_bit
    write_pixels(ds, plain.view(pixels.dtype))
    remove_block(ds, CIPHER_GROUP, CIPHER_CREATOR)
    return block


def decrypted(ds: Dataset, key: bytes) -> Dataset:
    """``ds`` itself if its pixels are not encrypted, else a decrypted copy."""
    if not is_encrypted(ds):
        return ds
    copied = copy.deepcopy(ds)
    decrypt_dataset(copied, key)
    return copied
