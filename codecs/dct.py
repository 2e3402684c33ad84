"""DCT stego codec: keyed QIM on block-DCT coefficients of the background.

How a message travels (all parameters documented on :class:`DctParams`):

* The image (all frames) is cut into ``block`` x ``block`` tiles from the top-left corner; a
  partial tile at the right or bottom edge is never used. Each tile offers one *slot* per chosen
  AC coefficient. Slots of all frames form one pool, so a multi-frame object spreads the message
  over its frames.
* Every slot of the image has a role fixed by the key, the image size and the message length
  alone, whatever the mask says; only slots whose tile lies wholly in the usable region are
  written. So a mask that disagrees at extraction costs missing or unreliable votes, never a
  shifted bit stream.
* Roles: a keyed draw per slot makes one slot in 16 a header slot (32 header bits, each
  repeated). The tile grid is cut into square *chunks* of at least N message slots (N =
  message bits), so every chunk carries every message bit at least once, and every bit gets
  one copy per background chunk, spread over the whole image.
* Layout 2 (the default) numbers the slots of a chunk in raster order and gives slot j of
  chunk (r, c) the bit order[(j + shift(r, c)) mod N]: one keyed permutation ``order`` of the
  bits, and shifts from a low-discrepancy (R2) sequence over the chunk grid, so that chunks
  only partly in the background cover different bits rather than overlapping at random.
  How well that works depends on how the chunk grid falls on the background, so ``fit``
  tries a few chunk sizes (``chunk_extra`` tiles more than the minimum) under the key and
  keeps the one that leaves the fewest bits without a copy; it searches only where the
  background is small (fewer votes per bit than ``target_redundancy``). On the 300x484
  examples_overlay MR with the Mask R-CNN mask (3.2 votes per bit) this leaves about 19 of
  its 8649 bits without a copy, against about 125 with layout 1 (benchmarks/dct_layout.py).
* Layout 1 (objects protected before layouts existed) places bits by an independent keyed
  affine permutation per chunk; it is still read, never written.
* Each written coefficient is moved to the nearest point of the lattice for its bit (nearest-
  point QIM, lattice spacing ``step``, offset by a keyed dither per slot). Extraction turns each
  coefficient into a soft vote in [-1, 1] and sums the votes of every copy of a bit: this
  repetition code with soft decisions absorbs noise, rounding and mask disagreement, and the QR
  code's Reed-Solomon code corrects what remains.
* The 32-bit header holds the message length and a 16-bit keyed check, so a wrong key or an
  unprotected image is recognised instead of returning noise.
* Pixel changes are rounded to integers; a tile that would leave the stored range is shifted by
  a whole number (which changes only its DC term, never the AC carriers). After rounding, slots
  that decode wrongly are re-quantized, a few rounds at most.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import math
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Annotated, Any

import numpy as np
from pydantic import model_validator

from stegonode.errors import CapacityError, ConfigError, MessageNotFoundError

from .registry import CODECS
from .settings import Range, Settings
from .stego import CodecEntry

HEADER_BITS = 32
HEADER_PERIOD = 16  # one slot in 16 carries a header bit
_MAX_MESSAGE_BITS = 0xFFFF
_FIX_ROUNDS = 3
LAYOUTS = (1, 2)
_CHUNK_CHOICES = 8  # chunk sizes fit() tries on small backgrounds
# Tiles of the grid per batch of embed and extract: a 512 x 512 frame of 4x4 tiles is one batch
# (its slots are drawn once and memoized for the read-back); larger objects are worked batch by
# batch, so their 64-bit working copies take a batch's memory (about 20 MiB), not the object's.
BATCH_TILES = 1 << 15
# R2 sequence (the plastic number's inverse powers): well-spread shifts along both chunk axes.
_R2 = (1 / 1.324717957244746, 1 / 1.324717957244746**2)


def dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II matrix D, so that coefficients are D @ block @ D.T."""
    k = np.arange(n)[:, None]
    m = np.arange(n)[None, :]
    d = np.cos(np.pi * (2 * m + 1) * k / (2 * n)) * np.sqrt(2 / n)
    d[0] /= np.sqrt(2)
    return d


