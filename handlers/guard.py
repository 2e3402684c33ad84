"""The safety guard: what no segmenter may hand to the codec, whatever it says.

A segmenter's background is a model's opinion; the guard is a rule that depends on no model. The
usable region is the segmenter's background minus the foreground's margin minus the guard's
margin, computed by :func:`usable_region` on cover and stego alike:

* **Hounsfield units.** On CT with rescale attributes no pixel denser than
  :data:`~stegonode.dicom.display.CT_THRESHOLD_HU` changes, nor any pixel within the margin of
  one, whatever the size of the object (skin markers, cables, metal streaks).
* **Brighter than the background.** On every image no pixel changes within the margin of a pixel
  brighter, in display sense, than the background's own level. The level is estimated per frame on
  the cover (median of the segmenter's background, excluding Pixel Padding, plus
  :data:`NOISE_SIGMAS` robust standard deviations) and raised by the codec's change allowance, so
  that what embedding writes into the background stays below it. It is recorded in the protection
  block: reveal uses the cover's levels, never levels re-estimated on the stego image.
* **Provable backgrounds are recorded.** Where the segmenter's background is provably not image
  (the padding segmenter: constant padding and collimator black), embedding changes exactly the
  pixels that made it provable, so the stego image cannot show it again; the protection block
  records the usable region itself (:func:`encode_region`, about a kilobyte) and reveal reads it.
* **Colour.** In a colour image (the codec writes its luminance: :mod:`.colour`) no pixel with
  colour changes, nor any pixel within the margin of one; cover and stego have the same such
  pixels, since only achromatic pixels change and they stay achromatic.
* **The border.** Anatomy cut by the image border keeps its border: within :data:`BORDER_REACH`
  pixels of the image edge, every pixel within that reach of the foreground is guarded unless it
  is at the background's own level (within the same spread of its median as the level above, on
  either side), so a segmenter that stops a little short of the edge (it was trained on bodies
  inside the field) leaves no band to write in. This holds where bright is background too (a CR
  stored with direct exposure bright, where the brightness rule protects nothing).
"""

from __future__ import annotations

import base64
import binascii
import math
import zlib
from dataclasses import asdict, dataclass, replace

import numpy as np
from pydicom import Dataset

from stegonode.dicom.colour import chromatic, is_colour
from stegonode.dicom.display import CT_THRESHOLD_HU, display_scale, display_values, has_hounsfield_units, padding_mask
from stegonode.errors import NotProtectedError
from stegonode.models.morphology import dilate_square
from stegonode.segmenters.classical import otsu_threshold

NOISE_SIGMAS = 4.0  # background median + this many robust standard deviations is still background
BORDER_REACH = 16  # pixels: foreground this close to the edge is taken to run on to the edge
SEPARATION = 10.0  # dark-class standard deviations between the dark and bright classes' medians
SAMPLE = 1 << 18  # background values used for the level estimate (an even stride over the frame)
GUARD_VERSION = 1


@dataclass(frozen=True)
class Guard:
    """What reveal needs to recompute the cover's guard: levels are in display units (Hounsfield
    units on CT, negated stored values on MONOCHROME1, stored values otherwise), one per frame."""

    levels: list[float]
    medians: list[float]  # the background's median per frame (display units): the border rule's centre
    border: int = BORDER_REACH
    hounsfield: float | None = None  # the HU threshold on CT, None elsewhere
    version: int = GUARD_VERSION

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, document: object) -> Guard:
        """The guard of a protection block; NotProtectedError if it is malformed."""
        try:
            guard = cls(**document)  # type: ignore[arg-type]
        except TypeError:
            raise NotProtectedError("malformed stegonode protection block (guard)") from None
        finite = all(isinstance(v, (int, float)) and math.isfinite(v) for v in guard.levels + guard.medians)
        if guard.version != GUARD_VERSION or not finite or not isinstance(guard.border, int):
            raise NotProtectedError("malformed or unknown stegonode protection block (guard)")
        return guard


def measure(ds: Dataset, pixels: np.ndarray, foreground: np.ndarray, allowance: float,
            border: int = BORDER_REACH) -> Guard:
    """The cover's guard. ``allowance``: how much, in stored units, the codec may raise a
    background pixel (converted to display units here). ``border``: the border rule's reach, 0
    where the background is provably not image (Pixel Padding, a collimator's constant black)."""
    spread = allowance * display_scale(ds)
    estimates = [  # frame by frame: the display values take one frame's memory
        _background(display_values(ds, pixels[index:index + 1])[0],
                    ~foreground[index] & ~padding_mask(ds, pixels[index]))
        for index in range(len(pixels))
    ]
    return Guard(levels=[median + top + spread for median, top in estimates],
                 medians=[median for median, _ in estimates], border=border,
                 hounsfield=CT_THRESHOLD_HU if has_hounsfield_units(ds) else None)


