"""Training and held-out patches for the deep stego networks, made here from what ships on disk.

Covers: windowed crops of medical images, crops of natural photographs, procedural textures.
Secrets: crops of a chest radiograph and rendered QR codes. The caller hands in the images
(this module knows nothing of DICOM files); the held-out split is by image for covers (whole
images never seen in training), by region for the one chest radiograph (a strip never cropped
in training), and by random seed for textures and QR codes. Every patch is TILE x TILE, uint8.

Medical images come with two windowings:

* ``display``: their VOI window (jittered), as a reader would see them;
* ``unit``: one stored unit per 8-bit level around the patch's mean, which is how the ``deep``
  codec maps background tiles of high-bit-depth images (see codecs/deep.py).
"""

from __future__ import annotations

import string
from dataclasses import dataclass

import numpy as np
import qrcode

from stegonode.models.geometry import TILE

QR_LEVELS = (qrcode.constants.ERROR_CORRECT_L, qrcode.constants.ERROR_CORRECT_M,
             qrcode.constants.ERROR_CORRECT_Q, qrcode.constants.ERROR_CORRECT_H)
_ALPHANUMERIC = string.digits + string.ascii_uppercase + " $%*+-./:"


@dataclass(frozen=True)
class Medical:
    """A medical image as stored values (float, display sense) and its VOI window."""

    name: str
    pixels: np.ndarray
    center: float
    width: float


@dataclass(frozen=True)
class Sources:
    """The images patches are cut from, already split into training and held-out."""

    medical_train: tuple[Medical, ...]
    medical_heldout: tuple[Medical, ...]
    natural_train: tuple[tuple[str, np.ndarray], ...]  # grayscale, 8-bit units
    natural_heldout: tuple[tuple[str, np.ndarray], ...]
    chest_train: np.ndarray  # 8-bit units, display sense
    chest_heldout: np.ndarray


@dataclass(frozen=True)
class Patches:
    """Aligned cover and secret patches (n, TILE, TILE) uint8, with the kind of each."""

    covers: np.ndarray
    secrets: np.ndarray
    cover_kinds: np.ndarray
    secret_kinds: np.ndarray


def window(pixels: np.ndarray, center: float, width: float) -> np.ndarray:
    """Linear VOI window to 0..255 (PS3.3 C.11.2.1.2, without the half-unit offsets)."""
    return np.clip((pixels - (center - width / 2)) / max(width, 1.0) * 255, 0, 255)


def _crop(image: np.ndarray, rng: np.random.Generator, scale: int) -> np.ndarray:
    """A random TILE x TILE crop after ``scale`` x ``scale`` block averaging, randomly flipped."""
    side = TILE * scale
    r = rng.integers(0, image.shape[0] - side + 1)
    c = rng.integers(0, image.shape[1] - side + 1)
    patch = image[r : r + side, c : c + side].reshape(TILE, scale, TILE, scale).mean(axis=(1, 3))
    if rng.random() < 0.5:
        patch = patch[:, ::-1]
    return patch


def _scales(image: np.ndarray) -> list[int]:
    return [s for s in (1, 2, 4) if min(image.shape) >= TILE * s]


def medical_patches(images: tuple[Medical, ...], n: int, rng: np.random.Generator) -> np.ndarray:
    """Half display-windowed crops (window jittered by +-25 %), half unit-windowed crops."""
    out = np.empty((n, TILE, TILE))
    for i in range(n):
        image = images[rng.integers(len(images))]
        crop = _crop(image.pixels, rng, int(rng.choice(_scales(image.pixels))) if i % 2 == 0 else 1)
        if i % 2 == 0:
            center = image.center + rng.uniform(-0.25, 0.25) * image.width
            out[i] = window(crop, center, image.width * rng.uniform(0.75, 1.25))
        else:
            out[i] = np.clip(crop - np.floor(crop.mean()) + 128, 0, 255)
    return _to_uint8(out)


def photo_patches(images: tuple[tuple[str, np.ndarray], ...], n: int, rng: np.random.Generator) -> np.ndarray:
    """Crops of grayscale photographs at scales 1, 2 and 4."""
    out = np.empty((n, TILE, TILE))
    for i in range(n):
        image = images[rng.integers(len(images))][1]
        out[i] = _crop(image, rng, int(rng.choice(_scales(image))))
    return _to_uint8(out)


