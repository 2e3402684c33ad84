"""The statistics image-cipher papers report, with reference values for the actual bit depth and size.

Everything works on unsigned pixel words shaped (frames, rows, columns) with ``bits`` = 8 or 16
(the cipher domain: the whole stored word). Pass/fail thresholds are hypothesis tests at
alpha = 0.05 against an ideal random image of the same size and depth, except where a fixed
bound is the convention (|correlation| <= 0.01 over all pairs):

- chi-square of the histogram against the flat one: below the chi-square critical value with
  2**bits - 1 degrees of freedom (293.25 for 8 bits, 66131.6 for 16 bits);
- entropy: at least the ideal minus 1.645 standard deviations (ideal: expected entropy of N
  uniform random words, 15.808 for 512 x 512 x 16 bits, not 16; sd: sqrt((K-1)/2) / (N ln 2));
- NPCR and UACI: Wu, Noonan and Agaian (2011), "NPCR and UACI randomness tests for image
  encryption", critical values from their formulas for F = 2**bits - 1 and the pixel count;
- avalanche (seed 004): changed bits, within 50 % +- 1.96 binomial standard deviations.

These are necessary properties of a good cipher, not evidence of security: a linear, trivially
breakable cipher can pass every one of them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageDraw
from scipy.special import chdtri, gammaln

from .pixelcipher import PixelCipher

ALPHA = 0.05
SEED_PAIRS = 2000  # seed 004's pixel pairs per direction
CORRELATION_BOUND = 0.01  # all adjacent pairs
DIRECTIONS = ("horizontal", "vertical", "diagonal")


def _z(p: float) -> float:
    return NormalDist().inv_cdf(p)


def histogram(words: np.ndarray, bits: int) -> np.ndarray:
    """Count of each of the 2**bits word values."""
    return np.bincount(words.ravel(), minlength=1 << bits)


def entropy(words: np.ndarray, bits: int) -> float:
    """Shannon entropy in bits per pixel."""
    p = histogram(words, bits) / words.size
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def ideal_entropy(pixels: int, bits: int) -> float:
    """Expected entropy of ``pixels`` independent uniform words (binomial bin counts)."""
    bins = 1 << bits
    mean = pixels / bins
    k = np.arange(1, min(pixels, int(mean + 12 * math.sqrt(mean) + 12)) + 1)
    log_pmf = (gammaln(pixels + 1) - gammaln(k + 1) - gammaln(pixels - k + 1)
               + k * math.log(1 / bins) + (pixels - k) * math.log1p(-1 / bins))
    expected_c_log_c = float((np.exp(log_pmf) * k * np.log2(k)).sum())
    return math.log2(pixels) - bins * expected_c_log_c / pixels


def entropy_bound(pixels: int, bits: int, alpha: float = ALPHA) -> float:
    """Lowest entropy a uniform random image passes at ``alpha`` (one-sided)."""
    sd = math.sqrt(((1 << bits) - 1) / 2) / (pixels * math.log(2))
    return ideal_entropy(pixels, bits) - _z(1 - alpha) * sd


def chi_square(words: np.ndarray, bits: int) -> float:
    """Chi-square statistic of the histogram against the flat one."""
    expected = words.size / (1 << bits)
    return float(((histogram(words, bits) - expected) ** 2).sum() / expected)


def chi_square_critical(bits: int, alpha: float = ALPHA) -> float:
    return float(chdtri((1 << bits) - 1, alpha))


def _pairs(words: np.ndarray, direction: str) -> tuple[np.ndarray, np.ndarray]:
    """Every adjacent pair in ``direction`` within each frame, as two flat arrays."""
    if direction == "horizontal":
        a, b = words[:, :, :-1], words[:, :, 1:]
    elif direction == "vertical":
        a, b = words[:, :-1, :], words[:, 1:, :]
    elif direction == "diagonal":
        a, b = words[:, :-1, :-1], words[:, 1:, 1:]
    else:
        raise ValueError(f"unknown direction {direction!r}")
    return a.ravel(), b.ravel()


def correlation(words: np.ndarray, direction: str, sample: int | None = None,
                rng: np.random.Generator | None = None) -> float:
    """Pearson correlation of adjacent pixels; all pairs, or ``sample`` random pairs (the seed's)."""
    a, b = _pairs(words, direction)
    if sample is not None and sample < a.size:
        chosen = (rng or np.random.default_rng(0)).choice(a.size, sample, replace=False)
        a, b = a[chosen], b[chosen]
    a = a.astype(np.float64) - a.mean()
    b = b.astype(np.float64) - b.mean()
    denominator = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b) / denominator if denominator else float("nan")


