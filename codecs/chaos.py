"""Seed 004's chaotic image cipher: a vectorized, keyed and authenticated research reproduction.

Seed 004 (Anithadevi et al.) encrypts a medical image in three steps, keyed by a schedule
built from a Philox pseudo-random generator and SHA-512: chaotic-hash scrambling of the pixel
positions, Henon-map scrambling of the pixel bits, and logistic-map diffusion (XOR with a
logistic keystream). How each part maps here, and where this module deliberately differs:

============================  ================================================================
seed 004                      here
============================  ================================================================
key from birth date and       HKDF-SHA256 of the node's random 32-byte pixel-cipher key, salted
Aadhaar number                with a random 16-byte per-image nonce stored in clear: a chaos
                              key and an HMAC key per image
SHA-512 of the plain image    not used: decryption would need the hash, and a transmitted hash
fed into the cipher           confirms guesses of the image; the nonce gives the per-image
                              variation instead
PPG = Philox(key)             64 bytes of Philox4x64-10 output, Philox keyed by the chaos key
SM = Joint(SHA512(PPG),       SM = SHA-512(PPG) XOR SHA-512(chaos key) (the seed does not
SHA512(Key))                  define "Joint"); SM keys a second Philox stream that sets every
                              chaotic initial condition, the S-boxes and the chaining values
chaotic-hash scrambling       positions permuted in the order of a logistic-map orbit (sort of
                              the orbit, ties broken by index so the order is total)
Henon-map bit scrambling      each pixel word rotated by a Henon-orbit-chosen number of bits
                              (the seed does not say which bit permutation it applies)
logistic diffusion (XOR)      XOR with a logistic keystream (the lowest bits of each orbit
                              value's IEEE-754 pattern), then a modular prefix sum and a keyed
                              S-box, forward and then backward; two rounds. One changed pixel
                              changes every cipher pixel even with a fixed nonce.
no integrity                  encrypt-then-MAC: HMAC-SHA256 over nonce, shape, dtype, the
                              caller's attributes and the cipher words
per-pixel Python loops        ``lanes`` parallel chaotic orbits stepped together by numpy;
                              prefix sums with np.cumsum; table look-ups for the S-boxes
============================  ================================================================

Words are the whole stored word (uint8 or uint16), so the cipher is a bijection on all bit
patterns; decryption is exact. The chaotic orbits use only IEEE-754 multiply, add and subtract,
one numpy operation at a time, which are correctly rounded everywhere, and integers are drawn
from Philox's raw output only (numpy's Generator methods may change between versions): the same
key and nonce give the same schedule on any platform and numpy version.

What the statistics of this cipher show: no gross flaw (flat histogram, no adjacent-pixel
correlation, full diffusion of one-pixel and one-key-bit changes). They do not show security:
a weak cipher can pass all of them, the key sensitivity measured here is that of HKDF, and the
chaotic maps add no proven strength over the Philox stream that seeds them. Use AES-256-GCM
(codecs/pixelcipher.py) unless the seed's construction itself is under study.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from stegonode.errors import PixelIntegrityError

from .pixelcipher import TAMPERED, bound_data, check_words, derive, little_endian
from .registry import CIPHERS

STEPS = 256  # iterations per chaotic orbit: lanes = values / STEPS (fewer Python-level steps)
BURN_IN = 64  # iterations discarded per orbit before its values are used
LOGISTIC_MU = (3.99, 4.0)  # logistic parameter range: chaotic, and x stays inside (0, 1)
HENON_A, HENON_B = 1.4, 0.3  # the classical chaotic Henon parameters
# Henon initial conditions: a box inside Henon's trapping quadrilateral, so no orbit escapes.
HENON_X0, HENON_Y0 = 0.5, 0.1
ROUNDS = 2  # forward + backward diffusion passes, twice: a collision needs two 1/2^bits events
KEY_BITS = 62  # sort keys: bit patterns of doubles in (0, 1) are below 2**62, in value order


@dataclass(frozen=True)
class _Schedule:
    """Everything the key and nonce determine, for ``n`` words of ``bits`` bits."""

    order: np.ndarray  # position permutation: scrambled[i] = plain[order[i]]
    rotation: np.ndarray  # left rotation of each scrambled word, 0..bits-1 (uint32)
    keystream: np.ndarray  # (2 * ROUNDS, n) words XORed before each prefix sum
    chaining: tuple[int, ...]  # 2 * ROUNDS initial values of the prefix sums
    sboxes: tuple[np.ndarray, np.ndarray]  # forward and backward S-boxes


@CIPHERS.register
class ChaosCipher:
    """Seed 004's cipher: chaotic-hash scrambling, Henon bit scrambling, logistic diffusion."""

    name: ClassVar[str] = "chaos"
    version: ClassVar[int] = 1
    nonce_size: ClassVar[int] = 16
    tag_size: ClassVar[int] = 32  # HMAC-SHA256

    def __init__(self, key: bytes) -> None:
        self._key = key

    def encrypt(self, words: np.ndarray, nonce: bytes, associated_data: bytes) -> tuple[np.ndarray, bytes]:
        check_words(words, nonce, self.nonce_size)
        chaos_key, mac_key = self._subkeys(nonce)
        bits = words.dtype.itemsize * 8
        schedule = _schedule(chaos_key, words.size, bits)
        x = _rotate(np.take(words.ravel(), schedule.order), schedule.rotation, bits)
        for r in range(ROUNDS):
            x = _diffuse(x, schedule.keystream[2 * r], schedule.chaining[2 * r], schedule.sboxes[0])
            x = _diffuse(x[::-1], schedule.keystream[2 * r + 1], schedule.chaining[2 * r + 1], schedule.sboxes[1])[::-1]
        cipher = x.reshape(words.shape)
        return cipher, self._mac(mac_key, nonce, cipher, associated_data)

    def decrypt(self, words: np.ndarray, nonce: bytes, associated_data: bytes, tag: bytes) -> np.ndarray:
        check_words(words, nonce, self.nonce_size)
        chaos_key, mac_key = self._subkeys(nonce)
        if not hmac.compare_digest(self._mac(mac_key, nonce, words, associated_data), tag):
            raise PixelIntegrityError(TAMPERED)
        bits = words.dtype.itemsize * 8
        schedule = _schedule(chaos_key, words.size, bits)
        inverses = [_inverse(sbox) for sbox in schedule.sboxes]
        x = words.ravel()
        for r in reversed(range(ROUNDS)):
            x = _undiffuse(x[::-1], schedule.keystream[2 * r + 1], schedule.chaining[2 * r + 1], inverses[1])[::-1]
            x = _undiffuse(x, schedule.keystream[2 * r], schedule.chaining[2 * r], inverses[0])
        plain = np.empty_like(x)
        plain[schedule.order] = _rotate(x, (bits - schedule.rotation) % bits, bits)
        return plain.reshape(words.shape)

    def _subkeys(self, nonce: bytes) -> tuple[bytes, bytes]:
        okm = derive(self._key, b"stegonode pixel cipher chaos v1", 64, salt=nonce)
        return okm[:32], okm[32:]

    def _mac(self, mac_key: bytes, nonce: bytes, cipher: np.ndarray, associated_data: bytes) -> bytes:
        bound = bound_data(self.name, self.version, cipher, associated_data)
        message = nonce + len(bound).to_bytes(8, "little") + bound + little_endian(cipher)
        return hmac.new(mac_key, message, hashlib.sha256).digest()


