"""Protect one object: the one way in, for every place that protects.

The node's workers (:func:`stegonode.node.workers.protect_job`, which the Orthanc plugin's queue
mode runs too), the Orthanc plugin's callback mode, ``stegonode protect``, the console's uploads
and the report all call :func:`protect_object`, which does, in order:

1. decode: an object over node.max_object_mb is refused before it is read, then it is read
   whole (:func:`~stegonode.dicom.dicomfile.read_dicom`);
2. admission: what the node refuses from the header alone (:meth:`Pipeline.admit`);
3. the already-protected rule: a stegonode stego object (from a node or an Orthanc with the
   plugin) is stored as it is, since protecting it again would seal its pseudonyms over the
   identity it carries (:func:`keep_as_protected`);
4. the pipeline (:meth:`Pipeline.run`), for every other object;
5. encode: the stored object's bytes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydicom import Dataset
from pydicom.uid import UID

from stegonode.dicom.colour import carrier_pixels
from stegonode.dicom.dicomfile import dicom_bytes, read_dicom
from stegonode.dicom.pixels import keep_pixels
from stegonode.handlers.protection import already_protected, read_protection

from .base import Instance
from .compression import store_pixels
from .pipeline import Pipeline

Source = bytes | Path | Dataset


@dataclass
class Protected:
    """One object as it is stored: its data set and bytes, and how it got there."""

    dataset: Dataset
    data: bytes
    instance: Instance | None  # what the pipeline did; None: already protected, stored as it is
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def kept(self) -> bool:
        """Already a stegonode stego object: stored as it is, not protected again."""
        return self.instance is None

    @property
    def report(self) -> dict[str, float | int | str]:
        return {} if self.instance is None else self.instance.report


def protect_object(source: Source, pipeline: Pipeline,
                   before: Callable[[Dataset], None] | None = None) -> Protected:
    """``source`` (the bytes of a DICOM file, its path, or a data set already read, which is
    changed in place) protected by ``pipeline``, or kept as it is if it is protected already.

    ``before`` sees the admitted object just before the pipeline changes it (the console keeps
    the cover's pixels for its overlay). Raises what refuses the object: an InputError
    (RefusedError, UnsupportedImageError) before any pixel is decoded, any other StegonodeError
    from the pipeline; see :class:`stegonode.errors.Failure` for what to say and whether to retry.
    """
    start = time.perf_counter()
    ds = _read(source, pipeline)
    pipeline.admit(ds)
    if already_protected(ds):
        keep_as_protected(ds, pipeline.transfer_syntax)
        data = dicom_bytes(ds)
        return Protected(ds, data, None, {"keep": time.perf_counter() - start})
    read_s = time.perf_counter() - start
    if before is not None:
        before(ds)
    instance = pipeline.run(ds)
    instance.timings["decode"] += read_s
    start = time.perf_counter()
    data = dicom_bytes(ds)
    instance.timings["encode"] += time.perf_counter() - start
    return Protected(ds, data, instance, instance.timings)


def _read(source: Source, pipeline: Pipeline) -> Dataset:
    if isinstance(source, Dataset):
        return source
    if isinstance(source, Path):
        pipeline.check_size(source.stat().st_size)
    else:
        pipeline.check_size(len(source))
    return read_dicom(source)


def keep_as_protected(ds: Dataset, transfer_syntax: UID) -> None:
    """A peer's stego object (an Orthanc with the plugin, another node): pixels and header as
    they are, stored in the node's stored transfer syntax like every stored object (one with
    the header carrier alone keeps its pixels as received)."""
    if read_protection(ds).has_pixels:
        store_pixels(ds, carrier_pixels(ds), transfer_syntax)  # a colour image's samples as they are
    else:
        keep_pixels(ds)
