"""The pixel ciphers as algorithms: exact inversion, authentication, and the issue's statistics.

NPCR, UACI and chi-square criteria are tests at alpha = 0.05 against a random image: a perfect
cipher fails each with probability 0.05 for any one key and nonce. So the criteria are measured
for NONCES fixed nonces under one fixed key (key bytes 0..31) and must hold for at least
MIN_PASSES of them (a perfect cipher has fewer with probability 1.2 %); the criteria with wide
margins (entropy, correlation, key sensitivity) must hold for every nonce. Key and nonces are
fixed so every run measures the same cipher images.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pydicom
import pytest

from stegonode.codecs import cipher_stats as cs
from stegonode.codecs.chaos import ChaosCipher
from stegonode.codecs.pixelcipher import AesGcmCipher
from stegonode.dicom.pixels import read_pixels
from stegonode.errors import PixelIntegrityError
from stegonode.handlers.encrypt import pixel_words

from images import image_path

KEY = bytes(range(32))
NONCES = 10
MIN_PASSES = 8
CIPHERS = {"chaos": ChaosCipher, "aes-gcm": AesGcmCipher}


def nonce(cipher: type) -> bytes:
    return bytes(cipher.nonce_size)


def words_of(name: str) -> np.ndarray:
    """A real image's stored values as unsigned words (two's complement for signed pixels)."""
    return pixel_words(read_pixels(pydicom.dcmread(image_path(name))))


def synthetic_16bit() -> np.ndarray:
    """512 x 512 smooth 16-bit image: a bright disc on a gradient, mild noise (MR-like)."""
    y, x = np.mgrid[0:512, 0:512].astype(np.float64)
    disc = 30000.0 * np.exp(-((x - 256) ** 2 + (y - 240) ** 2) / (2 * 90.0**2))
    noise = np.random.default_rng(5).normal(0, 40, (512, 512))
    return np.clip(2000 + 20 * x + disc + noise, 0, 65535).astype(np.uint16)[None]


@pytest.mark.parametrize("cipher", CIPHERS.values(), ids=CIPHERS)
@pytest.mark.parametrize("shape, dtype", [
    ((1, 512, 512), np.uint16), ((2, 37, 53), np.uint16), ((1, 1, 1), np.uint16),
    ((1, 300, 211), np.uint8), ((3, 1, 5), np.uint8),
])
def test_decryption_is_exact_for_any_size_and_depth(cipher, shape, dtype):
    words = np.random.default_rng(1).integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)
    encrypted, tag = cipher(KEY).encrypt(words, nonce(cipher), b"attributes")
    assert encrypted.shape == words.shape and encrypted.dtype == words.dtype
    if words.size > 16:
        assert np.count_nonzero(encrypted != words) > 0.9 * words.size
    np.testing.assert_array_equal(cipher(KEY).decrypt(encrypted, nonce(cipher), b"attributes", tag), words)


def test_known_answers_keep_old_files_decryptable():
    """Fixed outputs: a change of construction (or of numpy's Philox) would strand stored files."""
    words = (np.arange(3 * 5 * 7, dtype=np.uint16) * 601).reshape(3, 5, 7)
    expected = {
        "chaos": "8334be15b27cce031c4a59a0bd1b3cbf27b4036732ebb76703e0fa3231dd5855",
        "aes-gcm": "24834f6d84fba5bc5028b0e3ca3b63b7cc9a8775076cdf14f506b3f950d3e385",
    }
    for name, cipher in CIPHERS.items():
        encrypted, tag = cipher(KEY).encrypt(words, bytes(range(cipher.nonce_size)), b"kat")
        assert hashlib.sha256(encrypted.astype("<u2").tobytes() + tag).hexdigest() == expected[name], name
    bytes8 = (np.arange(64, dtype=np.uint8) * 37).reshape(1, 8, 8)
    encrypted, tag = ChaosCipher(KEY).encrypt(bytes8, bytes(range(16)), b"kat")
    assert hashlib.sha256(encrypted.tobytes() + tag).hexdigest() == (
        "6f82584794db59cf95cb5115377119b57c7f178a8c1f806903a3905512f52a7c")


@pytest.mark.parametrize("cipher", CIPHERS.values(), ids=CIPHERS)
def test_wrong_key_altered_pixel_nonce_or_attributes_are_detected(cipher):
    words = synthetic_16bit()
    encrypted, tag = cipher(KEY).encrypt(words, nonce(cipher), b"512\x00512")
    flipped = encrypted.copy()
    flipped[0, 100, 100] ^= 1 << 7
    attempts = [
        (cs.flip_bit(KEY), encrypted, nonce(cipher), b"512\x00512"),
        (KEY, flipped, nonce(cipher), b"512\x00512"),
        (KEY, encrypted, cs.flip_bit(nonce(cipher)), b"512\x00512"),
        (KEY, encrypted, nonce(cipher), b"512\x00513"),
        (KEY, encrypted.reshape(1, 256, 1024), nonce(cipher), b"512\x00512"),
    ]
    for key, pixels, nonce_, associated in attempts:
        with pytest.raises(PixelIntegrityError, match="failed authentication"):
            cipher(key).decrypt(pixels, nonce_, associated, tag)


def test_nonce_is_the_only_per_image_variation():
    words = synthetic_16bit()
    first = ChaosCipher(KEY).encrypt(words, bytes(16), b"")
    again = ChaosCipher(KEY).encrypt(words, bytes(16), b"")
    other = ChaosCipher(KEY).encrypt(words, cs.flip_bit(bytes(16)), b"")
    np.testing.assert_array_equal(first[0], again[0])
    assert first[1] == again[1]
    assert cs.npcr_uaci(first[0], other[0], 16)[0] > 99.99


@pytest.mark.parametrize("position", [(0, 0, 0), (0, 255, 300), (0, 511, 511)])
def test_one_changed_pixel_anywhere_changes_the_whole_chaos_image(position):
    """Diffusion runs both ways: the first, a middle and the last pixel each change everything."""
    words = synthetic_16bit()
    changed = words.copy()
    changed[position] ^= 1
    first = ChaosCipher(KEY).encrypt(words, bytes(16), b"")[0]
    second = ChaosCipher(KEY).encrypt(changed, bytes(16), b"")[0]
    assert cs.npcr_uaci(first, second, 16)[0] > 99.99


def test_wu_critical_values_match_the_published_512_by_512_ones():
    sixteen, eight = cs.wu_critical(16, 512 * 512), cs.wu_critical(8, 512 * 512)
    assert round(sixteen.npcr, 4) == 99.9972
    assert (round(sixteen.uaci_low, 4), round(sixteen.uaci_high, 4)) == (33.2436, 33.4241)
    assert round(eight.npcr, 4) == 99.5893
    assert (round(eight.uaci_low, 4), round(eight.uaci_high, 4)) == (33.3730, 33.5541)
    assert (round(sixteen.npcr_ideal, 4), round(sixteen.uaci_ideal, 4)) == (99.9985, 33.3338)
    assert round(cs.chi_square_critical(8), 2) == 293.25
    assert round(cs.chi_square_critical(16), 1) == 66131.6
    assert round(cs.ideal_entropy(512 * 512, 16), 3) == 15.808


def test_statistics_on_known_inputs():
    ramp = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    assert cs.entropy(ramp, 8) == 8.0 and cs.chi_square(ramp, 8) == 0.0
    assert cs.correlation(ramp, "horizontal") == pytest.approx(1.0)
    assert cs.npcr_uaci(ramp, ramp, 8) == (0.0, 0.0)
    assert cs.npcr_uaci(np.zeros((1, 2, 2), np.uint8), np.full((1, 2, 2), 255, np.uint8), 8) == (100.0, 100.0)
    assert cs.changed_bits(np.zeros((1, 1, 2), np.uint16), np.array([[[0xFFFF, 0]]], np.uint16), 16) == 50.0


@dataclass
class Measured:
    """Seed-style figures of one cipher on one image, one entry per nonce."""

    npcr: list[float] = field(default_factory=list)  # one pixel changed, same nonce
    uaci: list[float] = field(default_factory=list)
    key_changed: list[float] = field(default_factory=list)  # pixels changed by one flipped key bit
    entropy: list[float] = field(default_factory=list)
    chi_square: list[float] = field(default_factory=list)
    correlation: list[float] = field(default_factory=list)  # largest |r| of the three directions


def measure(cipher: type, words: np.ndarray, nonces: int = NONCES) -> Measured:
    bits = words.dtype.itemsize * 8
    changed = cs.one_pixel_changed(words, bits)
    measured = Measured()
    for index in range(nonces):
        nonce_ = index.to_bytes(cipher.nonce_size, "little")
        encrypted = cipher(KEY).encrypt(words, nonce_, b"")[0]
        npcr, uaci = cs.npcr_uaci(encrypted, cipher(KEY).encrypt(changed, nonce_, b"")[0], bits)
        other_key = cipher(cs.flip_bit(KEY)).encrypt(words, nonce_, b"")[0]
        measured.npcr.append(npcr)
        measured.uaci.append(uaci)
        measured.key_changed.append(cs.npcr_uaci(encrypted, other_key, bits)[0])
        measured.entropy.append(cs.entropy(encrypted, bits))
        measured.chi_square.append(cs.chi_square(encrypted, bits))
        measured.correlation.append(max(abs(cs.correlation(encrypted, d)) for d in cs.DIRECTIONS))
    return measured


def passes(values: list[float], criterion) -> int:
    return sum(bool(criterion(v)) for v in values)


@pytest.mark.parametrize("source", ["693_UNCR.dcm", "synthetic"])
def test_16bit_criteria_of_the_issue(source):
    words = synthetic_16bit() if source == "synthetic" else words_of(source)
    assert words.shape == (1, 512, 512) and words.dtype == np.uint16
    for direction in cs.DIRECTIONS:
        assert abs(cs.correlation(words, direction)) > 0.5, direction  # the plain image is correlated
    chaos = measure(ChaosCipher, words)
    assert passes(chaos.npcr, lambda v: v > 99.9972) >= MIN_PASSES, chaos.npcr
    assert passes(chaos.uaci, lambda v: 33.2436 <= v <= 33.4241) >= MIN_PASSES, chaos.uaci
    assert min(chaos.entropy) >= 15.80 and max(chaos.correlation) <= 0.01
    assert min(chaos.key_changed) >= 99.99
    aes = measure(AesGcmCipher, words, nonces=1)
    assert aes.entropy[0] >= 15.80 and aes.correlation[0] <= 0.01 and aes.key_changed[0] >= 99.99
    assert aes.npcr[0] == pytest.approx(100 / words.size)  # stream mode: only the changed pixel differs


def test_8bit_criteria_of_the_issue():
    words = words_of("image_dfl.dcm")  # real 512 x 512 8-bit image
    assert words.shape == (1, 512, 512) and words.dtype == np.uint8
    assert cs.chi_square(words, 8) > 293.25 * 100  # the plain image is far from flat
    chaos = measure(ChaosCipher, words)
    assert passes(chaos.npcr, lambda v: v > 99.5893) >= MIN_PASSES, chaos.npcr
    assert passes(chaos.uaci, lambda v: 33.3730 <= v <= 33.5541) >= MIN_PASSES, chaos.uaci
    assert passes(chaos.chi_square, lambda v: v < 293.25) >= MIN_PASSES, chaos.chi_square
    assert min(chaos.entropy) >= 7.999 and max(chaos.correlation) <= 0.01
    assert passes(chaos.key_changed, lambda v: v > 99.5893) >= MIN_PASSES, chaos.key_changed
    aes = measure(AesGcmCipher, words, nonces=1)
    assert aes.entropy[0] >= 7.999 and aes.correlation[0] <= 0.01


def test_battery_reports_every_test_for_both_ciphers():
    words = synthetic_16bit()
    rows, images = cs.battery(words, CIPHERS, KEY, {n: nonce(c) for n, c in CIPHERS.items()})
    np.testing.assert_array_equal(images["chaos"], ChaosCipher(KEY).encrypt(words, bytes(16), b"")[0])
    table = {row.test: row for row in rows}
    assert len(table) == 14 and all(set(row.results) == set(CIPHERS) for row in rows)
    wu = cs.wu_critical(16, words.size)
    for name, (value, passed) in table["NPCR, one pixel changed"].results.items():
        assert passed == (value > wu.npcr), name
    assert table["NPCR, one pixel changed"].results["chaos"][0] > 99.99
    assert table["NPCR, one pixel changed"].results["aes-gcm"] == (pytest.approx(100 / words.size), False)
    assert table["key sensitivity (changed pixels)"].results["aes-gcm"][0] > 99.99
    assert table["correlation horizontal"].plain > 0.9 and table["NPCR, one pixel changed"].plain is None