def _schedule(chaos_key: bytes, n: int, bits: int) -> _Schedule:
    """Seed 004's key processing (Philox, SHA-512, "joint") and the chaotic sequences it keys."""
    ppg = np.random.Philox(key=_int(chaos_key[:16]), counter=_int(chaos_key[16:])).random_raw(8)
    sm = bytes(a ^ b for a, b in zip(hashlib.sha512(ppg.astype("<u8").tobytes()).digest(),
                                      hashlib.sha512(chaos_key).digest(), strict=True))
    philox = np.random.Philox(key=_int(sm[:16]), counter=_int(sm[16:48]))
    mask = (1 << bits) - 1
    chaining = tuple(_int(sm[48 + 4 * i: 52 + 4 * i]) & mask for i in range(2 * ROUNDS))
    logistic = _logistic(philox, (1 + 2 * ROUNDS) * n)
    henon = _henon(philox, n)
    dtype = np.uint8 if bits == 8 else np.uint16
    return _Schedule(
        order=_sorting_order(_bit_patterns(logistic[:n])),
        rotation=(_bit_patterns(henon) & np.uint64(bits - 1)).astype(np.uint32),
        keystream=_bit_patterns(logistic[n:]).astype(dtype).reshape(2 * ROUNDS, n),
        chaining=chaining,
        sboxes=(_sbox(philox, bits), _sbox(philox, bits)),
    )


