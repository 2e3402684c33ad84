"""The registry of pipeline handlers.

Like :mod:`stegonode.codecs.registry` (stego codecs, pixel ciphers): each entry registers itself
in its own module (``@HANDLERS.register`` on the class, under its ``name``), the built-in modules
are named once below and imported on first use. node.toml's choices and validation, the pipeline
protect runs, the steps the protection block records and the inverse steps reveal runs all come
from here.

A handler (see :class:`stegonode.handlers.base.HandlerBase`) declares its ``name``, the handlers
it ``requires`` before it, its ``[handlers.NAME]`` table's ``defaults``, ``check`` (validation
without loading anything), ``from_config`` (build it), ``finish`` (write its own block once every
handler ran) and ``unprotect`` (its inverse step in reveal).

Segmenters have their own registry, :mod:`stegonode.segmenters.registry`.
"""

from __future__ import annotations

from typing import Any

from stegonode.codecs.registry import Registry

HANDLERS: Registry[Any] = Registry("handler", "pipeline.handlers", (
    "stegonode.handlers.collect", "stegonode.handlers.seal", "stegonode.handlers.segment",
    "stegonode.handlers.embed", "stegonode.handlers.deidentify", "stegonode.handlers.encrypt",
))
