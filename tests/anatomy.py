"""Real images beyond pydicom-data, their reviewed anatomy labels, and one protect-reveal check.

Used by tests/test_realdata.py and benchmarks/realdata.py: :func:`evaluate` protects an image
with a pipeline, reveals it with the peer's keys, and measures what a user relies on (changed
pixels inside the anatomy label, the densest changed CT value, exact identity or a refusal).
"""

from __future__ import annotations

import copy
import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image

from stegonode.codecs.keys import PeerKeys
from stegonode.dicom.display import has_hounsfield_units, hounsfield_units
from stegonode.dicom.pixels import read_pixels
from stegonode.errors import StegonodeError
from stegonode.handlers.pipeline import Pipeline
from stegonode.handlers.protect import protect_object
from stegonode.handlers.reveal import reveal
from stegonode.segmenters.maskrcnn import windowed
from stegonode.training import images

ROOT = Path(__file__).resolve().parents[1]
REALDATA = images.REALDATA
LABEL_DIRS = (ROOT / "tests" / "labels", ROOT / "models" / "labels")
# Transfer-syntax variants of one acquisition share its label (same rows, columns, anatomy).
_VARIANT = re.compile(r"_(J2KI|J2KR|UNCI)$")


realdata_images = images.realdata


def anatomy_label(path: Path, frames: int) -> np.ndarray:
    """The reviewed label of ``path``: boolean (frames, rows, columns), True on anatomy (and on
    CT whatever is denser than -500 HU). One PNG serves every frame unless per-frame PNGs
    (``<stem>_f<N>.png``) exist."""
    stem = _VARIANT.sub("_UNCR", path.stem)
    for folder in LABEL_DIRS:
        if (folder / f"{stem}.png").exists():
            label = _read(folder / f"{stem}.png")
            return np.repeat(label[None], frames, axis=0)
        if (folder / f"{stem}_f0.png").exists():
            return np.stack([_read(folder / f"{stem}_f{frame}.png") for frame in range(frames)])
    raise FileNotFoundError(f"no anatomy label for {path.name}: draw one (scripts/make_anatomy_labels.py)")


def _read(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path)) > 127


@dataclass
class Outcome:
    """One image through protect and reveal."""

    name: str
    modality: str
    segmenter: str = ""
    refused: str = ""  # the one-line reason, when protect refused the image
    revealed: bool = False  # reveal gave exactly the original identifying attributes
    error: str = ""  # reveal's error, when it failed
    changed: int = 0
    anatomy_changed: int = 0
    densest_changed_hu: float | None = None  # CT: the highest Hounsfield value that changed
    psnr_db: float = float("nan")
    usable_fraction: float = 0.0
    cover: np.ndarray | None = None
    stego: np.ndarray | None = None
    label: np.ndarray | None = None


def evaluate(path: Path, pipeline: Pipeline, keys: PeerKeys) -> Outcome:
    original = pydicom.dcmread(path)
    outcome = Outcome(path.name, str(original.get("Modality", "")))
    ds = copy.deepcopy(original)
    try:
        cover = read_pixels(ds).copy()
        instance = protect_object(ds, pipeline).instance
    except StegonodeError as exc:
        outcome.refused = str(exc)
        return outcome
    stego_ds = pydicom.dcmread(_saved(ds))
    stego = read_pixels(stego_ds)
    label = anatomy_label(path, len(cover))
    changed = stego != cover
    outcome.segmenter = str(instance.report["segmenter"])
    outcome.changed = int(changed.sum())
    outcome.anatomy_changed = int((changed & label).sum())
    outcome.psnr_db = float(instance.report["psnr_db"])
    outcome.usable_fraction = float(instance.usable.mean())
    if has_hounsfield_units(original) and changed.any():
        outcome.densest_changed_hu = float(hounsfield_units(original, cover[changed].astype(np.float32)).max())
    outcome.cover, outcome.stego, outcome.label = cover, stego, label
    try:
        attributes = reveal(stego_ds, keys).attributes
        outcome.revealed = all(_same(element.value, original[element.tag].value) for element in attributes)
    except StegonodeError as exc:
        outcome.error = str(exc)
    return outcome


def _same(revealed: object, original: object) -> bool:
    """Equal values; in sequences, group length elements (retired, PS3.5 7.2) do not count."""
    if isinstance(original, pydicom.Sequence):
        return isinstance(revealed, pydicom.Sequence) and len(revealed) == len(original) and all(
            _without_group_lengths(a) == _without_group_lengths(b) for a, b in zip(revealed, original, strict=True))
    return revealed == original


def _without_group_lengths(item: pydicom.Dataset) -> pydicom.Dataset:
    copy_ = pydicom.Dataset()
    for element in item:
        if element.tag.element != 0:
            copy_.add(element)
    return copy_


def _saved(ds: pydicom.Dataset) -> io.BytesIO:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    return buffer


def write_overlay(outcome: Outcome, original: pydicom.Dataset, path: Path, max_side: int = 768) -> None:
    """First frame in gray, the anatomy label's outline in green, changed pixels in red."""
    from scipy import ndimage

    gray = (np.clip(windowed(original, outcome.cover[:1])[0], 0, 1) * 255).astype(np.uint8)
    rgb = np.stack([gray] * 3, axis=-1)
    label = outcome.label[0]
    rgb[label ^ ndimage.binary_erosion(label, iterations=2)] = (0, 200, 0)
    rgb[outcome.stego[0] != outcome.cover[0]] = (255, 0, 0)
    image = Image.fromarray(rgb)
    image.thumbnail((max_side, max_side), Image.NEAREST)
    image.save(path)
