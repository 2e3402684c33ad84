"""What flows through the pipeline, and what a handler is."""

from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, Protocol

import numpy as np
from pydicom import Dataset

if TYPE_CHECKING:  # annotations only: these modules import this one
    from .embed import Protection
    from .encrypt import CipherBlock
    from .header import HeaderCarrier
    from .segment import Segmenter


@dataclass
class Instance:
    """One DICOM instance on its way through the protect pipeline.

    Handlers read and fill these fields in pipeline order; ``report`` collects the figures a
    user sees (payload bytes, PSNR, changed pixels) and ``timings`` the seconds per handler.
    """

    dataset: Dataset
    pixels: np.ndarray  # stored values, (frames, rows, columns)
    attributes: Dataset | None = None  # the identifying attributes, as in the original header
    message: np.ndarray | None = None  # QR module matrix of the sealed payload
    # ... of the core attributes only, where it may be needed: sealed and rendered on first call
    # (most images take the full message, and a QR code costs milliseconds)
    core_message: Callable[[], np.ndarray] | None = None
    header_carrier: HeaderCarrier | None = None  # PS3.15 Encrypted Attributes, written last
    foreground: np.ndarray | None = None  # significant region, same shape as pixels
    foreground_levels: list[float | None] | None = None  # classical levels per frame (Segmentation)
    segmenter: Segmenter | None = None  # the segmenter that produced ``foreground``
    usable: np.ndarray | None = None  # where the codec could write: background less margin and guard
    protection: Protection | None = None  # what reveal needs: codec, parameters, key ids
    encryption: CipherBlock | None = None  # what decryption needs: cipher, nonce, tag
    report: dict[str, float | int | str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


class Handler(Protocol):
    """A pipeline stage. ``requires`` names stages that must run before it."""

    name: ClassVar[str]
    requires: ClassVar[tuple[str, ...]]

    def __call__(self, instance: Instance) -> None: ...
