"""The interface every stego codec implements, and the helpers they share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .settings import Settings


class StegoCodec(Protocol):
    """Hides a bit string in the usable pixels of an integer image and reads it back.

    ``pixels`` are stored values shaped ``(frames, rows, columns)``; ``usable`` is a boolean
    array of the same shape, True where data may go (background minus the safety margin).
    Pixels outside ``usable`` are never changed. Output values stay within ``value_range``
    (inclusive), the range that BitsStored and PixelRepresentation allow.
    """

    name: str

    def capacity(self, usable: np.ndarray) -> int:
        """Number of message bits an image with this usable region can carry."""

    def fit(self, usable: np.ndarray, message_bits: int, key: bytes) -> StegoCodec:
        """The codec to embed ``message_bits`` with under ``key`` (strength and layout adapted
        to the region, if at all)."""

    def embed(
        self,
        pixels: np.ndarray,
        usable: np.ndarray,
        message: np.ndarray,
        key: bytes,
        value_range: tuple[int, int],
    ) -> np.ndarray:
        """Return a copy of ``pixels`` carrying ``message`` (uint8 array of 0/1).

        Raises CapacityError when the message does not fit.
        """

    def extract(
        self, pixels: np.ndarray, usable: np.ndarray, key: bytes, value_range: tuple[int, int]
    ) -> np.ndarray:
        """Return the message bits (uint8 0/1) hidden by :meth:`embed`.

        Raises MessageNotFoundError when no message can be found.
        """

    def params(self) -> dict:
        """The strength parameters, JSON-serializable, so reveal can rebuild the codec."""

    def change_allowance(self) -> float:
        """Stored units by which embedding may move a background pixel, with room to spare: the
        safety guard keeps background levels this far below what it protects, so that what the
        codec writes never reads as protected on the stego image."""


@dataclass(frozen=True)
class CodecEntry:
    """A stego codec as the registry (:data:`stegonode.codecs.registry.CODECS`) holds it.

    ``build(params)`` makes the codec from its strength parameters (node.toml's
    ``[handlers.embed.NAME]`` table, or the protection block's ``params``) and raises ValueError
    or TypeError on bad ones. ``settings`` is that table, typed: its keys, their defaults and
    ranges (:mod:`stegonode.codecs.settings`).
    """

    name: str
    build: Callable[[dict], StegoCodec]
    settings: type[Settings] = Settings