def correlation_bound(pairs: int, alpha: float = ALPHA) -> float:
    """|r| above which zero correlation is rejected at ``alpha`` (two-sided) for ``pairs`` pairs."""
    return _z(1 - alpha / 2) / math.sqrt(pairs)


def npcr_uaci(first: np.ndarray, second: np.ndarray, bits: int) -> tuple[float, float]:
    """NPCR and UACI in percent between two cipher images."""
    difference = np.abs(first.astype(np.int64) - second.astype(np.int64))
    return 100.0 * float(np.count_nonzero(difference)) / difference.size, \
        100.0 * float(difference.mean()) / ((1 << bits) - 1)


@dataclass(frozen=True)
class WuCritical:
    """Wu et al.'s critical values (percent) for one bit depth, pixel count and alpha."""

    npcr: float  # NPCR must exceed this
    uaci_low: float  # UACI must lie in [uaci_low, uaci_high]
    uaci_high: float
    npcr_ideal: float
    uaci_ideal: float


def wu_critical(bits: int, pixels: int, alpha: float = ALPHA) -> WuCritical:
    """Critical NPCR and UACI of Wu, Noonan and Agaian (2011), F = 2**bits - 1, N = pixels."""
    f = (1 << bits) - 1
    npcr_ideal = f / (f + 1)
    npcr = (f - _z(1 - alpha) * math.sqrt(f / pixels)) / (f + 1)
    uaci_ideal = (f + 2) / (3 * f + 3)
    uaci_sd = math.sqrt((f + 2) * (f * f + 2 * f + 3) / (18 * (f + 1) ** 2 * pixels * f))
    half = _z(1 - alpha / 2) * uaci_sd
    return WuCritical(100 * npcr, 100 * (uaci_ideal - half), 100 * (uaci_ideal + half),
                      100 * npcr_ideal, 100 * uaci_ideal)


def changed_bits(first: np.ndarray, second: np.ndarray, bits: int) -> float:
    """Seed 004's avalanche effect: percentage of bits that differ."""
    differing = np.bitwise_xor(first, second).view(np.uint8)
    return 100.0 * float(np.unpackbits(differing).sum()) / (first.size * bits)


def avalanche_bound(bit_count: int, alpha: float = ALPHA) -> float:
    """Half-width (percent) around 50 % that a random bit difference stays within at ``alpha``."""
    return _z(1 - alpha / 2) * 50.0 / math.sqrt(bit_count)


@dataclass(frozen=True)
class Row:
    """One line of the report: a test, its criterion, the plain image's value and each cipher's."""

    test: str
    criterion: str
    plain: float | None
    results: dict[str, tuple[float, bool]]  # cipher name -> (value, passed)


def flip_bit(data: bytes) -> bytes:
    """``data`` with its lowest bit flipped (the one-bit key change)."""
    return bytes([data[0] ^ 1]) + data[1:]


