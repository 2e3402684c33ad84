"""Procedural CT, MR and CR phantoms with exact foreground masks (training and held-out data).

A phantom is a stored-value array plus the few attributes a DICOM writer needs (bits, sign,
rescale, photometric interpretation); this module knows nothing of DICOM files. Foreground is
every object in the field: body, arms, table, head holder. Background is air, direct exposure
and the padding outside a round field of view.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

MODALITIES = ("CT", "MR", "CR")


@dataclass(frozen=True)
class Phantom:
    """Stored pixel values (rows, columns), exact foreground, and how to read the values."""

    stored: np.ndarray
    mask: np.ndarray
    modality: str
    bits_stored: int
    signed: bool
    slope: float
    intercept: float
    monochrome1: bool


def make_phantom(seed: int) -> Phantom:
    """Phantom number ``seed``: same seed, same phantom."""
    rng = np.random.default_rng(seed)
    modality = MODALITIES[seed % len(MODALITIES)]
    shape = _shape(rng, modality)
    if modality == "CT":
        return _ct(rng, shape)
    if modality == "MR":
        return _mr(rng, shape)
    return _cr(rng, shape)


def _shape(rng: np.random.Generator, modality: str) -> tuple[int, int]:
    if modality == "CR":
        return int(rng.choice([320, 384, 448, 512])), int(rng.choice([256, 320, 384, 512]))
    side = int(rng.choice([256, 320, 384, 512]))
    return (side, side) if rng.random() < 0.8 else (side, int(side * rng.uniform(0.75, 1.0)))


def _grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Normalized coordinates: y and x in [-1, 1] scaled by the longer side."""
    rows, cols = shape
    scale = max(rows, cols) / 2
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float32)
    return (y - rows / 2) / scale, (x - cols / 2) / scale


def _blob(rng: np.random.Generator, y: np.ndarray, x: np.ndarray, cy: float, cx: float,
          ry: float, rx: float, wobble: float = 0.08) -> np.ndarray:
    """A rotated ellipse whose radius wobbles with a few random harmonics."""
    angle = rng.uniform(-0.4, 0.4)
    dy, dx = y - cy, x - cx
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = -dx * np.sin(angle) + dy * np.cos(angle)
    theta = np.arctan2(v / ry, u / rx)
    radius = np.ones_like(theta)
    for k in range(2, 6):
        radius += wobble / k * rng.uniform(-1, 1) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    return (u / rx) ** 2 + (v / ry) ** 2 <= radius ** 2


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], strength: float) -> np.ndarray:
    """A slowly varying multiplicative field around 1 (coil or heel-effect bias)."""
    coarse = rng.normal(0, 1, (4, 4))
    field = ndimage.zoom(coarse, (shape[0] / 4, shape[1] / 4), order=3)[: shape[0], : shape[1]]
    return 1 + strength * field / max(np.abs(field).max(), 1e-6)


def _body(rng: np.random.Generator, y: np.ndarray, x: np.ndarray, head: bool) -> tuple[np.ndarray, list[np.ndarray]]:
    """Body outline (maybe cut by the border) and the arms beside it."""
    size = rng.uniform(0.35, 0.55) if head else rng.uniform(0.45, 1.05)
    cy, cx = rng.uniform(-0.15, 0.15), rng.uniform(-0.2, 0.2)
    ry = size * (rng.uniform(0.8, 1.1) if head else rng.uniform(0.5, 0.8))
    body = _blob(rng, y, x, cy, cx, ry, size, wobble=0.05 if head else 0.12)
    arms = []
    if not head and rng.random() < 0.5:
        for side in (-1, 1):
            r = rng.uniform(0.08, 0.15)
            arms.append(_blob(rng, y, x, cy + rng.uniform(-0.2, 0.2), cx + side * (size + r + rng.uniform(0.02, 0.12)), r * 1.2, r))
    return body, arms


def _insides(rng: np.random.Generator, y: np.ndarray, x: np.ndarray, body: np.ndarray,
             values: dict[str, float]) -> np.ndarray:
    """Tissue inside the body: a fat rim, organs, dark holes (lungs, bowel gas) and bone."""
    image = np.where(body, values["tissue"], 0.0).astype(np.float32)
    inner = ndimage.binary_erosion(body, iterations=int(rng.integers(3, 10)))
    image[body & ~inner] = values["fat"]
    ys, xs = np.nonzero(inner)
    if ys.size == 0:
        return image
    for kind in rng.choice(["organ", "hole", "bone"], size=int(rng.integers(2, 7))):
        i = rng.integers(ys.size)
        cy, cx = y[ys[i], xs[i]], x[ys[i], xs[i]]
        blob = _blob(rng, y, x, cy, cx, rng.uniform(0.03, 0.18), rng.uniform(0.03, 0.18)) & inner
        image[blob] = values[kind] * rng.uniform(0.8, 1.2)
    return image