def chest_patches(image: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Crops of the chest radiograph at scales 1, 2 and 4, contrast jittered."""
    out = np.empty((n, TILE, TILE))
    for i in range(n):
        crop = _crop(image, rng, int(rng.choice(_scales(image))))
        gain = rng.uniform(0.8, 1.2)
        out[i] = np.clip((crop - 128) * gain + 128 + rng.uniform(-20, 20), 0, 255)
    return _to_uint8(out)


def textures(n: int, rng: np.random.Generator) -> np.ndarray:
    """Procedural covers: 1/f noise, white noise, gradients, stripes, shapes and flat fields."""
    makers = (_power_law_noise, _white_noise, _gradient, _stripes, _shapes, _flat)
    return _to_uint8(np.stack([makers[i % len(makers)](rng) for i in range(n)]))


def _power_law_noise(rng: np.random.Generator) -> np.ndarray:
    fy = np.fft.fftfreq(TILE)[:, None]
    fx = np.fft.fftfreq(TILE)[None, :]
    radius = np.hypot(fy, fx)
    radius[0, 0] = 1.0
    spectrum = (rng.normal(size=(TILE, TILE)) + 1j * rng.normal(size=(TILE, TILE))) / radius ** rng.uniform(0.5, 1.5)
    field = np.fft.ifft2(spectrum).real
    field = (field - field.mean()) / (field.std() + 1e-9)
    return rng.uniform(20, 235) + field * rng.uniform(3, 60)


def _white_noise(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0, 255) + rng.normal(size=(TILE, TILE)) * rng.uniform(1, 30)


def _gradient(rng: np.random.Generator) -> np.ndarray:
    y, x = np.mgrid[:TILE, :TILE] / TILE
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * x + np.sin(angle) * y
    return rng.uniform(0, 255) + ramp * rng.uniform(-150, 150) + rng.normal(size=(TILE, TILE)) * rng.uniform(0, 5)


def _stripes(rng: np.random.Generator) -> np.ndarray:
    y, x = np.mgrid[:TILE, :TILE]
    angle = rng.uniform(0, np.pi)
    wave = np.sin((np.cos(angle) * x + np.sin(angle) * y) * rng.uniform(0.05, 1.5) + rng.uniform(0, 6.3))
    if rng.random() < 0.5:
        wave = np.sign(wave)
    return rng.uniform(60, 195) + wave * rng.uniform(10, 60)


def _shapes(rng: np.random.Generator) -> np.ndarray:
    image = np.full((TILE, TILE), rng.uniform(0, 255))
    y, x = np.mgrid[:TILE, :TILE]
    for _ in range(rng.integers(1, 8)):
        cy, cx, radius = rng.uniform(0, TILE, 3) * (1, 1, 0.5)
        image[(y - cy) ** 2 + (x - cx) ** 2 < radius**2] = rng.uniform(0, 255)
    return image + rng.normal(size=(TILE, TILE)) * rng.uniform(0, 4)


def _flat(rng: np.random.Generator) -> np.ndarray:
    """Plain fields, often pure black or white (the seed's hardest covers)."""
    level = rng.choice([0.0, 255.0, rng.uniform(0, 255)])
    return np.full((TILE, TILE), level)


def qr_modules(rng: np.random.Generator) -> np.ndarray:
    """Module matrix (True = dark) of a QR code of random alphanumeric text and level."""
    level = QR_LEVELS[rng.integers(len(QR_LEVELS))]
    length = int(rng.integers(10, 600))
    text = "".join(rng.choice(list(_ALPHANUMERIC), length))
    qr = qrcode.QRCode(error_correction=level, box_size=1, border=0, mask_pattern=int(rng.integers(8)))
    qr.add_data(qrcode.util.QRData(text.encode("ascii"), mode=qrcode.util.MODE_ALPHA_NUM, check_data=False))
    qr.make(fit=True)
    return np.array(qr.modules, dtype=bool)


def qr_patches(n: int, rng: np.random.Generator) -> np.ndarray:
    """Crops of QR codes at 1 to 4 pixels per module, shifted at random over a light canvas.

    Two pixels per module, what the ``deep`` codec hides, comes up most. Each code serves about
    8 crops.
    """
    codes = [qr_modules(rng) for _ in range(max(1, n // 8))]  # rendering is the slow part
    out = np.empty((n, TILE, TILE), dtype=np.uint8)
    for i in range(n):
        modules = codes[rng.integers(len(codes))]
        scale = int(rng.choice([1, 2, 2, 3, 4]))
        picture = np.where(np.pad(modules, 4), 0, 255).repeat(scale, 0).repeat(scale, 1)
        canvas = np.pad(picture, TILE, constant_values=255)  # crops overlap it by >= TILE / 2
        top, left = rng.integers(TILE // 2, np.array(picture.shape) + TILE // 2 + 1)
        out[i] = canvas[top : top + TILE, left : left + TILE]
    return out


def _to_uint8(images: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(images, 0, 255)).astype(np.uint8)


def patches(sources: Sources, heldout: bool, n: int, seed: int) -> Patches:
    """``n`` cover/secret pairs of the training (or held-out) split, reproducible from ``seed``.

    Covers: 3/8 medical, 3/8 photographs, 1/4 textures. Secrets: half chest, half QR codes.
    Pairs are shuffled together, so a batch is a random mix.
    """
    rng = np.random.Generator(np.random.PCG64([seed, int(heldout)]))
    medical = sources.medical_heldout if heldout else sources.medical_train
    natural = sources.natural_heldout if heldout else sources.natural_train
    chest = sources.chest_heldout if heldout else sources.chest_train
    n_medical, n_photo = 3 * n // 8, 3 * n // 8
    n_texture = n - n_medical - n_photo
    covers = np.concatenate([
        medical_patches(medical, n_medical, rng),
        photo_patches(natural, n_photo, rng),
        textures(n_texture, rng),
    ])
    cover_kinds = np.repeat(["medical", "photo", "texture"], [n_medical, n_photo, n_texture])
    n_chest = n // 2
    secrets = np.concatenate([chest_patches(chest, n_chest, rng), qr_patches(n - n_chest, rng)])
    secret_kinds = np.repeat(["chest", "qr"], [n_chest, n - n_chest])
    order_c, order_s = rng.permutation(n), rng.permutation(n)
    return Patches(covers[order_c], secrets[order_s], cover_kinds[order_c], secret_kinds[order_s])
