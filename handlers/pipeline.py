"""The ordered protect pipeline, built from node.toml's [pipeline] and [handlers.*] tables."""

from __future__ import annotations

import dataclasses
import functools
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from pydicom import Dataset
from pydicom.uid import UID, ExplicitVRLittleEndian

from stegonode.codecs.keys import NodeKeys
from stegonode.codecs.settings import Settings, parse
from stegonode.dicom.codestream import StreamError
from stegonode.dicom.colour import cover_pixels, is_colour
from stegonode.dicom.pixels import MAX_DECODED_BYTES, ReceivedPixels, decompress, drop_offset_tables, keep_pixels
from stegonode.dicom.pseudonyms import Pseudonymizer
from stegonode.errors import InputError

from .admission import Policy as AdmissionPolicy
from .admission import check_admissible, check_object_size, pixel_carrier_obstacle
from .base import Handler, Instance
from .compression import release_encoded, storage_syntax, store_pixels
from .registry import HANDLERS
from .residual import Identity
from .settings import CARRIERS, DEFAULT_ORDER, PipelineSettings, handlers_model

if TYPE_CHECKING:  # an annotation only: the pipeline imports no handler (the registry has them)
    from stegonode.handlers.protection import Protection

T = TypeVar("T")

__all__ = ["DEFAULT_ORDER", "Pipeline", "PipelineContext", "build_pipeline", "pipeline_for", "configured_pipeline"]



class Pipeline:
    """Runs handlers in order over one instance; then each writes its own block, and the
    pixels are encoded in ``transfer_syntax`` (lossless; see :mod:`.compression`)."""

    def __init__(self, handlers: Sequence[Handler], policy: AdmissionPolicy = AdmissionPolicy(),
                 transfer_syntax: UID = ExplicitVRLittleEndian, max_object_bytes: int = MAX_DECODED_BYTES) -> None:
        self.handlers = list(handlers)
        self.policy = dataclasses.replace(policy, encrypting=any(h.name == "encrypt" for h in handlers))
        self.transfer_syntax = transfer_syntax
        self.max_object_bytes = max_object_bytes  # objects larger, received or decoded, are refused

    def admit(self, ds: Dataset) -> None:
        """Raise the InputError that refuses ``ds`` before any work (header checks only)."""
        check_admissible(ds, self.policy, self.max_object_bytes)

    def check_size(self, size: int) -> None:
        """Raise the RefusedError for an object of ``size`` bytes over node.max_object_mb, before it is read."""
        check_object_size(size, self.max_object_bytes)

    def run(self, ds: Dataset) -> Instance:
        """Run the handlers over ``ds``, admitted (:meth:`admit`), and encode its pixels, in place;
        return the instance with its report and timings. Only
        :func:`stegonode.handlers.protect.protect_object` calls this: it reads and admits the
        object, and keeps one that is protected already as it is.

        An object whose pixels cannot carry the identity (no pixels, a SEG's or a dose grid's,
        palette colour, too small: :func:`pixel_carrier_obstacle`) gets the header carrier alone: the
        handlers that work on pixels (``needs_pixels``) do not run for it, and its pixels are
        stored as received. So are compressed pixels that protection leaves unchanged (no room
        for the pixel carrier, no pixel encryption): the received bytes in their transfer
        syntax, neither decoded nor re-encoded (:class:`ReceivedPixels`). Kept compressed pixels
        lose the informative marker segments of their codestreams (comments, application
        segments: :mod:`stegonode.dicom.codestream`); a stream that does not walk, or whose
        segments kept for decoding hold an identity value, is not kept (:func:`_without_segments`)."""
        start = time.perf_counter()
        obstacle = pixel_carrier_obstacle(ds, self.policy.encrypting)
        received = ReceivedPixels.of(ds)
        # as received: the values a kept segment must not hold (only a compressed stream has any)
        identity = Identity.deferred(ds) if received is not None else None
        instance = Instance(dataset=ds, pixels=None if obstacle else cover_pixels(ds))
        # The cover by weak reference: which pixels are unchanged, without holding them (once
        # embedding replaces them they go, as the stated memory bound counts).
        cover = weakref.ref(instance.pixels) if instance.pixels is not None else None
        if obstacle:
            instance.report["pixel_obstacle"] = obstacle
        elif not is_colour(ds):  # a colour image's chroma is read again when its pixels are stored
            release_encoded(ds)  # store_pixels writes new pixel data: the received bytes can go
        instance.timings["decode"] = time.perf_counter() - start
        for handler in self.handlers:
            if obstacle and getattr(handler, "needs_pixels", False):
                continue
            start = time.perf_counter()
            handler(instance)
            instance.steps.append(handler.name)
            instance.timings[handler.name] = time.perf_counter() - start
        start = time.perf_counter()
        for handler in self.handlers:
            handler.finish(instance)
        unchanged = instance.pixels is None or (
            cover is not None and instance.pixels is cover() and instance.encryption is None)
        kept = (_without_segments(received, identity, instance)
                if received is not None and identity is not None and unchanged else None)
        if instance.pixels is None:
            keep_pixels(ds)  # header carrier alone: pixels as received, in their transfer syntax
            if kept is not None:
                kept.restore(ds)  # less their informative marker segments
            elif received is not None:  # a stream not kept: decoded (never decoded for the pixel carrier)
                _decoded_instead(ds, str(instance.report["codestream_not_kept"]))
        elif kept is not None:
            kept.restore(ds)  # no pixel written: the compressed bytes as received, less informative segments
        else:  # pixels written, or a stream not kept: encoded losslessly
            store_pixels(ds, instance.pixels, self.transfer_syntax)
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        instance.timings["encode"] = time.perf_counter() - start
        return instance


