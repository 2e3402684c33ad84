"""Seed paper 002's DCT interval embedding (Saidi et al., Eq. 2-9, Algorithms 1-2), for comparison.

This codec reproduces the paper as faithfully as its text allows, so that its behaviour can be
set beside our own robust codec (:mod:`.dct`). It is not meant for production use.

Paper steps and how they map here:

* Message (Eq. 2-3). The paper normalizes a QR *image* to [0, 1] and adjusts it to ``alpha`` /
  ``1 - alpha``. We receive the QR module bits directly: bit 1 -> ``1 - alpha``, bit 0 ->
  ``alpha`` (``alpha`` = 0.02 as in the paper). Every 16 consecutive values form one 4x4 block
  B_QR, one value per DCT coefficient (row-major in the block, DC included).
* Cover (Eq. 2). The paper min-max normalizes the image and de-normalizes the stego image to
  [0, 65535]. Min-max over the image is not reversible per pixel (it would change pixels
  outside the background), so we normalize with the stored range instead:
  ``x = (p - lo) / (hi - lo)`` with ``(lo, hi) = value_range``; de-normalization is the exact
  inverse, followed by rounding to integers and clipping to ``value_range``.
* Blocks. The image is tiled into 4x4 blocks from (0, 0); a block is used only if all 16
  pixels are usable. Blocks are taken frame by frame, raster order within a frame, and each is
  transformed with the orthonormal 2-D DCT (Eq. 4), so coefficients of a [0, 1] block lie in
  [-4, 4] (the DC term in [0, 4], the "interval [0, 4]" of the paper).
* Qun, Eq. 7, and IQun, Eq. 9. As printed, Eq. 7 is self-inconsistent: it sets
  ``B_SQ = k + (4/beta) * B_QR`` with an integer ``k`` (which would throw every coefficient to
  1 .. beta-1), and picks ``k`` by ``4k/beta < B_DCins < (4k+1)/beta`` (intervals that leave gaps
  and do not tile [0, 4]). We read it as the only version that is consistent with its own
  definitions ("beta is the number of intervals on [0, 4]", the offset ``(4/beta) * B_QR`` and
  the ``beta/4`` factor of Eq. 9): the magnitude axis is cut into intervals of width
  ``delta = 4/beta`` with lower edges ``4k/beta``; ``k = floor(|C| / delta)`` (clamped to
  ``0 .. beta-1``, so beta intervals cover [0, 4]); the coefficient is replaced by the lower
  edge plus the QR value scaled to the interval, keeping its sign (Eq. 9 works on ``|B_S|``)::

      B_SQ = sign(C) * (4/beta) * (k + B_QR)                        (Eq. 7, as read here)
      B_QR = |B_S| * beta/4 - floor(|B_S| * beta/4)                 (Eq. 9, as read here)

  i.e. the "k" printed in the formulas is the interval's lower edge ``4k/beta``, and the upper
  edge ``(4k+1)/beta`` is a typo for ``4(k+1)/beta``. Extraction thresholds the recovered
  B_QR at 1/2 (the paper hands the grey QR image to a QR reader, which binarizes it).
  The other reading (interval width ``1/beta``, offset ``B_QR / beta``) equals this one with
  ``beta`` replaced by ``4 * beta``, so it can be reproduced through the ``beta`` parameter.
* beta. Default 8, the value of the paper's Fig. 4 illustration (its tables use 10 to 1000).
  Each written coefficient moves by up to ``4/beta`` of the full stored range: at beta = 8 that
  is half the range, so the paper's parameters are far from imperceptible, and pixels clip at
  the range ends (dark backgrounds lose bits, and the length header with them). The two symbols
  sit ``alpha * 4/beta`` from the interval edges, so a coefficient error of that size (1 % of
  the range at beta = 8; 0.008 %, i.e. 0.33 stored units of a 12-bit image, at beta = 1000)
  carries it into the next interval and flips the bit: at large beta, integer rounding alone
  flips bits of 12-bit images. The scheme is exact only before rounding and clipping.

Our additions, which the paper leaves open:

* Length header. Extraction must know N, the number of message bits (the paper uses a fixed QR
  image size). The first usable block carries N as 16 bits, most significant first, in the same
  Eq. 7 scheme; message bits follow, 16 per block, in block order. A final partial block writes
  only the coefficients it needs. Blocks after the message are left untouched.
* Key. The paper has no key; ``key`` is accepted for the interface and ignored.
* Known weakness, kept on purpose: the layout is sequential, so a usable mask that differs by a
  single block at extraction shifts every later bit (the paper's Mask R-CNN mask is recomputed
  on the stego image: its NCC of 0.83-1 between masks means shifted data in practice).
* Normalization range. ``extract`` gets ``value_range`` (the stored range BitsStored and
  PixelRepresentation allow), as every codec does, and normalizes with exactly the range
  ``embed`` used; there is no guessing of the range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import numpy as np

from stegonode.errors import CapacityError, MessageNotFoundError

from .dct import dct_matrix
from .registry import CODECS
from .settings import Range, Settings
from .stego import CodecEntry

BLOCK = 4
BLOCK_BITS = BLOCK * BLOCK
HEADER_BITS = 16  # the length header fills exactly the first block


_D = dct_matrix(BLOCK)  # orthonormal, Eq. 4 with its alpha(u) factors


def _tiles(a: np.ndarray) -> np.ndarray:
    """(frames, block rows, block cols, 4, 4) view of the tiled part of ``a``."""
    f, r, c = a.shape
    br, bc = r // BLOCK, c // BLOCK
    return a[:, : br * BLOCK, : bc * BLOCK].reshape(f, br, BLOCK, bc, BLOCK).swapaxes(2, 3)


def _usable_blocks(usable: np.ndarray) -> np.ndarray:
    """Boolean (frames, block rows, block cols): blocks whose 16 pixels are all usable."""
    return np.asarray(_tiles(np.asarray(usable, dtype=bool)).all(axis=(-2, -1)))


def _forward(pixels: np.ndarray, blocks: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """DCT coefficients (n, 16) of the selected blocks after normalization to [0, 1] (Eq. 2, 4)."""
    x = (_tiles(pixels)[blocks].astype(np.float64) - lo) / (hi - lo)
    return (_D @ x @ _D.T).reshape(-1, BLOCK_BITS)


@dataclass
class PaperCodec:
    """Seed paper 002's interval embedding in 4x4 block DCT coefficients (see module docstring).

    beta: number of embedding intervals on the coefficient range [0, 4]; larger is weaker and
        less visible (paper: 8 in Fig. 4, 10-1000 in its tables).
    alpha: QR adjustment of Eq. 3; bits become ``alpha`` and ``1 - alpha`` inside an interval.
    """

    beta: int = 8
    alpha: float = 0.02
    name: str = "paper"

    def __post_init__(self) -> None:
        if int(self.beta) != self.beta or self.beta < 1:
            raise ValueError(f"paper codec: beta must be a positive integer, got {self.beta!r}")
        if not 0.0 <= self.alpha < 0.5:
            raise ValueError(f"paper codec: alpha must lie in [0, 0.5), got {self.alpha!r}")
        self.beta = int(self.beta)
        self.alpha = float(self.alpha)

    @property
    def _delta(self) -> float:
        """Interval width 4/beta in normalized coefficient units."""
        return 4.0 / self.beta

    def params(self) -> dict:
        return {"beta": self.beta, "alpha": self.alpha}

    def change_allowance(self) -> float:
        """A coefficient moves by up to 4/beta of the stored range (16 bits at most): this codec
        is for comparison with the paper; the safety guard's brightness rule is all but off."""
        return self._delta * 65535

    def fit(self, usable: np.ndarray, message_bits: int, key: bytes) -> PaperCodec:
        """The paper's codec has nothing to adapt."""
        return self

    def capacity(self, usable: np.ndarray) -> int:
        return max(0, BLOCK_BITS * int(_usable_blocks(usable).sum()) - HEADER_BITS)

    def embed(
        self,
        pixels: np.ndarray,
        usable: np.ndarray,
        message: np.ndarray,
        key: bytes,
        value_range: tuple[int, int],
    ) -> np.ndarray:
        """Return a copy of ``pixels`` with the length header and ``message`` hidden (Algorithm 1)."""
        del key  # the paper has no key
        bits = np.asarray(message, dtype=np.uint8).ravel()
        n = bits.size
        offered = self.capacity(usable)
        if n > offered or n >= 1 << HEADER_BITS:
            raise CapacityError(offered, n)
        header = (n >> np.arange(HEADER_BITS - 1, -1, -1)) & 1
        stream = np.concatenate([header.astype(np.uint8), bits])
        n_blocks = -(-stream.size // BLOCK_BITS)

        # The first n_blocks usable blocks, frame by frame, raster order within a frame.
        usable_blocks = _usable_blocks(usable)
        flat = np.zeros(usable_blocks.size, dtype=bool)
        flat[np.flatnonzero(usable_blocks)[:n_blocks]] = True
        chosen = flat.reshape(usable_blocks.shape)

        lo, hi = int(value_range[0]), int(value_range[1])
        coeffs = _forward(pixels, chosen, lo, hi).ravel()
        c = coeffs[: stream.size]
        target = np.where(stream == 1, 1.0 - self.alpha, self.alpha)  # Eq. 3
        k = np.clip(np.floor(np.abs(c) / self._delta), 0, self.beta - 1)
        coeffs[: stream.size] = np.where(c < 0, -1.0, 1.0) * self._delta * (k + target)  # Eq. 7
        x = _D.T @ coeffs.reshape(-1, BLOCK, BLOCK) @ _D  # Eq. 6
        stored = np.clip(np.rint(x * (hi - lo) + lo), lo, hi)

        out = pixels.copy()
        view = _tiles(out)  # splitting axes of a slice is always a view, so this writes to out
        view[chosen] = stored.astype(pixels.dtype)
        return out

    def extract(
        self, pixels: np.ndarray, usable: np.ndarray, key: bytes, value_range: tuple[int, int]
    ) -> np.ndarray:
        """Return the hidden bits (Algorithm 2)."""
        del key
        capacity = self.capacity(usable)
        if capacity == 0:
            raise MessageNotFoundError("no usable 4x4 block in the background")
        lo, hi = int(value_range[0]), int(value_range[1])
        bits = self._decide(_forward(pixels, _usable_blocks(usable), lo, hi).ravel())
        n = int(bits[:HEADER_BITS] @ (1 << np.arange(HEADER_BITS - 1, -1, -1)))
        if 0 < n <= capacity and math.isqrt(n) ** 2 == n:
            return bits[HEADER_BITS : HEADER_BITS + n].astype(np.uint8)
        raise MessageNotFoundError(
            "no valid message length in the background: the pixels were altered, the mask "
            "differs from the one used at embedding, or nothing was hidden"
        )

    def _decide(self, coeffs: np.ndarray) -> np.ndarray:
        """Eq. 9 as read here, then binarization of the recovered QR value at 1/2."""
        t = np.abs(coeffs) / self._delta
        return ((t - np.floor(t)) >= 0.5).astype(np.int64)



class PaperSettings(Settings):
    """``[handlers.embed.paper]``: seed 002's embedding strength (beta) and mix (alpha)."""

    beta: Annotated[int, Range(1, 100000)] = 8
    alpha: Annotated[float, Range(0, 0.49)] = 0.02


CODECS.register(CodecEntry("paper", lambda params: PaperCodec(**params), PaperSettings))
