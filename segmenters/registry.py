"""The segmenter registry (``[handlers.segment] segmenter`` and ``other_modalities`` choose from
it; the protection block records the name and :meth:`~.base.Segmenter.params`, so reveal builds
the same segmenter with :func:`make_segmenter`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stegonode.codecs.registry import Registry
from stegonode.errors import ConfigError

if TYPE_CHECKING:
    from .base import Segmenter

SEGMENTERS: Registry[Any] = Registry("segmenter", "handlers.segment.segmenter", (
    "stegonode.segmenters.classical", "stegonode.segmenters.maskrcnn", "stegonode.segmenters.padding",
))


def make_segmenter(name: str, params: dict | None = None) -> Segmenter:
    """The segmenter registered under ``name``, with ``params`` (as :meth:`params` gave them)."""
    kind = SEGMENTERS.get_or_error(name)
    try:
        return kind(**(params or {}))
    except TypeError:
        raise ConfigError(f"segmenter {name!r}: unknown parameters {sorted(params or {})}") from None
