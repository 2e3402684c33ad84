"""Typed settings: the one base of every node.toml table, and one-line errors that name the key.

Each node.toml section (:mod:`stegonode.node.config`) and each registered component with a table
(a handler's ``[handlers.NAME]``, a codec's ``[handlers.embed.NAME]``) declares its keys once, as
a pydantic model derived from :class:`Settings`: types, defaults, ranges (:func:`Range`), choices
(:func:`Choice`) and any rule across keys (a model validator raising ConfigError with the key).
A table is validated when it is made, and never again: the models are frozen.

Types are strict, as TOML is typed: an int key takes an integer (not a boolean), a float key an
integer or a float, a list key an array (held as a tuple).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from stegonode.errors import ConfigError

__all__ = ["Settings", "Range", "Choice", "Names", "config_error", "parse"]


class Settings(BaseModel):
    """A validated, frozen node.toml table. ``table["key"]`` reads a key as ``table.key`` does
    (for code written against the tables as dicts); nothing can change it."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    def __getitem__(self, key: str) -> Any:
        if key not in type(self).model_fields:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in type(self).model_fields else default

    def __contains__(self, key: object) -> bool:
        return key in type(self).model_fields


def Range(low: float, high: float | None = None) -> AfterValidator:  # noqa: N802 (a type annotation)
    """An inclusive range (``high`` None: no upper bound), in node.toml's words."""

    def check(value: Any) -> Any:
        if not (math.isfinite(value) and low <= value and (high is None or value <= high)):
            raise ValueError(f"must be >= {low:g}" if high is None else f"must be within {low:g}..{high:g}")
        return value

    return AfterValidator(check)


def Choice(*allowed: Any) -> AfterValidator:  # noqa: N802 (a type annotation)
    """One of ``allowed``."""

    def check(value: Any) -> Any:
        if value not in allowed:
            raise ValueError(f"choose one of {', '.join(str(a) for a in allowed)}")
        return value

    return AfterValidator(check)


# A list of strings in node.toml, held as a tuple.
Names = Annotated[tuple[str, ...], Field(strict=False)]

_KINDS = {"int": "int", "float": "float", "bool": "bool", "string": "str", "list": "list", "tuple": "list",
          "dict": "table", "model": "table", "model_attributes": "table", "dataclass": "table"}


def config_error(exc: ValidationError, prefix: str = "") -> ConfigError:
    """The first error of ``exc`` in one line a person can act on: the key path and the reason."""
    errors = exc.errors(include_url=False)
    # an unknown key first: a misspelt key makes the others' errors moot
    error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, ConfigError):  # a rule that names its keys itself
        return ConfigError(str(cause))
    key = _key(prefix, error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        return ConfigError(f"unknown key {key}")
    if kind == "missing":
        return ConfigError(f"{key} is missing")
    if kind.endswith("_type"):
        expected = _KINDS.get(kind.removesuffix("_type"), kind.removesuffix("_type"))
        return ConfigError(f"{key} must be {expected}, got {_toml_type(error['input'])}")
    reason = str(error.get("ctx", {}).get("error", error["msg"]))
    return ConfigError(f"{key} = {error['input']!r}: {reason}")


def parse(model: type[BaseModel], document: Any, prefix: str = "") -> Any:
    """``document`` validated as ``model``; ConfigError naming the key (under ``prefix``) otherwise."""
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise config_error(exc, prefix) from None


def _key(prefix: str, loc: Sequence[int | str]) -> str:
    parts = [prefix] if prefix else []
    for part in loc:
        if isinstance(part, int):
            parts[-1] = f"{parts[-1]}[{part + 1}]" if parts else f"[{part + 1}]"
        else:
            parts.append(str(part))
    return ".".join(parts)


def _toml_type(value: Any) -> str:
    return {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "table"}.get(
        type(value), type(value).__name__)