def _without_segments(received: ReceivedPixels, identity: Callable[[], Identity],
                      instance: Instance) -> ReceivedPixels | None:
    """``received`` without the informative marker segments of its codestreams, their number in
    the report; None, with the reason in the report, when the stream must not be kept: it does
    not walk, or a segment kept because decoding reads it holds one of the object's identity values."""
    try:
        kept, stripped = received.stripped()
    except StreamError as exc:
        instance.report["codestream_not_kept"] = str(exc)
        return None
    if any(identity().found_in(segment) for segment in stripped.kept):
        instance.report["codestream_not_kept"] = "an identity value in a marker segment decoding reads"
        return None
    if stripped.removed:
        instance.report["codestream_segments_removed"] = stripped.removed
    return kept


def _decoded_instead(ds: Dataset, reason: str) -> None:
    """The safe path for pixels the header carrier alone leaves unchanged whose codestream is
    not kept: decoded and stored uncompressed (as a viewer shows them), or refused."""
    try:
        decompress(ds)
    except InputError:
        raise InputError(f"compressed pixel data not kept ({reason}) and it does not decode") from None
    drop_offset_tables(ds)


@dataclass
class PipelineContext:
    """What handlers are built from: node.toml's ``[handlers.*]`` tables, the node's keys, the
    carriers; and what several handlers share, made once (:meth:`shared`; the pseudonyms)."""

    settings: Any  # the [handlers] tables, validated (handlers_model()); plain ones are validated here
    keys: NodeKeys
    carriers: Sequence[str]
    _shared: dict[Callable[..., Any], Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.settings, Settings):
            self.settings = parse(handlers_model(), _document(self.settings), "handlers")

    @functools.cached_property
    def pseudonyms(self) -> Pseudonymizer:
        return pseudonymizer(self.settings, self.keys)

    def shared(self, make: Callable[[PipelineContext], T]) -> T:
        """What several handlers share, made once per pipeline by ``make``, a function of the
        handler module that owns it (de-identification, the recipients, the header carrier)."""
        if make not in self._shared:
            self._shared[make] = make(self)
        return self._shared[make]


def pseudonymizer(settings: Any, keys: NodeKeys) -> Pseudonymizer:
    """The node's keyed mapping, as node.toml's ``[handlers.*]`` tables configure it (Retain
    UIDs keeps every UID): what the pipeline, and the receivers naming jobs by new UID, share."""
    return Pseudonymizer(keys.pseudonym_key, retain_uids="retain_uids" in settings["deidentify"]["options"])


