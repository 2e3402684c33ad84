"""Deep codec: the message, drawn as a picture, is the secret image of the seed-000 networks.

How a message travels:

* The n message bits are laid out row-major in a square of side ceil(sqrt(n)), each bit a
  square of ``module_pixels`` x ``module_pixels`` pixels, 1 dark (0) and 0 light (255), on a
  light canvas of s x s tiles of TILE x TILE pixels. For a QR module matrix (the sealed
  payload) this is the QR code drawn at ``module_pixels`` pixels per module. Two pixels per
  module (the default) read back without error where one pixel per module loses a few percent
  of the bits (measured on the held-out covers, see models/DEEPSTEGO.md).
* The image (all frames) is cut into TILE x TILE tiles from the top-left; partial tiles at the
  right and bottom edges are never used. Grid tile (row r, column c) carries canvas tile
  (r * s + c) mod s^2: any s x s block of grid tiles carries the whole canvas. A keyed order of
  the grid decides which usable tiles carry (at most ``max_copies`` per canvas tile); the roles
  and the order depend on the key and the image size only, never on the mask, so a segmentation
  that differs at reveal costs copies, not a shifted picture.
* A carrier tile is mapped to 8-bit units, one stored unit per level, around its offset
  o = floor(tile mean) clamped so that the stored range maps into 0..255 (an 8-bit image maps
  to itself). A tile whose values do not fit 0..255 around its offset is not used. The
  embedding network hides the canvas tile; the stego tile is rounded, mapped back, kept within
  the stored range, and, where needed, a few pixels are moved by a whole lattice period (which
  keeps what they carry) so that the offset computed from the stego tile equals the cover's.
  Reveal recomputes offsets, runs the extraction network on every carrier, takes the per-pixel
  median over the copies of each canvas tile, averages each
  module's pixels and thresholds at mid-grey.
* The networks run only when embedding or extracting; importing this module does not load ONNX Runtime.

The key only orders the carriers: the networks are public, so anyone may recover the picture.
What it carries is protected by the seal (AEAD), not by the codec.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Annotated

import numpy as np
from pydantic import model_validator

from stegonode.errors import CapacityError, ConfigError, MessageNotFoundError
from stegonode.models.geometry import BLANK, BLANK_LIMIT, TILE

from .registry import CODECS
from .settings import Range, Settings
from .stego import CodecEntry

_AREA = TILE * TILE


@dataclass(frozen=True)
class DeepParams:
    """Parameters of the deep codec.

    bits: message length (set by :meth:`DeepCodec.fit`; reveal needs it to lay out the canvas).
    min_copies: carrier tiles each canvas tile needs; fewer and the image is reported too small.
    max_copies: carrier tiles written per canvas tile at most (more copies, more robustness,
        more changed pixels and time).
    module_pixels: side in pixels of the square that draws one bit.
    """

    bits: int = 0
    min_copies: int = 1
    max_copies: int = 8
    module_pixels: int = 2

    @classmethod
    def from_dict(cls, values: dict) -> DeepParams:
        params = cls(**values)
        if not 1 <= params.min_copies <= params.max_copies:
            raise ValueError(
                f"deep codec: need 1 <= min_copies <= max_copies, got {params.min_copies}, {params.max_copies}"
            )
        if params.module_pixels not in (1, 2, 4):
            raise ValueError(f"deep codec: module_pixels must be 1, 2 or 4, got {params.module_pixels}")
        return params


@dataclass
class _Carriers:
    """The grid tiles chosen to carry, in keyed order: their (frame, row, column) and role."""

    frame: np.ndarray
    row: np.ndarray
    column: np.ndarray
    role: np.ndarray


@dataclass
class DeepCodec:
    """Hides the message picture in background tiles with the shipped seed-000 networks."""

    settings: DeepParams = field(default_factory=DeepParams)
    name: str = "deep"

    def params(self) -> dict:
        return asdict(self.settings)

    def change_allowance(self) -> float:
        """A carrier tile is rewritten across 0..255 levels around its offset, one stored unit
        per level."""
        return 255.0

    # -- geometry -----------------------------------------------------------------------------

    def _canvas_side(self, bits: int) -> int:
        """Canvas side in tiles for a message of ``bits`` bits."""
        return max(1, -(-_width(bits) * self.settings.module_pixels // TILE))

    @staticmethod
    def _tile_grid(mask: np.ndarray) -> np.ndarray:
        """Boolean (frames, tile rows, tile columns): tiles lying wholly inside ``mask``."""
        f, r, c = mask.shape
        tr, tc = r // TILE, c // TILE
        return np.asarray(mask[:, : tr * TILE, : tc * TILE].reshape(f, tr, TILE, tc, TILE).all(axis=(2, 4)))

    @staticmethod
    def _roles(grid_shape: tuple[int, int, int], side: int) -> np.ndarray:
        """Canvas tile carried by each grid tile: (row * side + column) mod side^2."""
        _, tr, tc = grid_shape
        roles = (np.arange(tr)[:, None] * side + np.arange(tc)[None, :]) % (side * side)
        return np.broadcast_to(roles, grid_shape)

    def _covered(self, tiles: np.ndarray, side: int) -> int:
        """Fewest available tiles over the canvas tiles of a side x side canvas."""
        counts = np.bincount(self._roles(tiles.shape, side)[tiles], minlength=side * side)
        return int(counts.min())

    def _offered_bits(self, tiles: np.ndarray) -> int:
        """Bits of the largest canvas whose every tile has ``min_copies`` available carriers."""
        side, best = 1, 0
        while side * side <= tiles.size and self._covered(tiles, side) >= self.settings.min_copies:
            best = (side * TILE // self.settings.module_pixels) ** 2
            side += 1
        return best

    def capacity(self, usable: np.ndarray) -> int:
        return self._offered_bits(self._tile_grid(usable))

    def fit(self, usable: np.ndarray, message_bits: int, key: bytes) -> DeepCodec:
        """This codec set up for a message of ``message_bits`` bits."""
        return DeepCodec(replace(self.settings, bits=message_bits))

    def _carriers(self, available: np.ndarray, side: int, key: bytes) -> _Carriers:
        """Up to ``max_copies`` available tiles per role, taken in the keyed order of the grid."""
        roles = self._roles(available.shape, side).ravel()
        digest = hmac.new(key, b"stegonode deep v1\0" + repr(available.shape).encode(), hashlib.sha256).digest()
        order = np.random.Generator(np.random.PCG64(int.from_bytes(digest, "big"))).permutation(available.size)
        order = order[available.ravel()[order]]
        rank = np.zeros(order.size, dtype=np.int64)
        taken = np.zeros(side * side, dtype=np.int64)
        for i, tile in enumerate(order):  # the rank of each tile among the carriers of its role
            rank[i] = taken[roles[tile]]
            taken[roles[tile]] += 1
        chosen = order[rank < self.settings.max_copies]
        frame, row, column = np.unravel_index(chosen, available.shape)
        return _Carriers(frame, row, column, roles[chosen])

    # -- pixels <-> 8-bit tiles ---------------------------------------------------------------

    @staticmethod
    def _blocks(array: np.ndarray) -> np.ndarray:
        f, r, c = array.shape
        return array[:, : r // TILE * TILE, : c // TILE * TILE].reshape(f, r // TILE, TILE, c // TILE, TILE)

    def _gather(self, pixels: np.ndarray, where: _Carriers) -> np.ndarray:
        return self._blocks(pixels)[where.frame, where.row, :, where.column, :].astype(np.int64)

    @staticmethod
    def _offsets(tiles: np.ndarray, value_range: tuple[int, int]) -> np.ndarray:
        """Per tile: floor of its mean, clamped so that [lo, hi] maps into 0..255 where it can."""
        lo, hi = value_range
        floor_mean = tiles.reshape(len(tiles), -1).sum(axis=1) // _AREA
        return np.clip(floor_mean, lo + 128, max(lo + 128, hi - 127))

    def _fits(self, pixels: np.ndarray, value_range: tuple[int, int]) -> np.ndarray:
        """Boolean tile grid: tiles whose values map into 0..255 around their offset."""
        blocks = self._blocks(pixels).astype(np.int64).transpose(0, 1, 3, 2, 4)
        grid = blocks.shape[:3]
        tiles = blocks.reshape(-1, TILE, TILE)
        x = tiles - self._offsets(tiles, value_range)[:, None, None] + 128
        return ((x.min(axis=(1, 2)) >= 0) & (x.max(axis=(1, 2)) <= 255)).reshape(grid)

    @staticmethod
    def _stored(stego8: np.ndarray, covers: np.ndarray, offsets: np.ndarray, period: int,
                value_range: tuple[int, int]) -> np.ndarray:
        """Stego tiles in stored units, whose offsets equal the cover tiles' ``offsets``.

        Where the network's changes move a tile's mean out of its offset's interval, whole
        lattice periods are added to (or taken from) the pixels whose change was most the other
        way: their phase, which carries the secret, stays; their change from the cover barely
        grows (a pixel moved by -period/2 moved by +period/2 instead).
        """
        lo, hi = value_range
        stored = np.clip(np.rint(stego8).astype(np.int64) + offsets[:, None, None] - 128, lo, hi)
        low = np.where(offsets > lo + 128, offsets * _AREA, np.iinfo(np.int64).min)
        high = np.where(offsets < hi - 127, offsets * _AREA + _AREA - 1, np.iinfo(np.int64).max)
        sums = stored.reshape(len(stored), -1).sum(axis=1)
        for i in np.flatnonzero((sums < low) | (sums > high)):
            target = low[i] + _AREA // 2 if sums[i] < low[i] else high[i] - _AREA // 2
            step = period if target > sums[i] else -period
            room = (stored[i] + step >= max(lo, offsets[i] - 128)) & (stored[i] + step <= min(hi, offsets[i] + 127))
            score = np.where(room, (covers[i] - stored[i]) * np.sign(step), np.iinfo(np.int64).min).ravel()
            chosen = np.argsort(-score, kind="stable")[: round(abs(target - sums[i]) / period)]
            stored[i].ravel()[chosen] += step
        return stored

    # -- the codec ------------------------------------------------------------------------------

    def embed(
        self,
        pixels: np.ndarray,
        usable: np.ndarray,
        message: np.ndarray,
        key: bytes,
        value_range: tuple[int, int],
    ) -> np.ndarray:
        from stegonode.models import deepstego

        bits = np.asarray(message, dtype=np.uint8).ravel()
        available = self._tile_grid(usable) & self._fits(pixels, value_range)
        side = self._canvas_side(bits.size)
        if bits.size == 0 or self._covered(available, side) < self.settings.min_copies:
            raise CapacityError(offered_bits=self._offered_bits(available), needed_bits=bits.size)
        carriers = self._carriers(available, side, key)
        covers = self._gather(pixels, carriers)
        offsets = self._offsets(covers, value_range)
        secrets = _canvas_tiles(bits, side, self.settings.module_pixels)[carriers.role]
        model = deepstego.shipped()
        stego8 = deepstego.hide_tiles(covers - offsets[:, None, None] + 128, secrets, model)
        stored = self._stored(stego8, covers, offsets, model.config.period, value_range)
        out = pixels.copy()
        self._blocks(out)[carriers.frame, carriers.row, :, carriers.column, :] = stored.astype(pixels.dtype)
        return out

    def extract(
        self, pixels: np.ndarray, usable: np.ndarray, key: bytes, value_range: tuple[int, int]
    ) -> np.ndarray:
        from stegonode.models import deepstego

        n = self.settings.bits
        side = self._canvas_side(n)
        available = self._tile_grid(usable) & self._fits(pixels, value_range)
        if n <= 0 or self._covered(available, side) == 0:
            raise MessageNotFoundError("no usable background tiles to read a hidden picture from")
        carriers = self._carriers(available, side, key)
        tiles = self._gather(pixels, carriers)
        x = tiles - self._offsets(tiles, value_range)[:, None, None] + 128
        recovered = deepstego.reveal_tiles(x)
        canvas = np.stack([np.median(recovered[carriers.role == r], axis=0) for r in range(side * side)])
        if deepstego.blankness(canvas) < BLANK_LIMIT:
            raise MessageNotFoundError("no hidden picture in the background: the extraction is blank")
        picture = canvas.reshape(side, side, TILE, TILE).transpose(0, 2, 1, 3).reshape(side * TILE, -1)
        width, m = _width(n), self.settings.module_pixels
        modules = picture[: width * m, : width * m].reshape(width, m, width, m).mean(axis=(1, 3))
        return (modules.ravel()[:n] < BLANK).astype(np.uint8)


def _width(bits: int) -> int:
    """Side of the square the message is laid out in: ceil(sqrt(bits))."""
    return math.isqrt(bits - 1) + 1 if bits > 0 else 0


def _canvas_tiles(bits: np.ndarray, side: int, module_pixels: int) -> np.ndarray:
    """The message picture cut into side^2 tiles (row-major), 0 for 1-bits, 255 for 0-bits."""
    width = _width(bits.size)
    square = np.zeros(width * width, dtype=np.uint8)
    square[: bits.size] = bits
    drawn = np.where(square.reshape(width, width) == 1, 0, 255).repeat(module_pixels, 0).repeat(module_pixels, 1)
    picture = np.full((side * TILE, side * TILE), 255, dtype=np.uint8)
    picture[: drawn.shape[0], : drawn.shape[1]] = drawn
    return picture.reshape(side, TILE, side, TILE).transpose(0, 2, 1, 3).reshape(-1, TILE, TILE)


class DeepSettings(Settings):
    """``[handlers.embed.deep]``: how often the deep codec writes the QR code (see :class:`DeepParams`)."""

    min_copies: Annotated[int, Range(1, 1000)] = 1
    max_copies: Annotated[int, Range(1, 1000)] = 8
    module_pixels: int = 2

    @model_validator(mode="after")
    def _ordered(self) -> DeepSettings:
        if self.min_copies > self.max_copies:
            raise ConfigError("handlers.embed.deep.min_copies must not exceed handlers.embed.deep.max_copies")
        return self


CODECS.register(CodecEntry("deep", lambda params: DeepCodec(DeepParams.from_dict(params)), DeepSettings))