def one_pixel_changed(words: np.ndarray, bits: int) -> np.ndarray:
    """A copy with the centre pixel increased by one (modulo 2**bits)."""
    changed = words.copy()
    frame, row, column = (n // 2 for n in words.shape)
    changed[frame, row, column] = (int(changed[frame, row, column]) + 1) % (1 << bits)
    return changed


def battery(plain: np.ndarray, ciphers: dict[str, Callable[[bytes], PixelCipher]],
            key: bytes, nonces: dict[str, bytes]) -> tuple[list[Row], dict[str, np.ndarray]]:
    """Every test on ``plain`` (unsigned words, (frames, rows, columns)) for each cipher.

    ``ciphers`` maps a name to a factory taking the 32-byte key; ``nonces`` gives each cipher
    its fixed nonce (the sensitivity tests need one). Returns the rows and each cipher image.
    """
    bits = plain.dtype.itemsize * 8
    images: dict[str, np.ndarray] = {}
    measured: dict[str, dict[str, float]] = {}
    for name, make in ciphers.items():
        nonce = nonces[name]
        cipher = make(key).encrypt(plain, nonce, b"")[0]
        images[name] = cipher
        measured[name] = _single(cipher, bits) | _sensitivity(plain, cipher, make, key, nonce, bits)
    return _rows(plain, bits, measured), images


def _single(words: np.ndarray, bits: int) -> dict[str, float]:
    """The tests on one image (plain or cipher)."""
    values = {"chi-square": chi_square(words, bits), "entropy": entropy(words, bits)}
    for direction in DIRECTIONS:
        values[f"correlation {direction}"] = correlation(words, direction)
        values[f"correlation {direction}, {SEED_PAIRS} pairs"] = correlation(
            words, direction, SEED_PAIRS, np.random.default_rng(4))
    return values


def _sensitivity(plain: np.ndarray, cipher: np.ndarray, make: Callable[[bytes], PixelCipher],
                 key: bytes, nonce: bytes, bits: int) -> dict[str, float]:
    """Plaintext, key and nonce sensitivity: NPCR/UACI and changed bits between two cipher images."""
    other_plain = make(key).encrypt(one_pixel_changed(plain, bits), nonce, b"")[0]
    other_key = make(flip_bit(key)).encrypt(plain, nonce, b"")[0]
    other_nonce = make(key).encrypt(plain, flip_bit(nonce), b"")[0]
    npcr, uaci = npcr_uaci(cipher, other_plain, bits)
    return {
        "NPCR, one pixel changed": npcr,
        "UACI, one pixel changed": uaci,
        "avalanche, one pixel changed": changed_bits(cipher, other_plain, bits),
        "key sensitivity (changed pixels)": npcr_uaci(cipher, other_key, bits)[0],
        "avalanche, one key bit flipped": changed_bits(cipher, other_key, bits),
        "nonce sensitivity (changed pixels)": npcr_uaci(cipher, other_nonce, bits)[0],
    }


def _rows(plain: np.ndarray, bits: int, measured: dict[str, dict[str, float]]) -> list[Row]:
    pixels = plain.size
    wu = wu_critical(bits, pixels)
    chi = chi_square_critical(bits)
    low_entropy = entropy_bound(pixels, bits)
    bit_half = avalanche_bound(pixels * bits)
    plain_values = _single(plain, bits)
    tests: list[tuple[str, str, Callable[[float], bool]]] = [
        ("chi-square", f"< {chi:.2f} (alpha 0.05, {(1 << bits) - 1} dof)", lambda v: v < chi),
        ("entropy", f">= {low_entropy:.4f} (ideal {ideal_entropy(pixels, bits):.4f})", lambda v: v >= low_entropy),
    ]
    for direction in DIRECTIONS:
        tests.append((f"correlation {direction}", f"|r| <= {CORRELATION_BOUND} (all pairs)",
                      lambda v: abs(v) <= CORRELATION_BOUND))
    seed_bound = correlation_bound(SEED_PAIRS)
    for direction in DIRECTIONS:
        tests.append((f"correlation {direction}, {SEED_PAIRS} pairs", f"|r| <= {seed_bound:.4f} (alpha 0.05)",
                      lambda v: abs(v) <= seed_bound))
    npcr_test = (f"> {wu.npcr:.4f} % (Wu, alpha 0.05)", lambda v: v > wu.npcr)
    avalanche = (f"50 +- {bit_half:.3f} %", lambda v: abs(v - 50.0) <= bit_half)
    tests += [
        ("NPCR, one pixel changed", *npcr_test),
        ("UACI, one pixel changed", f"{wu.uaci_low:.4f} - {wu.uaci_high:.4f} % (Wu, alpha 0.05)",
         lambda v: wu.uaci_low <= v <= wu.uaci_high),
        ("avalanche, one pixel changed", *avalanche),
        ("key sensitivity (changed pixels)", *npcr_test),
        ("avalanche, one key bit flipped", *avalanche),
        ("nonce sensitivity (changed pixels)", *npcr_test),
    ]
    return [
        Row(test, criterion, plain_values.get(test),
            {name: (values[test], bool(passes(values[test]))) for name, values in measured.items()})
        for test, criterion, passes in tests
    ]


def histogram_png(path: Path | BinaryIO, panels: dict[str, np.ndarray], bits: int, bins: int = 256) -> None:
    """One histogram panel per image (``bins`` display bins over the 2**bits word values)."""
    width, height, margin = 512, 160, 18
    image = Image.new("L", (width, len(panels) * (height + margin)), 255)
    draw = ImageDraw.Draw(image)
    for index, (title, words) in enumerate(panels.items()):
        counts = histogram(words, bits).reshape(bins, -1).sum(axis=1)
        top = index * (height + margin)
        draw.text((4, top + 2), f"{title} ({bins} bins over 0..{(1 << bits) - 1})", fill=0)
        scale = (height - 4) / max(int(counts.max()), 1)
        bar = width / bins
        for b, count in enumerate(counts):
            x0 = int(b * bar)
            draw.rectangle([x0, top + margin + height - 4 - int(count * scale),
                            max(x0, int((b + 1) * bar) - 1), top + margin + height - 4], fill=0)
    image.save(path, format="PNG")
