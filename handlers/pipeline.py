"""The ordered protect pipeline, built from node.toml's [pipeline] and [handlers.*] tables."""

from __future__ import annotations

import copy
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydicom import Dataset

from stegonode.codecs.keys import NodeKeys
from stegonode.errors import ConfigError

from .admission import Policy, check_admissible, pixel_carrier_obstacle
from .base import Handler, Instance, keyword_tags
from .deidentify import deidentify
from .embed import Protection
from .header import mac_key
from .pixels import keep_pixels, read_pixels, write_pixels
from .pseudonyms import Pseudonymizer
from .registry import HANDLERS
from .seal import CARRIERS, HeaderRecipient

DEFAULT_ORDER = ("collect", "seal", "segment", "embed", "deidentify")


class Pipeline:
    """Runs handlers in order over one instance; then each writes its own block, and the
    pixels are encoded."""

    def __init__(self, handlers: Sequence[Handler], policy: Policy = Policy()) -> None:
        _check_order([(handler.name, handler.requires) for handler in handlers])
        self.handlers = list(handlers)
        self.policy = policy

    def admit(self, ds: Dataset) -> None:
        """Raise the InputError that refuses ``ds`` before any work (header checks only)."""
        check_admissible(ds, self.policy)

    def protect(self, ds: Dataset) -> Instance:
        """Protect ``ds`` in place; return the instance with its report and timings.

        An object whose pixels cannot carry the identity (no pixels, a SEG's or a dose grid's,
        colour, too small: :func:`pixel_carrier_obstacle`) gets the header carrier alone: the
        handlers that work on pixels (``needs_pixels``) do not run for it, and its pixels are
        stored as received."""
        start = time.perf_counter()
        self.admit(ds)
        obstacle = pixel_carrier_obstacle(ds)
        instance = Instance(dataset=ds, pixels=None if obstacle else read_pixels(ds))
        if obstacle:
            instance.report["pixel_obstacle"] = obstacle
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
        if instance.pixels is None:
            keep_pixels(ds)
        else:
            write_pixels(ds, instance.pixels)
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        instance.timings["encode"] = time.perf_counter() - start
        return instance


def _check_order(stages: Sequence[tuple[str, Sequence[str]]]) -> None:
    """Each stage after the stages it requires, and only once."""
    seen: set[str] = set()
    for name, requires in stages:
        if name in seen:
            raise ConfigError(f"pipeline.handlers: {name!r} appears more than once")
        missing = [r for r in requires if r not in seen]
        if missing:
            raise ConfigError(f"pipeline.handlers: {name!r} needs {', '.join(missing)} before it")
        seen.add(name)


def check_pipeline(order: Sequence[str], settings: Mapping[str, Mapping],
                   carriers: Sequence[str] = CARRIERS) -> None:
    """Everything node.toml's ``[pipeline]`` and ``[handlers.*]`` tables may get wrong, without
    loading a model or reading a key: the one validation, which node.toml's loader runs before
    anything starts (and :func:`build_pipeline` again for callers that skip the loader)."""
    unknown = [name for name in order if name not in HANDLERS]
    if unknown:
        raise ConfigError(f"pipeline.handlers: unknown handler(s) {unknown}; known: {list(HANDLERS)}")
    _check_order([(name, HANDLERS[name].requires) for name in order])
    _check_carriers(carriers)
    for name in HANDLERS:
        if name in settings:
            HANDLERS[name].check(settings)


def _check_carriers(carriers: Sequence[str]) -> None:
    if not carriers or len(set(carriers)) != len(carriers) or set(carriers) - set(CARRIERS):
        raise ConfigError(f"pipeline.carriers = {list(carriers)!r}; give one or both of "
                          f"{', '.join(repr(c) for c in CARRIERS)}, each once")


@dataclass
class PipelineContext:
    """What handlers are built from: node.toml's ``[handlers.*]`` tables, the node's keys, the
    carriers; and what several handlers share, made once (pseudonyms, de-identification, the
    header carrier's recipient)."""

    settings: Mapping[str, Mapping[str, Any]]
    keys: NodeKeys
    carriers: Sequence[str]

    @functools.cached_property
    def pseudonyms(self) -> Pseudonymizer:
        return Pseudonymizer(self.keys.pseudonym_key)

    @functools.cached_property
    def deidentifier(self) -> Callable[[Dataset], None]:
        extra = keyword_tags(self.settings["collect"]["extra_attributes"], "handlers.collect.extra_attributes")
        return functools.partial(deidentify, pseudonyms=self.pseudonyms, extra=extra)

    @functools.cached_property
    def header(self) -> HeaderRecipient | None:
        return header_recipient(self.carriers, self.keys)


def header_recipient(carriers: Sequence[str], keys: NodeKeys) -> HeaderRecipient | None:
    """What the header carrier needs, when it is configured and node.keys has a certificate.

    Key files from before the header carrier have no certificate: they keep working, with the
    pixel carrier only (callers say so once). Only "header" and no certificate is an error.
    """
    _check_carriers(carriers)
    if "header" not in carriers:
        return None
    if keys.certificate is None:
        if "pixels" not in carriers:
            raise ConfigError("pipeline.carriers = ['header'] needs a certificate in node.keys "
                              "(stegonode keygen writes one; --certificate CERT.pem takes yours)")
        return None
    return HeaderRecipient(keys.certificate, mac_key(keys.embedding_key))


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
    order: Sequence[str], settings: Mapping[str, Mapping], keys: NodeKeys,
    carriers: Sequence[str] = CARRIERS,
) -> Pipeline:
    """Handlers named in ``order`` (from the registry), configured from node.toml's
    ``[handlers.*]`` tables, writing the ``carriers`` node.toml's ``[pipeline] carriers`` names
    (the header carrier only with a certificate in node.keys)."""
    check_pipeline(order, settings, carriers)
    context = PipelineContext(settings, keys, carriers)
    return Pipeline([HANDLERS[name].from_config(context) for name in order],
                    Policy.of(settings, context.header is not None))


def configured_pipeline(
    config: Mapping[str, Any], keys: NodeKeys, cipher: str | None = None, segmenter: str | None = None
) -> Pipeline:
    """node.toml's pipeline; with ``cipher``, encrypting last with that cipher; with ``segmenter``,
    that segmenter instead of the configured one (the options of ``stegonode protect``)."""
    settings = copy.deepcopy(dict(config["handlers"]))
    order = list(config["pipeline"]["handlers"])
    if cipher is not None:
        settings["encrypt"]["cipher"] = cipher
        order = [name for name in order if name != "encrypt"] + ["encrypt"]
    if segmenter is not None:
        settings["segment"]["segmenter"] = segmenter
    return build_pipeline(order, settings, keys, config["pipeline"]["carriers"])
