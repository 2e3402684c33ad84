"""Networks and shipped weights: the Mask R-CNN foreground segmenter (maskrcnn: the torch
network and its export; foreground: inference in numpy; morphology) and seed 000's deep stego
networks (deepnet: torch and export; deepstego: inference in numpy). Their training and data
are in :mod:`stegonode.training`.

The runtime runs the networks exported to ONNX (``*.onnx``, written by ``stegonode export-onnx``
from the torch weights ``*.pt``) through ONNX Runtime; torch is needed only to train and export
(the ``train`` extra). Nothing here reads DICOM files: handlers and codecs hand over arrays.
"""

from __future__ import annotations

import importlib.util

from stegonode.errors import MissingExtraError

TRAINING_EXTRA = ("torch", "torchvision", "onnx", "skimage")  # modules of pyproject's extra "train"


def require_training_extra(what: str) -> None:
    """Raise :class:`MissingExtraError` (saying how to install it) unless the ``train`` extra is there."""
    missing = [name for name in TRAINING_EXTRA if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtraError(what, missing)