@dataclass(frozen=True)
class DctParams:
    """Strength parameters of the DCT codec.

    step: QIM lattice spacing in stored pixel units (orthonormal DCT, so coefficient units equal
        pixel units). Larger steps survive more noise and cost PSNR: mean squared change per
        written coefficient is about step**2 / 12. A written bit survives additive noise up to
        step / 4 per coefficient before its vote flips.
    block: tile size of the block DCT (4 by default, as in the seed paper).
    coefficients: (row, column) AC positions a tile may carry, in order of preference (zigzag
        by default). With an orthonormal DCT every AC position is equally robust to rounding
        and noise; each written position costs the same distortion. The DC term is never
        written (it is the tile's free offset for range clamping).
    min_coefficients: positions always written per tile (a prefix of ``coefficients``).
    target_redundancy: :meth:`DctCodec.fit` writes the shortest prefix of ``coefficients``
        (at least ``min_coefficients``) that gives each message bit this many votes on
        average: small backgrounds get more positions per tile, large ones less distortion.
    min_redundancy: votes per message bit below which the image is reported too small. 2 or
        more lets the soft votes outvote noise and mask disagreement.
    layout: how message bits are assigned to slots (see the module docstring): 2 for new
        objects; protection blocks that predate the field mean 1.
    chunk_extra: layout 2 only: tiles added to the smallest chunk side; :meth:`DctCodec.fit`
        picks it (0 to ``_CHUNK_CHOICES`` - 1) per image and key.
    """

    step: float = 10.0
    block: int = 4
    coefficients: tuple[tuple[int, int], ...] = (
        (0, 1), (1, 0), (2, 0), (1, 1), (0, 2), (0, 3), (1, 2), (2, 1),
        (3, 0), (3, 1), (2, 2), (1, 3), (2, 3), (3, 2), (3, 3),
    )
    min_coefficients: int = 3
    target_redundancy: float = 6.0
    min_redundancy: float = 2.0
    layout: int = 2
    chunk_extra: int = 0

    @classmethod
    def from_dict(cls, values: dict) -> DctParams:
        values = dict(values)
        if values.get("layout", cls.layout) not in LAYOUTS:
            raise ValueError(f"unknown DCT layout {values['layout']!r}")
        if "coefficients" in values:
            values["coefficients"] = tuple(tuple(int(v) for v in pos) for pos in values["coefficients"])
        return cls(**values)


@dataclass
class _Slots:
    """The usable slots of a run of tiles (tile-major): their tiles, keyed header roles and dithers."""

    tiles: tuple[np.ndarray, ...]  # indices (frame, tile row, tile col) of usable tiles
    header_index: np.ndarray  # per usable slot: header bit index, or -1
    dither: np.ndarray  # per usable slot: dither in [0, step)


@dataclass
class _Draws:
    """The keyed draws of one image, taken batch by batch: the usable tiles, every slot's header
    role, and the generator's state where the dithers begin (one double per slot, in slot order,
    so a batch's dithers are the stream's next values whatever the batch size)."""

    tile_mask: np.ndarray  # boolean (frames, tile rows, tile cols)
    header: np.ndarray  # int8 per slot of the whole tile grid: header bit index, or -1
    dither_state: Mapping[str, Any]

    def batches(self, k: int, step: float) -> Iterator[_Slots]:
        """The usable slots, :data:`BATCH_TILES` tiles of the grid at a time (empty runs skipped)."""
        flat = self.tile_mask.ravel()
        rng = np.random.Generator(np.random.PCG64())
        rng.bit_generator.state = self.dither_state
        for start in range(0, flat.size, BATCH_TILES):
            stop = min(start + BATCH_TILES, flat.size)
            dither = rng.random((stop - start) * k) * step
            usable = np.flatnonzero(flat[start:stop])
            if not usable.size:
                continue
            ids = (usable[:, None] * k + np.arange(k)).ravel()
            yield _Slots(tiles=np.unravel_index(usable + start, self.tile_mask.shape),
                         header_index=self.header[start * k + ids].astype(np.int64), dither=dither[ids])