def describe_carriers(protection: Protection) -> str:
    """The carriers an object has, for index, status and log: "pixels+header", "header", or
    "pixels(core)+header" when the pixels carry only the core attributes."""
    carriers = "+".join(protection.carriers)
    if "pixels" in protection.carriers and protection.pixel_attributes == "core":
        carriers = carriers.replace("pixels", "pixels(core)")
    return carriers


def pixels_only_notice(carriers: Sequence[str], keys: NodeKeys) -> str | None:
    """What to say once at start when the header carrier is configured but cannot be written."""
    if "header" in carriers and "pixels" in carriers and keys.certificate is None:
        return ("node.keys has no certificate (written before the header carrier existed): objects "
                "get the pixel carrier only, and images too small for it are refused; "
                "'stegonode keygen DIR' writes new keys with one")
    return None


def build_pipeline(
    order: Sequence[str], settings: Any, keys: NodeKeys,
    carriers: Sequence[str] = CARRIERS, transfer_syntax: str = "explicit-vr-little-endian",
    max_object_bytes: int = MAX_DECODED_BYTES,
) -> Pipeline:
    """Handlers named in ``order`` (from the registry), configured from node.toml's
    ``[handlers.*]`` tables, writing the ``carriers`` node.toml's ``[pipeline] carriers`` names
    (the header carrier only with a certificate in node.keys), storing pixels in
    ``transfer_syntax`` (a ``[storage] transfer_syntax`` choice).

    For callers with tables of their own (tests, benchmarks, the report): ``order``,
    ``carriers`` and ``settings`` (validated tables, or plain ones) are validated by the models
    node.toml's loader uses. The node builds from its validated configuration (:func:`pipeline_for`).
    """
    pipeline = parse(PipelineSettings, {"handlers": tuple(order), "carriers": tuple(carriers)}, "pipeline")
    model = handlers_model()
    tables = settings if isinstance(settings, model) else parse(model, _document(settings), "handlers")
    return _build(pipeline, tables, keys, storage_syntax(transfer_syntax), max_object_bytes)



def _document(settings: Any) -> Any:
    """Plain tables of ``settings`` (which may hold validated tables)."""
    if isinstance(settings, Settings):
        return settings.model_dump()
    if isinstance(settings, Mapping):
        return {key: _document(value) for key, value in settings.items()}
    return settings


def _build(pipeline: PipelineSettings, settings: Any, keys: NodeKeys, transfer_syntax: UID,
           max_object_bytes: int) -> Pipeline:
    """The pipeline of validated tables: nothing is checked again."""
    context = PipelineContext(settings, keys, pipeline.carriers)
    handlers = [HANDLERS[name].from_config(context) for name in pipeline.handlers]
    header = any(HANDLERS[name].carries_header(context) for name in pipeline.handlers)
    return Pipeline(handlers, AdmissionPolicy.of(settings, header), transfer_syntax, max_object_bytes)


def pipeline_for(config: Any, keys: NodeKeys) -> Pipeline:
    """The pipeline node.toml describes (:func:`stegonode.node.config.load`): its handlers,
    carriers and stored transfer syntax."""
    return _build(config.pipeline, config.handlers, keys, storage_syntax(config.storage.transfer_syntax),
                  max_object_bytes(config))


def max_object_bytes(config: Any) -> int:
    """node.toml's ``[node] max_object_mb`` in bytes."""
    return int(config.node.max_object_mb) << 20


def configured_pipeline(config: Any, keys: NodeKeys, cipher: str | None = None,
                        segmenter: str | None = None) -> Pipeline:
    """node.toml's pipeline; with ``cipher``, encrypting last with that cipher; with ``segmenter``,
    that segmenter instead of the configured one (the options of ``stegonode protect`` and of
    the console's forms, validated here as node.toml's keys are)."""
    if cipher is None and segmenter is None:
        return pipeline_for(config, keys)
    settings = config.handlers.model_dump()
    order = list(config.pipeline.handlers)
    if cipher is not None:
        settings["encrypt"]["cipher"] = cipher
        order = [name for name in order if name != "encrypt"] + ["encrypt"]
    if segmenter is not None:
        settings["segment"]["segmenter"] = segmenter
    return build_pipeline(order, settings, keys, config.pipeline.carriers, config.storage.transfer_syntax,
                          max_object_bytes(config))
