"""The ordered protect pipeline, built from node.toml's [pipeline] and [handlers.*] tables."""

from __future__ import annotations

import functools
import time
import copy
from collections.abc import Mapping, Sequence
from typing import Any

from pydicom import Dataset
from pydicom.datadict import tag_for_keyword
from pydicom.tag import BaseTag, Tag

from stegonode.codecs.errors import ConfigError
from stegonode.codecs.keys import NodeKeys

from .admission import check_admissible
from .base import Handler, Instance
from .collect import CollectHandler
from .deidentify import DeidentifyHandler, deidentify
from .embed import EmbedHandler, Protection, make_codec, write_protection
from .encrypt import EncryptHandler, write_cipher_block
from .header import mac_key, write_header_carrier
from .pixels import read_pixels, write_pixels
from .pseudonyms import Pseudonymizer
from .seal import CARRIERS, HeaderRecipient, SealHandler
from .segment import NOT_PIXEL_PROTECTED, SEGMENTERS, SegmenterPolicy, SegmentHandler, make_segmenter

DEFAULT_ORDER = ("collect", "seal", "segment", "embed", "deidentify")
HANDLER_TYPES: dict[str, type[Handler]] = {
    handler.name: handler
    for handler in (CollectHandler, SealHandler, SegmentHandler, EmbedHandler, DeidentifyHandler, EncryptHandler)
}


class Pipeline:
    """Runs handlers in order over one instance and writes the result into its dataset."""

    def __init__(self, handlers: Sequence[Handler], allow_burned_in_annotation: bool = False) -> None:
        _check_order([(handler.name, handler.requires) for handler in handlers])
        self.handlers = list(handlers)
        self.allow_burned_in_annotation = allow_burned_in_annotation

    def admit(self, ds: Dataset) -> None:
        """Raise the InputError that refuses ``ds`` before any work (header checks only)."""
        check_admissible(ds, self.allow_burned_in_annotation)

    def protect(self, ds: Dataset) -> Instance:
        """Protect ``ds`` in place; return the instance with its report and timings."""
        start = time.perf_counter()
        self.admit(ds)
        instance = Instance(dataset=ds, pixels=read_pixels(ds))
        instance.timings["decode"] = time.perf_counter() - start
        for handler in self.handlers:
            start = time.perf_counter()
            handler(instance)
            instance.timings[handler.name] = time.perf_counter() - start
        start = time.perf_counter()
        if instance.protection is not None:
            write_protection(ds, instance.protection)
            if "header" in instance.protection.carriers:
                write_header_carrier(ds, instance.header_carrier.envelope)
        if instance.encryption is not None:
            write_cipher_block(ds, instance.encryption)
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
    """Everything :func:`build_pipeline` refuses, without loading a model: cheap enough for
    the node to run before it listens (its workers build the pipeline itself)."""
    unknown = [name for name in order if name not in HANDLER_TYPES]
    if unknown:
        raise ConfigError(f"pipeline.handlers: unknown handler(s) {unknown}; known: {list(HANDLER_TYPES)}")
    _check_order([(name, HANDLER_TYPES[name].requires) for name in order])
    _check_carriers(carriers)
    _tags(settings["collect"]["extra_attributes"], "handlers.collect.extra_attributes")
    _tags(settings["seal"]["core_attributes"], "handlers.seal.core_attributes")
    if settings["segment"]["segmenter"] not in SEGMENTERS:
        raise ConfigError(f"handlers.segment.segmenter: unknown segmenter {settings['segment']['segmenter']!r}")
    codec_name = settings["embed"]["codec"]
    make_codec(codec_name, settings["embed"].get(codec_name, {}))


def _tags(keywords: Sequence[str], key: str) -> frozenset[BaseTag]:
    tags = set()
    for keyword in keywords:
        tag = tag_for_keyword(keyword) if isinstance(keyword, str) else None
        if tag is None:
            raise ConfigError(f"{key}: {keyword!r} is not a DICOM keyword")
        tags.add(Tag(tag))
    return frozenset(tags)


def _check_carriers(carriers: Sequence[str]) -> None:
    if not carriers or len(set(carriers)) != len(carriers) or set(carriers) - set(CARRIERS):
        raise ConfigError(f"pipeline.carriers = {list(carriers)!r}; give one or both of "
                          f"{', '.join(repr(c) for c in CARRIERS)}, each once")


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
    """Handlers named in ``order``, configured from node.toml's ``[handlers.*]`` tables, writing
    the ``carriers`` node.toml's ``[pipeline] carriers`` names (the header carrier only with a
    certificate in node.keys)."""
    check_pipeline(order, settings, carriers)
    pseudonyms = Pseudonymizer(keys.pseudonym_key)
    deidentifier = functools.partial(
        deidentify, pseudonyms=pseudonyms,
        extra=_tags(settings["collect"]["extra_attributes"], "handlers.collect.extra_attributes"),
    )
    segment = settings["segment"]
    codec_name = settings["embed"]["codec"]
    codec = make_codec(codec_name, settings["embed"].get(codec_name, {}))
    policy = SegmenterPolicy(
        validated=make_segmenter(segment["segmenter"]),
        modalities=frozenset(segment["validated_modalities"]),
        other=None if segment["other_modalities"] == NOT_PIXEL_PROTECTED else make_segmenter(segment["other_modalities"]),
    )
    header = header_recipient(carriers, keys)
    core = _tags(settings["seal"]["core_attributes"], "handlers.seal.core_attributes")
    factories = {
        "collect": lambda: CollectHandler(deidentifier),
        "seal": lambda: SealHandler(
            keys.recipient_public_key, pseudonyms, settings["seal"]["qr_error_correction"],
            header=header, pixels="pixels" in carriers, core=core,
        ),
        "segment": lambda: SegmentHandler(policy),
        "embed": lambda: EmbedHandler(
            codec, int(segment["margin"]), keys.embedding_key, keys.recipient_public_key,
        ),
        "deidentify": lambda: DeidentifyHandler(deidentifier),
        "encrypt": lambda: EncryptHandler(settings["encrypt"]["cipher"], keys.pixel_cipher_key),
    }
    return Pipeline([factories[name]() for name in order],
                    bool(settings["deidentify"]["allow_burned_in_annotation"]))


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
