"""The segmenter registry (``[handlers.segment] segmenter`` and ``other_modalities`` choose from
it; the protection block records the name and :meth:`~.base.Segmenter.params`, so reveal builds
the same segmenter with :func:`make_segmenter`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stegonode.codecs.registry import Registry
from stegonode.codecs.settings import parse

if TYPE_CHECKING:
    from .base import Segmenter

SEGMENTERS: Registry[Any] = Registry("segmenter", "handlers.segment.segmenter", (
    "stegonode.segmenters.classical", "stegonode.segmenters.maskrcnn", "stegonode.segmenters.padding",
))


def make_segmenter(name: str, params: dict | None = None) -> Segmenter:
    """The segmenter registered under ``name``, with ``params`` (as :meth:`params` gave them),
    checked against its typed parameters (:attr:`~.base.SegmenterBase.settings`): ConfigError
    naming the parameter otherwise."""
    kind = SEGMENTERS.get_or_error(name)
    checked = parse(kind.settings, params or {}, f"segmenter {name}")
    return kind(**checked.model_dump())