def _int(data: bytes) -> int:
    return int.from_bytes(data, "little")


def _uniform(philox: np.random.Philox, count: int) -> np.ndarray:
    """Doubles in [0, 1) from Philox's raw 64-bit output (53 bits each)."""
    return (philox.random_raw(count) >> np.uint64(11)) * 2.0**-53


def _lanes(count: int) -> tuple[int, int]:
    """(lanes, steps) for ``count`` values from orbits of about STEPS iterations each."""
    lanes = -(-count // STEPS)
    return lanes, -(-count // lanes)


def _logistic(philox: np.random.Philox, count: int) -> np.ndarray:
    """``count`` values of parallel logistic-map orbits x <- mu x (1 - x), keyed initial x, mu."""
    lanes, steps = _lanes(count)
    x = 0.05 + 0.9 * _uniform(philox, lanes)
    mu = LOGISTIC_MU[0] + (LOGISTIC_MU[1] - LOGISTIC_MU[0]) * _uniform(philox, lanes)
    out = np.empty((steps, lanes))
    for step in range(-BURN_IN, steps):
        x = mu * x * (1.0 - x)
        if step >= 0:
            out[step] = x
    return out.ravel()[:count]


def _henon(philox: np.random.Philox, count: int) -> np.ndarray:
    """``count`` x values of parallel Henon orbits (x, y) <- (1 - a x^2 + y, b x)."""
    lanes, steps = _lanes(count)
    x = HENON_X0 * (2.0 * _uniform(philox, lanes) - 1.0)
    y = HENON_Y0 * (2.0 * _uniform(philox, lanes) - 1.0)
    out = np.empty((steps, lanes))
    for step in range(-BURN_IN, steps):
        x, y = 1.0 - HENON_A * x * x + y, HENON_B * x
        if step >= 0:
            out[step] = x
    return out.ravel()[:count]


def _bit_patterns(values: np.ndarray) -> np.ndarray:
    """The IEEE-754 bit patterns of chaotic doubles (uint64): rounding noise in the low bits.

    Casting to a narrower unsigned type keeps the lowest mantissa bits (the keystream words).
    """
    return values.view(np.uint64)


def _sorting_order(keys: np.ndarray) -> np.ndarray:
    """The permutation that sorts ``keys`` (< 2**KEY_BITS), ties broken by index: a total order."""
    index_bits = max(1, (keys.size - 1).bit_length())
    shift = np.uint64(index_bits)
    packed = ((keys << np.uint64(64 - KEY_BITS)) >> shift << shift) | np.arange(keys.size, dtype=np.uint64)
    return (np.sort(packed) & np.uint64((1 << index_bits) - 1)).astype(np.intp)


def _sbox(philox: np.random.Philox, bits: int) -> np.ndarray:
    """A keyed bijection of the 2**bits word values (Philox order, ties broken by value)."""
    dtype = np.uint8 if bits == 8 else np.uint16
    return _sorting_order(philox.random_raw(1 << bits) >> np.uint64(64 - KEY_BITS)).astype(dtype)


def _inverse(sbox: np.ndarray) -> np.ndarray:
    inverse = np.empty_like(sbox)
    inverse[sbox] = np.arange(sbox.size, dtype=sbox.dtype)
    return inverse


def _rotate(words: np.ndarray, left: np.ndarray, bits: int) -> np.ndarray:
    """Rotate each word left by ``left`` bits (0..bits-1) within ``bits`` bits."""
    wide = words.astype(np.uint32)
    rotated = (wide << left) | (wide >> (bits - left))
    return (rotated & np.uint32((1 << bits) - 1)).astype(words.dtype)


def _diffuse(words: np.ndarray, keystream: np.ndarray, chaining: int, sbox: np.ndarray) -> np.ndarray:
    """One diffusion pass: y[i] = S[(c + sum_{t<=i} (x[t] ^ k[t])) mod 2**bits]."""
    total = np.cumsum(words ^ keystream, dtype=words.dtype)  # wraps modulo 2**bits
    total += words.dtype.type(chaining)
    return np.take(sbox, total)


def _undiffuse(words: np.ndarray, keystream: np.ndarray, chaining: int, inverse: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_diffuse`: differences of consecutive prefix sums, then the XOR."""
    total = np.take(inverse, words)
    return np.diff(total, prepend=total.dtype.type(chaining)) ^ keystream
