"""node.toml's ``[pipeline]`` and ``[handlers.*]`` tables, typed: what the pipeline is built from.

``[handlers]`` has one table per registered handler (its ``table`` model, see
:class:`~stegonode.handlers.base.HandlerBase`), so its model is made from the registry
(:func:`handlers_model`); ``[pipeline]`` names the handlers in order and the carriers.
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import Field, create_model, field_validator

from stegonode.codecs.settings import Names, Settings
from stegonode.errors import ConfigError

from .registry import HANDLERS

CARRIERS = ("pixels", "header")  # where the sealed identity goes: the pixels, the header (PS3.15 Encrypted Attributes)
DEFAULT_ORDER = ("collect", "seal", "segment", "embed", "deidentify")


class PipelineSettings(Settings):
    """``[pipeline]``: the handlers in order (each after those it requires, each once), and the
    carriers written (one or both of "pixels" and "header")."""

    handlers: Names = DEFAULT_ORDER
    carriers: Names = CARRIERS

    @field_validator("handlers")
    @classmethod
    def _order(cls, order: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in order if name not in HANDLERS]
        if unknown:
            raise ConfigError(f"pipeline.handlers: unknown handler(s) {unknown}; known: {list(HANDLERS)}")
        seen: set[str] = set()
        for name in order:
            if name in seen:
                raise ConfigError(f"pipeline.handlers: {name!r} appears more than once")
            missing = [r for r in HANDLERS[name].requires if r not in seen]
            if missing:
                raise ConfigError(f"pipeline.handlers: {name!r} needs {', '.join(missing)} before it")
            seen.add(name)
        return order

    @field_validator("carriers")
    @classmethod
    def _carriers(cls, carriers: tuple[str, ...]) -> tuple[str, ...]:
        if not carriers or len(set(carriers)) != len(carriers) or set(carriers) - set(CARRIERS):
            raise ConfigError(f"pipeline.carriers = {list(carriers)!r}; give one or both of "
                              f"{', '.join(repr(c) for c in CARRIERS)}, each once")
        return carriers


def handlers_model() -> type[Settings]:
    """``[handlers]``: one table per registered handler (a handler registered since the last
    call has its table too)."""
    return _handlers_model(tuple((name, HANDLERS[name].settings_model()) for name in HANDLERS))


@functools.cache
def _handlers_model(tables: tuple[tuple[str, type[Settings]], ...]) -> type[Settings]:
    fields: dict[str, Any] = {name: (model, Field(default_factory=model)) for name, model in tables}
    return create_model("HandlersSettings", __base__=Settings, __module__=__name__, **fields)
