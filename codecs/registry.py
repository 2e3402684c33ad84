"""Registries: one home per pluggable behaviour, in the spirit of pydicom's pixel-data plugins.

A :class:`Registry` maps names (as node.toml and the protection and cipher blocks write them)
to entries: stego codecs and pixel ciphers here, handlers and segmenters in
:mod:`stegonode.handlers.registry` and :mod:`stegonode.segmenters.registry`. Each entry registers itself in its own module
(``@CODECS.register``, its class's ``name``); the registry names the built-in modules once
(``builtins``) and imports them on first use. Configuration choices, node.toml validation, the
protection block and reveal all ask the registry, so adding a codec touches its module and one
line here; a module outside the package (a test, a site plugin) registers by importing this one.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from stegonode.errors import ConfigError

if TYPE_CHECKING:
    from .stego import StegoCodec

T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    """Named entries of one kind (a mapping, in name order, that loads the built-ins on first use).

    ``kind`` names the entries in messages ("codec"), ``key`` the node.toml key that chooses
    one ("handlers.embed.codec"), ``builtins`` the modules that register the shipped ones.
    """

    def __init__(self, kind: str, key: str, builtins: tuple[str, ...] = ()) -> None:
        self.kind, self.key = kind, key
        self._builtins = builtins
        self._entries: dict[str, T] = {}
        self._loaded = False

    def register(self, entry: T, name: str | None = None) -> T:
        """Add ``entry`` under ``name`` (default: its ``name`` attribute); returns it, so it
        serves as a class decorator. A name taken by another entry is a programming error."""
        name = name or getattr(entry, "name")  # noqa: B009 (T declares no name: mypy)
        if self._entries.get(name, entry) is not entry:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = entry
        return entry

    def unregister(self, name: str) -> None:
        """Remove ``name`` (tests that register a toy entry clean up with this)."""
        self._entries.pop(name, None)

    def _load(self) -> dict[str, T]:
        if not self._loaded:
            self._loaded = True
            for module in self._builtins:
                importlib.import_module(module)
        return self._entries

    def __getitem__(self, name: str) -> T:
        return self._load()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._load()))

    def __len__(self) -> int:
        return len(self._load())

    def get_or_error(self, name: Any, error: Callable[[str], Exception] | None = None) -> T:
        """The entry ``name``; otherwise ``error(message)`` (default: ConfigError naming the key)."""
        entries = self._load()
        if isinstance(name, str) and name in entries:
            return entries[name]
        message = f"unknown {self.kind} {name!r}; choose one of {', '.join(sorted(entries))}"
        raise (error or (lambda text: ConfigError(f"{self.key}: {text}")))(message)


# Stego codecs: classes with ``name``, ``defaults`` (their node.toml table), ``ranges`` and
# ``from_params(params)`` (see stegonode.codecs.stego.CodecType).
CODECS: Registry[Any] = Registry("codec", "handlers.embed.codec", (
    "stegonode.codecs.dct", "stegonode.codecs.paper", "stegonode.codecs.deep",
))
# Pixel ciphers: PixelCipher classes (stegonode.codecs.pixelcipher), by ``name``.
CIPHERS: Registry[Any] = Registry("cipher", "handlers.encrypt.cipher", (
    "stegonode.codecs.pixelcipher", "stegonode.codecs.chaos",
))


def make_codec(name: str, params: dict, error: Callable[[str], Exception] | None = None) -> StegoCodec:
    """The registered stego codec ``name`` with strength ``params`` (node.toml's, or as stored in
    the protection block). Unknown or bad: ``error(message)``, by default a ConfigError naming
    the node.toml key (reveal passes its own: the block is data, not configuration)."""
    entry = CODECS.get_or_error(name, error)
    try:
        return entry.build(params)
    except (TypeError, ValueError) as exc:
        # A TypeError is Python's text about a call (unknown keyword): name the parameters
        # instead. A ValueError comes from the codec's own checks, written for people.
        why = f"unknown or missing parameter among {', '.join(sorted(map(str, params)))[:120]}" \
            if isinstance(exc, TypeError) else str(exc)
        message = f"bad parameter for codec {name!r}: {why}"
        raise (error(message) if error else ConfigError(f"handlers.embed.{name}: {message}")) from None