def _background(frame: np.ndarray, background: np.ndarray) -> tuple[float, float]:
    """The background's own median, and how far above it its values reach: NOISE_SIGMAS robust
    standard deviations (1.4826 x MAD) of its darkest population. A segmenter's background may hold
    brighter things than the background proper (collimator shutters, a band of anatomy it
    missed); when Otsu's split of the values leaves a dark class well separated from the rest
    (medians more than SEPARATION of its standard deviations apart), the dark class is the
    background. Without a background (the segmenter found none), the frame's darkest value and
    no spread: everything else is guarded."""
    values = frame[background][:: max(1, int(background.sum()) // SAMPLE)]
    if values.size == 0:
        return float(frame.min()), 0.0
    median, sigma = _robust(values)
    threshold = otsu_threshold(values)
    dark, bright = values[values <= threshold], values[values > threshold]
    if dark.size and bright.size:
        dark_median, dark_sigma = _robust(dark)
        if median_of(bright) - dark_median > SEPARATION * max(dark_sigma, 1.0):
            median, sigma = dark_median, dark_sigma
    return median, NOISE_SIGMAS * sigma


def _robust(values: np.ndarray) -> tuple[float, float]:
    """Median and robust standard deviation (1.4826 x median absolute deviation)."""
    median = median_of(values)
    return median, 1.4826 * median_of(np.abs(values - median))


def median_of(values: np.ndarray) -> float:
    """``float(np.median(values))`` of a 1-D array without NaN (display values never have one),
    in a fifth of its time: one partition at the middle, the lower middle value as the maximum
    below it, and their mean as np.median takes it (in the array's type)."""
    n = values.size
    if n == 0:
        return float(np.median(values))  # nan, with numpy's warning
    half = n // 2
    part = np.partition(values, half)
    if n % 2:
        return float(part[half])
    return float(np.mean(np.array([part[:half].max(), part[half]], dtype=values.dtype)))


def forbidden(ds: Dataset, pixels: np.ndarray, foreground: np.ndarray, guard: Guard) -> np.ndarray:
    """Pixels the guard protects (before the margin): too dense, too bright, or border anatomy."""
    display = display_values(ds, pixels)
    levels = np.asarray(guard.levels, dtype=np.float32)
    if levels.shape != (len(display),) or len(guard.medians) != len(display):
        raise NotProtectedError("protection block's guard does not match the frames of the image")
    medians = np.asarray(guard.medians, dtype=np.float32)[:, None, None]
    guarded = display > levels[:, None, None]
    if guard.hounsfield is not None and has_hounsfield_units(ds):
        guarded |= display > guard.hounsfield
    at_background = np.abs(display - medians) <= levels[:, None, None] - medians
    return guarded | (_border_anatomy(foreground, guard.border) & ~at_background)


def _border_anatomy(foreground: np.ndarray, reach: int) -> np.ndarray:
    """Pixels within ``reach`` of both the image edge and the foreground."""
    if reach <= 0:
        return np.zeros_like(foreground)
    # Each side's band from a strip twice its width: the dilation reaches no further (the same
    # result as dilating the whole frame, a quarter of the work on a 512x512 slice; on a frame
    # narrower than two bands the strips are the whole frame).
    out = np.zeros_like(foreground)
    out[:, :reach] = dilate_square(foreground[:, :2 * reach], reach)[:, :reach]
    out[:, -reach:] = dilate_square(foreground[:, -2 * reach:], reach)[:, -reach:]
    out[:, :, :reach] |= dilate_square(foreground[:, :, :2 * reach], reach)[:, :, :reach]
    out[:, :, -reach:] |= dilate_square(foreground[:, :, -2 * reach:], reach)[:, :, -reach:]
    return out


def usable_region(ds: Dataset, pixels: np.ndarray, foreground: np.ndarray, margin: int,
                  guard: Guard | None) -> np.ndarray:
    """Where data may go: outside the foreground and the guard, each dilated by ``margin``
    pixels (square). ``guard`` None: objects protected before the guard existed. Frame by frame
    (every rule is a frame's own): the working copies take one frame's memory."""
    if guard is not None and not len(guard.levels) == len(guard.medians) == len(pixels):
        raise NotProtectedError("protection block's guard does not match the frames of the image")
    usable = np.empty(foreground.shape, dtype=bool)
    coloured = chromatic(ds) if is_colour(ds) else None
    for index in range(len(pixels)):
        frame = slice(index, index + 1)
        kept = foreground[frame]
        if coloured is not None:  # colour is content; the codec writes luminance where there is none
            kept = kept | coloured[frame]
        if guard is not None:
            own = replace(guard, levels=guard.levels[frame], medians=guard.medians[frame])
            kept = kept | forbidden(ds, pixels[frame], foreground[frame], own)
        usable[frame] = ~kept if margin <= 0 else ~dilate_square(kept, margin)
    return usable


def encode_region(usable: np.ndarray) -> dict:
    """``usable`` for the protection block: each distinct frame mask bit-packed, zlib-compressed
    and Base64-encoded once, and per frame the index of its mask (a collimator does not move)."""
    masks: dict[bytes, int] = {}
    frames = [masks.setdefault(np.packbits(frame).tobytes(), len(masks)) for frame in usable]
    return {"shape": list(usable.shape), "frames": frames,
            "masks": [base64.b64encode(zlib.compress(mask, 9)).decode() for mask in masks]}


def decode_region(document: object, shape: tuple[int, ...]) -> np.ndarray:
    """The usable region recorded by :func:`encode_region`; NotProtectedError if it is malformed
    or not for an image of ``shape``."""
    try:
        assert isinstance(document, dict) and tuple(document["shape"]) == tuple(shape)
        size = shape[1] * shape[2]
        masks = [np.unpackbits(np.frombuffer(zlib.decompress(base64.b64decode(text)), np.uint8))[:size]
                 for text in document["masks"]]
        frames = [masks[index].reshape(shape[1:]) for index in document["frames"]]
        assert len(frames) == shape[0] and all(mask.size == size for mask in masks)
    except (AssertionError, KeyError, TypeError, IndexError, ValueError, zlib.error, binascii.Error):
        raise NotProtectedError("malformed stegonode protection block (region)") from None
    return np.stack(frames).astype(bool)