@dataclass
class DctCodec:
    """Keyed nearest-point QIM in block-DCT coefficients of the usable region."""

    settings: DctParams = field(default_factory=DctParams)
    name: str = "dct"

    # The last image's slots and message placement: embed, then protect's read-back (extract),
    # ask for the same ones. One entry, replaced whole (safe if threads share the codec).
    _last: tuple[tuple, _Draws, _Slots | None, dict[int, np.ndarray]] | None = field(
        default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        b = self.settings.block
        d = dct_matrix(b)
        # basis[k] is the b*b pixel pattern of coefficient k: pixel change = delta * basis[k]
        self._basis = np.stack([np.outer(d[u], d[v]).ravel() for u, v in self.settings.coefficients])

    def params(self) -> dict:
        return asdict(self.settings)

    def change_allowance(self) -> float:
        """Twice the lattice step: measured changes on 15 real images of other scanners were
        at most 1.6 steps (99th percentile 0.9), range clamping included."""
        return 2.0 * self.settings.step

    def _seed_params(self) -> dict:
        """Parameters that seed the keyed draws: all but the layout fields, so that every layout
        and chunk size shares the same header slots and dithers (and layout 1 seeds as before)."""
        params = self.params()
        del params["layout"], params["chunk_extra"]
        return params

    # -- geometry -----------------------------------------------------------------------------

    def _blocks(self, array: np.ndarray) -> np.ndarray:
        """(frames, tile rows, b, tile cols, b) view of the tiled part (splitting axes never copies)."""
        b = self.settings.block
        f, r, c = array.shape
        tr, tc = r // b, c // b
        return array[:, : tr * b, : tc * b].reshape(f, tr, b, tc, b)

    def _gather(self, array: np.ndarray, tiles: tuple[np.ndarray, ...]) -> np.ndarray:
        """(n, b*b) pixels of the listed tiles."""
        frame, row, col = tiles
        return self._blocks(array)[frame, row, :, col, :].reshape(len(frame), -1)

    def _usable_tiles(self, usable: np.ndarray) -> np.ndarray:
        """Boolean (frames, tile rows, tile cols): tiles lying wholly in the usable region."""
        blocks = self._blocks(usable)
        if self.settings.block != 4:
            return np.asarray(blocks.all(axis=(2, 4)))
        # Four bools are one uint32: 40x faster than a reduce over two strided axes.
        f, tr, b, tc, _ = blocks.shape
        words = np.ascontiguousarray(blocks).view(np.uint32).reshape(f, tr, b, tc)
        return (words == 0x01010101).all(axis=2)

    @staticmethod
    def _message_slots(usable_tiles: int, coefficients: int) -> float:
        return usable_tiles * coefficients * (HEADER_PERIOD - 1) / HEADER_PERIOD

    def capacity(self, usable: np.ndarray) -> int:
        tiles = int(self._usable_tiles(usable).sum())
        return int(self._message_slots(tiles, len(self.settings.coefficients)) / self.settings.min_redundancy)

    def fit(self, usable: np.ndarray, message_bits: int, key: bytes) -> DctCodec:
        """This codec restricted to the fewest coefficient positions that reach the target, with
        the chunk size that gives the most message bits a copy under ``key``."""
        s = self.settings
        tiles = int(self._usable_tiles(usable).sum())
        count = max(1, min(s.min_coefficients, len(s.coefficients)))
        while (
            count < len(s.coefficients)
            and self._message_slots(tiles, count) < s.target_redundancy * message_bits
        ):
            count += 1
        fitted = DctCodec(replace(s, coefficients=s.coefficients[:count], chunk_extra=0))
        if s.layout == 1 or self._message_slots(tiles, count) >= s.target_redundancy * message_bits:
            return fitted
        return fitted._best_chunks(usable, message_bits, key)

    def _best_chunks(self, usable: np.ndarray, n: int, key: bytes) -> DctCodec:
        """Of the chunk sizes on offer, the one leaving the fewest message bits unwritten. The
        keyed draws are the same for every chunk size: each candidate starts from this codec's
        (drawn once), and the one chosen keeps its message indices for embed."""
        token, draws, single, _ = self._placement(usable, key)
        best, fewest = self, n + 1
        for extra in range(_CHUNK_CHOICES):
            codec = DctCodec(replace(self.settings, chunk_extra=extra))
            codec._last = (token, draws, single, {})
            missing = codec._bits_without_copy(usable, n, key)
            if missing < fewest:
                best, fewest = codec, missing
            if missing == 0:
                break
        return best

    def _bits_without_copy(self, usable: np.ndarray, n: int, key: bytes) -> int:
        """Message bits that no usable slot carries (they read back as a coin toss)."""
        copies = np.zeros(n, dtype=bool)
        for _, index in self._batches(usable, key, n):
            assert index is not None
            copies[index[index >= 0]] = True
        return n - int(np.count_nonzero(copies))

    def _placement(self, usable: np.ndarray, key: bytes
                   ) -> tuple[tuple, _Draws, _Slots | None, dict[int, np.ndarray]]:
        """The keyed draws of ``usable`` under ``key`` (computed once per image); for an image
        of one batch its slots, and the memo of their message indices by message length."""
        token = (usable.shape, np.packbits(usable).tobytes(), key)
        last = self._last
        if last is None or last[0] != token:
            draws = self._draw(usable, key)
            batches = list(itertools.islice(draws.batches(len(self.settings.coefficients), self.settings.step), 2))
            single = batches[0] if len(batches) == 1 else None
            last = self._last = (token, draws, single, {})
        return last

    def _batches(self, usable: np.ndarray, key: bytes, n: int | None
                 ) -> Iterator[tuple[_Slots, np.ndarray | None]]:
        """The usable slots batch by batch, with their message indices for an ``n``-bit message
        (None: not asked for). An image of one batch is drawn once and its indices memoized."""
        _, draws, single, indices = self._placement(usable, key)
        if single is not None:
            if n is not None and n not in indices:
                indices[n] = self._message_index(single, usable.shape, n, key)
            yield single, None if n is None else indices[n]
            return
        for slots in draws.batches(len(self.settings.coefficients), self.settings.step):
            yield slots, None if n is None else self._message_index(slots, usable.shape, n, key)

    def _draw(self, usable: np.ndarray, key: bytes) -> _Draws:
        k = len(self.settings.coefficients)
        tile_mask = self._usable_tiles(usable)
        total = tile_mask.size * k
        rng = np.random.Generator(np.random.PCG64(_seed(key, b"slots", usable.shape, self._seed_params())))
        role = rng.integers(0, HEADER_PERIOD * HEADER_BITS, total, dtype=np.uint16)
        header = np.where(role < HEADER_BITS, role, -1).astype(np.int8)
        return _Draws(tile_mask=tile_mask, header=header, dither_state=rng.bit_generator.state)

    def _message_index(self, slots: _Slots, shape: tuple[int, ...], n: int, key: bytes) -> np.ndarray:
        """Message bit carried by each usable slot (header slots get -1)."""
        k = len(self.settings.coefficients)
        b = self.settings.block
        frames, tile_rows, tile_cols = shape[0], shape[1] // b, shape[2] // b
        side = max(1, math.ceil(math.sqrt(n / k)))  # chunk side in tiles: side*side*k >= n
        side += self.settings.chunk_extra
        chunks_down, chunks_across = -(-tile_rows // side), -(-tile_cols // side)
        # Per tile first (a slot's chunk and position are its tile's, plus its coefficient), then
        # per slot: tile-major, k slots a tile.
        frame, row, col = slots.tiles
        chunk_row, chunk_col = frame * chunks_down + row // side, col // side
        within = (((row % side) * side + col % side) * k)[:, None] + np.arange(k)
        if self.settings.layout == 1:
            chunk = np.repeat(chunk_row * chunks_across + chunk_col, k)
            bit = _affine_chunks(within.ravel(), chunk, side * side * k, frames * chunks_down * chunks_across, n,
                                 _seed(key, b"chunks", shape, {"n": n, **self._seed_params()}))
        else:
            rng = np.random.Generator(np.random.PCG64(_seed(key, b"shifts", shape, {"n": n, **self._seed_params()})))
            order = rng.permutation(n)
            start = rng.random()
            shift = np.floor((start + chunk_row * _R2[0] + chunk_col * _R2[1]) % 1 * n).astype(np.int64)
            bit = order[((within + shift[:, None]) % n).ravel()]
        return np.where(slots.header_index >= 0, -1, bit)

    # -- QIM --------------------------------------------------------------------------------------

    def _coefficients(self, tiles: np.ndarray) -> np.ndarray:
        """(n tiles, b*b) -> (n slots,) coefficients, slot order tile-major."""
        return (tiles @ self._basis.T).ravel()

    def _quantize(self, coeffs: np.ndarray, bits: np.ndarray, dither: np.ndarray) -> np.ndarray:
        offset = dither + bits * (self.settings.step / 2)
        return np.round((coeffs - offset) / self.settings.step) * self.settings.step + offset

    def _votes(self, coeffs: np.ndarray, dither: np.ndarray) -> np.ndarray:
        """Soft votes in [-1, 1]: +1 exactly on a 1-lattice point, -1 on a 0-lattice point."""
        step = self.settings.step
        e = coeffs - dither
        d0 = np.abs(e - np.round(e / step) * step)
        return (4 * d0 / step) - 1

    def embed(
        self,
        pixels: np.ndarray,
        usable: np.ndarray,
        message: np.ndarray,
        key: bytes,
        value_range: tuple[int, int],
    ) -> np.ndarray:
        message = np.asarray(message, dtype=np.uint8)
        n = message.size
        if not 0 < n <= _MAX_MESSAGE_BITS:
            raise ValueError(f"message length {n} outside 1..{_MAX_MESSAGE_BITS}")
        capacity = self.capacity(usable)
        if n > capacity:
            raise CapacityError(offered_bits=capacity, needed_bits=n)
        out = pixels.copy()
        for slots, message_index in self._batches(usable, key, n):
            assert message_index is not None
            bits = np.where(
                slots.header_index >= 0,
                _header_bits(n, key)[np.maximum(slots.header_index, 0)],
                message[np.maximum(message_index, 0)],
            ).astype(np.float64)
            self._embed_batch(out, slots, bits, value_range)
        return out

    def _embed_batch(self, out: np.ndarray, slots: _Slots, bits: np.ndarray, value_range: tuple[int, int]) -> None:
        """Write ``bits`` into the slots of one batch of tiles of ``out``, in place."""
        original = self._gather(out, slots.tiles).astype(np.float64)
        lo, hi = value_range
        k = len(self.settings.coefficients)
        target = self._quantize(self._coefficients(original), bits, slots.dither)
        current = original
        for _ in range(_FIX_ROUNDS + 1):
            delta = (target - self._coefficients(current)).reshape(-1, k)
            current = np.rint(current + delta @ self._basis)
            current = _clamp_tiles(current, lo, hi)
            wrong = np.sign(self._votes(self._coefficients(current), slots.dither)) != 2 * bits - 1
            if not wrong.any():
                break
            target = np.where(wrong, self._quantize(self._coefficients(current), bits, slots.dither), target)
        frame, row, col = slots.tiles
        b = self.settings.block
        self._blocks(out)[frame, row, :, col, :] = current.reshape(-1, b, b).astype(out.dtype)

    def extract(
        self, pixels: np.ndarray, usable: np.ndarray, key: bytes, value_range: tuple[int, int]
    ) -> np.ndarray:
        del value_range  # QIM reads coefficients as they are
        header_votes = np.zeros(HEADER_BITS)
        batches, votes = 0, np.zeros(0)
        for batches, (slots, _) in enumerate(self._batches(usable, key, None), start=1):  # noqa: B007 (counted)
            votes = self._slot_votes(pixels, slots)
            is_header = slots.header_index >= 0
            header_votes += np.bincount(slots.header_index[is_header], weights=votes[is_header],
                                        minlength=HEADER_BITS)
        if batches == 0:
            raise MessageNotFoundError("no usable background to read a message from")
        n = _parse_header((header_votes > 0).astype(np.uint8), key)
        if n is None:
            raise MessageNotFoundError(
                "no message header found in the background with this embedding key"
            )
        sums = np.zeros(n)
        for slots, message_index in self._batches(usable, key, n):
            assert message_index is not None
            if batches > 1:  # one batch: its votes are those of the header pass
                votes = self._slot_votes(pixels, slots)
            carries = message_index >= 0
            sums += np.bincount(message_index[carries], weights=votes[carries], minlength=n)
        return (sums > 0).astype(np.uint8)

    def _slot_votes(self, pixels: np.ndarray, slots: _Slots) -> np.ndarray:
        return self._votes(self._coefficients(self._gather(pixels, slots.tiles).astype(np.float64)), slots.dither)


def _affine_chunks(within: np.ndarray, chunk: np.ndarray, chunk_slots: int, chunks: int, n: int,
                   seed: int) -> np.ndarray:
    """Layout 1: a keyed affine permutation per chunk, within -> (a * within + c) mod chunk_slots.

    ``a`` is coprime to chunk_slots: independent placements across chunks at O(1) memory each.
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    a = rng.integers(1, chunk_slots, chunks) if chunk_slots > 1 else np.ones(chunks, np.int64)
    while (bad := np.gcd(a, chunk_slots) != 1).any():
        a[bad] = rng.integers(1, chunk_slots, int(bad.sum()))
    c = rng.integers(0, chunk_slots, chunks)
    return (a[chunk] * within + c[chunk]) % chunk_slots % n


def _clamp_tiles(tiles: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Shift each tile by a whole number so it fits [lo, hi]; shifts change only the DC term."""
    if tiles.size == 0 or (tiles.min() >= lo and tiles.max() <= hi):
        return tiles
    below = np.maximum(lo - tiles.min(axis=1), 0)
    above = np.maximum(tiles.max(axis=1) - hi, 0)
    return np.clip(tiles + (below - above)[:, None], lo, hi)


def _seed(key: bytes, purpose: bytes, shape: tuple[int, ...], params: dict) -> int:
    info = purpose + repr((tuple(shape), sorted(params.items()))).encode()
    return int.from_bytes(hmac.new(key, b"stegonode dct v1\0" + info, hashlib.sha256).digest(), "big")


def _check(n: int, key: bytes) -> int:
    digest = hmac.new(key, b"stegonode dct header\0" + n.to_bytes(2, "big"), hashlib.sha256).digest()
    return int.from_bytes(digest[:2], "big")


def _header_bits(n: int, key: bytes) -> np.ndarray:
    word = (n << 16) | _check(n, key)
    return np.array([(word >> (31 - i)) & 1 for i in range(HEADER_BITS)], dtype=np.uint8)


def _parse_header(bits: np.ndarray, key: bytes) -> int | None:
    word = int("".join(map(str, bits.tolist())), 2)
    n, check = word >> 16, word & 0xFFFF
    return n if n > 0 and check == _check(n, key) else None


class DctSettings(Settings):
    """``[handlers.embed.dct]``: the strength of the DCT codec (see :class:`DctParams`)."""

    step: Annotated[float, Range(0.5, 1000)] = 10.0
    min_coefficients: Annotated[int, Range(1, 15)] = 3
    target_redundancy: Annotated[float, Range(1, 1000)] = 6.0
    min_redundancy: Annotated[float, Range(1, 1000)] = 2.0

    @model_validator(mode="after")
    def _ordered(self) -> DctSettings:
        if self.min_redundancy > self.target_redundancy:
            raise ConfigError("handlers.embed.dct.min_redundancy must not exceed handlers.embed.dct.target_redundancy")
        return self


CODECS.register(CodecEntry("dct", lambda params: DctCodec(DctParams.from_dict(params)), DctSettings))