def _support(rng: np.random.Generator, y: np.ndarray, x: np.ndarray, below: float, head: bool,
             above: float | None = None) -> np.ndarray:
    """A curved table under the body (over it when ``above`` is given: a prone patient), or a
    U-shaped head holder, or nothing."""
    if rng.random() < 0.35:
        return np.zeros_like(y, dtype=bool)
    curve = rng.uniform(0, 0.3) * x ** 2
    thickness = rng.uniform(0.02, 0.06)
    if above is not None:  # the table arches over the patient: edges curve down towards the body
        bottom = above - rng.uniform(0.01, 0.06)
        thickness = rng.uniform(0.03, 0.12)
        return (y < bottom + curve) & (y > bottom + curve - thickness) & (np.abs(x) < rng.uniform(0.6, 1.3))
    top = below + rng.uniform(0.01, 0.06)
    table = (y > top + curve) & (y < top + curve + thickness) & (np.abs(x) < rng.uniform(0.5, 1.2))
    if head:
        ring = (x ** 2 + (y - below + 0.35) ** 2)
        radius = rng.uniform(0.38, 0.5)
        table |= (ring > radius ** 2) & (ring < (radius + thickness) ** 2) & (y > below - 0.25)
    return table


def _ct(rng: np.random.Generator, shape: tuple[int, int]) -> Phantom:
    y, x = _grid(shape)
    head = rng.random() < 0.3
    body, arms = _body(rng, y, x, head)
    values = {"tissue": 40, "fat": -100, "organ": rng.uniform(20, 120), "hole": rng.uniform(-950, -700),
              "bone": rng.uniform(300, 1500)}
    hu = np.full(shape, -1000.0, dtype=np.float32)
    inside = _insides(rng, y, x, body, values)
    hu[body] = inside[body]
    for arm in arms:
        hu[arm & ~body] = rng.uniform(20, 60)
    lowest = y[body].max() if body.any() else 0.5
    prone = not head and rng.random() < 0.25
    highest = float(y[body].min()) if body.any() else -0.5
    support = _support(rng, y, x, float(lowest), head, highest if prone else None) & ~body
    hu[support] = rng.uniform(-300, 400)
    if prone and support.any() and rng.random() < 0.7:  # a hollow shell: thin walls, foam or air inside
        inside = support & ndimage.binary_erosion(support, iterations=int(rng.integers(2, 5)))
        hu[inside] = rng.uniform(-1000, -600)
    mask = body | support
    for arm in arms:
        mask |= arm
    hu += rng.normal(0, rng.uniform(5, 40), shape)
    hu = ndimage.gaussian_filter(hu, rng.uniform(0.3, 1.0))
    if rng.random() < 0.5:  # round field of view, padded outside
        fov = x ** 2 + y ** 2 > rng.uniform(0.85, 1.0) ** 2
        hu[fov] = rng.choice([-3024.0, -2048.0, -2000.0, -1024.0])
        mask &= ~fov
    signed = bool(rng.random() < 0.5)
    intercept = 0.0 if signed else -1024.0
    if hu.min() < -1024 and not signed:
        intercept = -3024.0 if hu.min() < -2048 else -2048.0
    bits = int(rng.choice([12, 16]))
    slope = 0.5 if bits == 16 and rng.random() < 0.3 else 1.0  # 12 bits hold -1024..3071 HU at most
    stored = np.round((hu - intercept) / slope)
    return _finish(stored, mask, "CT", bits, signed, slope, intercept, False)


def _mr(rng: np.random.Generator, shape: tuple[int, int]) -> Phantom:
    y, x = _grid(shape)
    head = rng.random() < 0.4
    body, arms = _body(rng, y, x, head)
    dark = not head and rng.random() < 0.35  # dark muscle under a bright fat rim (shoulder, thorax)
    if dark:
        body = _blob(rng, y, x, rng.uniform(-0.6, 0.6), rng.uniform(-0.6, 0.6), rng.uniform(0.7, 1.3),
                     rng.uniform(0.7, 1.3), wobble=0.15)
        arms = []
    scale = rng.uniform(200, 3000)
    values = {"tissue": scale * (rng.uniform(0.08, 0.3) if dark else 1.0),
              "fat": scale * rng.uniform(0.5, 1.8), "organ": scale * rng.uniform(0.3, 1.5),
              "hole": scale * rng.uniform(0.0, 0.15), "bone": scale * rng.uniform(0.05, 0.4)}
    image = _insides(rng, y, x, body, values)
    mask = body.copy()
    for arm in arms:
        image[arm & ~body] = scale * rng.uniform(0.5, 1.2)
        mask |= arm
    image *= _smooth_field(rng, shape, rng.uniform(0.1, 0.6))
    sigma = scale * rng.uniform(0.01, 0.06)
    image = np.hypot(image + rng.normal(0, sigma, shape), rng.normal(0, sigma, shape))  # Rician
    image = ndimage.gaussian_filter(image, rng.uniform(0.3, 1.2))
    bits = int(rng.choice([8, 12, 16]))
    stored = image * ((1 << bits) - 1) * rng.uniform(0.3, 0.9) / max(image.max(), 1e-6)
    return _finish(np.round(stored), mask, "MR", bits, bool(rng.random() < 0.2), 1.0, 0.0, False)


