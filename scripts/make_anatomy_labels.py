"""Draft the anatomy labels in tests/labels; each was then reviewed by eye on its overlay.

The labels mark what protection must never change (anatomy, and on CT whatever is denser than
-500 HU: table, cables, markers). They serve the real-image safety tests (tests/test_realdata.py)
and benchmarks/realdata.py. Drafts, by the kind of image:

* CT: Hounsfield units above -500, holes filled (body, table, markers of any size).
* MR, CR, DX: the windowed frame above its clip level, closed and filled, components of 16
  pixels or more, grown by 2 pixels to the skin's faint edge.
* every other modality (XA, PT, MG, US, NM, OT): all but the constant darkest region connected
  to the border (collimator, padding): a reviewer found no anatomy in those regions.

Per-image corrections a reviewer asked for are in CORRECTIONS; RG1 and RG3 start from the
segmenter's reviewed labels (models/labels) and are corrected here. Multi-frame images get one
label, the union over frames (the collimator does not move). Run from the repository root:
.venv/bin/python scripts/make_anatomy_labels.py [--overlays DIR]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from scipy import ndimage

from stegonode.dicom.display import CT_THRESHOLD_HU, has_hounsfield_units, hounsfield_units
from stegonode.dicom.pixels import read_pixels
from stegonode.segmenters.classical import large_components
from stegonode.segmenters.maskrcnn import NETWORK_MODALITIES, windowed
from stegonode.segmenters.padding import PaddingSegmenter
from stegonode.training.segdata import write_mask, write_overlay

LABELS = Path(__file__).resolve().parent.parent / "tests" / "labels"
REALDATA = Path(__file__).resolve().parent.parent.parent / "shared" / "realdata"
ROUND_TRIP_EXTRA = ("JPEG-LL.dcm", "JPEG2000.dcm", "JPEG2000_UNC.dcm", "JPGExtended.dcm",
                    "JPGLosslessP14SV1_1s_1f_8b.dcm", "image_dfl.dcm")  # modalities other than CT, MR, CR, DX


def draft(ds: pydicom.Dataset, pixels: np.ndarray) -> np.ndarray:
    """The draft label of every frame, united."""
    if has_hounsfield_units(ds):
        masks = [ndimage.binary_fill_holes(hounsfield_units(ds, f.astype(np.float32)) > CT_THRESHOLD_HU)
                 for f in pixels]
    elif str(ds.get("Modality", "")) in NETWORK_MODALITIES:
        masks = [_signal(frame) for frame in windowed(ds, pixels)]
    else:
        masks = list(PaddingSegmenter().foreground(ds, pixels))
    return np.logical_or.reduce(masks)


def _signal(image: np.ndarray) -> np.ndarray:
    mask = ndimage.binary_fill_holes(ndimage.binary_closing(image > 0, iterations=3) | (image > 0))
    return ndimage.binary_dilation(large_components(mask, 16), iterations=2)


def _without_specks_or_closing(label: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Axial abdomen MR survey: noise and ghosts above the clip level are not body, and the
    closing bridged the air between the right arm and the flank: no closing, no specks."""
    mask = ndimage.binary_fill_holes(image > 0)
    return ndimage.binary_dilation(large_components(mask, 300), iterations=2)


def _air_above_shoulder(label: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Chest CR (air shows bright): above the bright air over each shoulder, up to the top edge,
    is air and the detector's stair-step edge strip, not body; so are the strip along the right
    edge beside the air (rows 0-199, from column 1814; columns 0-2 on the left) and the top 20
    rows: the collimator's shadow, rising smoothly from the darkest values at row 0."""
    out = label.copy()
    hole = ndimage.binary_fill_holes(label) & ~label
    for column in np.flatnonzero(hole.any(axis=0)):
        out[: hole[:, column].argmax(), column] = False
    out[:60, :200] = False  # above the air over the left shoulder (which touches the left edge)
    out[:200, 1814:] = False
    out[1940:, :14] = False  # the detector's corner, bottom left
    out[:140, :3] = False  # the air over the left shoulder reaches the left edge
    out[:20] = False
    return out


def _marker_bowl(label: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Leg CR: the inside of the lead "R" marker's bowl (rows 1395-1429, columns 1165-1211) is
    background enclosed by the letter, not body."""
    out = label.copy()
    out[1395:1430, 1165:1212] = False
    return out


# Per image: (draft or models/labels label, windowed first frame) -> reviewed label. RG1 and RG3
# start from the segmenter's reviewed labels in models/labels, corrected for this safety test.
CORRECTIONS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "mr_fodicom_2": _without_specks_or_closing,
    "RG1_UNCR": _air_above_shoulder,
    "RG3_UNCR": _marker_bowl,
}
FROM_MODEL_LABELS = ("RG1_UNCR.dcm", "RG3_UNCR.dcm")


def sources() -> list[Path]:
    from pydicom.data import get_testdata_file

    names = ROUND_TRIP_EXTRA + FROM_MODEL_LABELS
    return sorted(REALDATA.glob("*.dcm")) + [Path(get_testdata_file(name)) for name in names]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--overlays", type=Path, help="also write overlays for review")
    args = parser.parse_args()
    LABELS.mkdir(parents=True, exist_ok=True)
    for path in sources():
        ds = pydicom.dcmread(path)
        pixels = read_pixels(ds)
        image = windowed(ds, pixels[:1])[0]
        if path.name in FROM_MODEL_LABELS:
            label = np.asarray(Image.open(LABELS.parent.parent / "models" / "labels" / f"{path.stem}.png")) > 127
        else:
            label = draft(ds, pixels)
        if path.stem in CORRECTIONS:
            label = CORRECTIONS[path.stem](label, image)
        write_mask(LABELS / f"{path.stem}.png", label)
        if args.overlays:
            args.overlays.mkdir(parents=True, exist_ok=True)
            write_overlay(args.overlays / f"{path.stem}.png", image, label, max_side=512)
        print(f"{path.stem}: {label.mean():.1%} labelled")


if __name__ == "__main__":
    main()
