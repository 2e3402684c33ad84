"""What flows through the pipeline, what a handler is, and what reveal's inverse steps share."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np
from pydicom import Dataset
from pydicom.datadict import tag_for_keyword
from pydicom.tag import BaseTag, Tag

from stegonode.codecs.settings import Settings
from stegonode.errors import ConfigError

if TYPE_CHECKING:  # annotations only: these modules import this one
    from stegonode.codecs.keys import PeerKeys
    from stegonode.handlers.protection import Protection
    from stegonode.segmenters.base import Segmenter

    from .encrypt import CipherBlock
    from .header import HeaderCarrier
    from .pipeline import PipelineContext


@dataclass
class Instance:
    """One DICOM instance on its way through the protect pipeline.

    Handlers read and fill these fields in pipeline order; ``report`` collects the figures a
    user sees (payload bytes, PSNR, changed pixels) and ``timings`` the seconds per handler.
    ``steps`` names the handlers that ran (the protection block records them for reveal);
    ``extra`` holds what a handler outside the built-in set passes on, under its name.
    """

    dataset: Dataset
    # stored values, (frames, rows, columns); None: the pixels carry nothing (header carrier only)
    pixels: np.ndarray | None
    attributes: Dataset | None = None  # the identifying attributes, as in the original header
    message: np.ndarray | None = None  # QR module matrix of the sealed payload
    # ... of the core attributes only, where it may be needed: sealed and rendered on first call
    # (most images take the full message, and a QR code costs milliseconds)
    core_message: Callable[[], np.ndarray] | None = None
    header_carrier: HeaderCarrier | None = None  # PS3.15 Encrypted Attributes, written last
    foreground: np.ndarray | None = None  # significant region, same shape as pixels
    foreground_levels: list[float | None] | None = None  # classical levels per frame (Segmentation)
    segmenter: Segmenter | None = None  # the segmenter that produced ``foreground``
    usable: np.ndarray | None = None  # where the codec could write: background less margin and guard
    protection: Protection | None = None  # what reveal needs: codec, parameters, key ids
    encryption: CipherBlock | None = None  # what decryption needs: cipher, nonce, tag
    steps: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    report: dict[str, float | int | str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class Identity:
    """What reveal recovered from the carriers (see :func:`stegonode.handlers.reveal.reveal`)."""

    attributes: Dataset
    carrier: str  # "pixels" or "header": the one that delivered
    confirmed_by: tuple[str, ...]  # the other carrier, if it was read too and agreed
    complete: bool  # False: the core attributes only
    envelope: bytes | None  # the header carrier's envelope, when the object has one


@dataclass
class Revealing:
    """One stego object on its way back through reveal's inverse steps.

    ``dataset`` is the object as read (a step that changed the pixels, such as encryption,
    replaces it by its inverse); ``output`` is the re-identified object being built (a copy of
    ``dataset``, made on first use); ``identity`` is read from the carriers on first use, by
    ``read_identity`` (reveal's carrier logic).
    """

    dataset: Dataset
    keys: PeerKeys
    protection: Protection
    read_identity: Callable[[Revealing], Identity]
    foreground: np.ndarray | None = None
    _identity: Identity | None = None
    _output: Dataset | None = None

    @property
    def identity(self) -> Identity:
        if self._identity is None:
            self._identity = self.read_identity(self)
        return self._identity

    @property
    def output(self) -> Dataset:
        if self._output is None:
            self._output = copy.deepcopy(self.dataset)
        return self._output


class Handler(Protocol):
    """A pipeline stage. ``requires`` names stages that must run before it."""

    name: ClassVar[str]
    requires: ClassVar[tuple[str, ...]]

    def __call__(self, instance: Instance) -> None: ...

    def finish(self, instance: Instance) -> None:
        """Write this handler's own block into ``instance.dataset`` (after every handler ran)."""


class HandlerBase:
    """What a registered handler declares (see :mod:`stegonode.handlers.registry`).

    ``table`` is its ``[handlers.NAME]`` table in node.toml, typed (a
    :class:`~stegonode.codecs.settings.Settings` model: keys, defaults, ranges, choices and any
    rule across keys, checked once when node.toml is read, without loading a model);
    ``needs_pixels`` says it works on pixels (the pipeline skips it for objects that get the
    header carrier alone). :meth:`from_config` builds it from the validated tables;
    :meth:`finish` writes its block after every handler ran; :meth:`unprotect` is its inverse
    step in reveal, which runs the steps the protection block records in reverse order, those
    with ``reveal_phase`` 0 (the pixel transforms that must be undone before anything reads the
    object) first.
    """

    name: ClassVar[str]
    requires: ClassVar[tuple[str, ...]] = ()
    table: ClassVar[type[Settings]] = Settings
    reveal_phase: ClassVar[int] = 1
    # True: works on the pixels, and is skipped for objects whose pixels carry nothing
    needs_pixels: ClassVar[bool] = False

    @classmethod
    def settings_model(cls) -> type[Settings]:
        """The model of its table (a handler whose table depends on a registry builds it)."""
        return cls.table

    @classmethod
    def table_defaults(cls) -> dict[str, Any]:
        """Its table's defaults, as node.toml writes them."""
        return cls.settings_model()().model_dump(mode="json")

    @classmethod
    def from_config(cls, context: PipelineContext) -> Handler:
        raise NotImplementedError

    @classmethod
    def carries_header(cls, context: PipelineContext) -> bool:
        """Whether it writes the header carrier, which carries the identity of every object the
        pixels cannot (admission refuses those otherwise)."""
        return False

    def finish(self, instance: Instance) -> None:
        """Nothing to write by default."""

    @classmethod
    def unprotect(cls, state: Revealing) -> None:
        """Nothing to undo by default."""


def choice_of(key: str, value: Any, allowed: Sequence[Any]) -> Any:
    """``value`` if it is one of ``allowed`` (a registry's names, known only at validation time)."""
    if value not in allowed:
        raise ConfigError(f"{key} = {value!r}: choose one of {', '.join(str(a) for a in allowed)}")
    return value


def keyword_tags(keywords: Sequence[Any], key: str) -> frozenset[BaseTag]:
    """The tags of DICOM ``keywords`` (node.toml ``key``); ConfigError naming a wrong one."""
    tags = set()
    for keyword in keywords:
        tag = tag_for_keyword(keyword) if isinstance(keyword, str) else None
        if tag is None:
            raise ConfigError(f"{key}: {keyword!r} is not a DICOM keyword")
        tags.add(Tag(tag))
    return frozenset(tags)