def _cr(rng: np.random.Generator, shape: tuple[int, int]) -> Phantom:
    y, x = _grid(shape)
    chest = rng.random() < 0.5
    if chest:  # a chest, often filling the field
        big = rng.random() < 0.5
        part = _blob(rng, y, x, rng.uniform(-0.1, 0.2), rng.uniform(-0.1, 0.1),
                     rng.uniform(1.0, 1.6) if big else rng.uniform(0.6, 1.2),
                     rng.uniform(0.8, 1.3) if big else rng.uniform(0.4, 0.8))
    else:  # a limb, often cut by the border
        angle = rng.uniform(-0.3, 0.3)
        across = x * np.cos(angle) - y * np.sin(angle) - rng.uniform(-0.3, 0.3)
        part = np.abs(across) < rng.uniform(0.1, 0.3) + 0.04 * np.sin(y * rng.uniform(2, 6))
    thickness = ndimage.distance_transform_edt(part)
    attenuation = np.sqrt(thickness / max(thickness.max(), 1)) * rng.uniform(0.4, 0.8)
    bones = _blob(rng, y, x, rng.uniform(-0.3, 0.3), rng.uniform(-0.1, 0.1), rng.uniform(0.1, 0.6), rng.uniform(0.03, 0.12)) & part
    attenuation[bones] += rng.uniform(0.1, 0.3)
    if chest and rng.random() < 0.7:  # lung fields: dark in display, inside the body
        for side in (-1, 1):
            lung = _blob(rng, y, x, rng.uniform(-0.2, 0.1), side * rng.uniform(0.2, 0.35),
                         rng.uniform(0.3, 0.5), rng.uniform(0.12, 0.22)) & part
            attenuation[lung] *= rng.uniform(0.2, 0.5)
    exposure = np.exp(-3 * attenuation) * _smooth_field(rng, shape, rng.uniform(0.05, 0.3))
    mask = part.copy()
    image = 1 - exposure  # displayed sense: anatomy bright, direct exposure dark
    image += rng.normal(0, rng.uniform(0.005, 0.03), shape)
    image = ndimage.gaussian_filter(image, rng.uniform(0.5, 1.5))
    if rng.random() < 0.5:  # collimator shutters: unexposed, bright, no anatomy
        for edge in rng.choice(4, size=int(rng.integers(1, 5)), replace=False):
            band = _band(shape, int(edge), rng.uniform(0.03, 0.3))
            image[band] = rng.uniform(0.85, 1.0)
            mask &= ~band
    bits = int(rng.choice([10, 12, 15, 16]))
    monochrome1 = bool(rng.random() < 0.5)
    image = np.clip(image, 0, 1)
    if monochrome1:
        image = 1 - image
    return _finish(np.round(image * ((1 << bits) - 1)), mask, "CR", bits, False, 1.0, 0.0, monochrome1)


def _band(shape: tuple[int, int], edge: int, width: float) -> np.ndarray:
    """A strip of ``width`` (fraction of the side) along edge 0 top, 1 bottom, 2 left, 3 right."""
    band = np.zeros(shape, dtype=bool)
    rows, cols = int(shape[0] * width), int(shape[1] * width)
    [band[:rows], band[-rows:], band[:, :cols], band[:, -cols:]][edge][...] = True
    return band


def _finish(stored: np.ndarray, mask: np.ndarray, modality: str, bits: int, signed: bool,
            slope: float, intercept: float, monochrome1: bool) -> Phantom:
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if signed and modality != "CT":
        stored = stored - (1 << (bits - 1)) // 2  # signed MR: values on both sides of zero
    dtype: type[np.integer] = np.int16 if signed else np.uint16
    if bits == 8:
        dtype = np.int8 if signed else np.uint8
    return Phantom(np.clip(stored, lo, hi).astype(dtype), mask, modality, bits, signed,
                   slope, intercept, monochrome1)
