"""The one exception hierarchy of stegonode (``stegonode.errors``), and the one rule for what a
failure tells people and whether it is worth another attempt (:class:`Failure`).

Every error a user can meet derives from :class:`StegonodeError` and carries a message a
person can act on. Messages never contain patient data or key material.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Failure",
    "public_message",
    "is_transient",
    "StegonodeError",
    "ConfigError",
    "DatabaseError",
    "KeyFileError",
    "InputError",
    "InconsistentFileMetaError",
    "UnsupportedImageError",
    "RefusedError",
    "PayloadTooLargeError",
    "CapacityError",
    "UnreadableEmbeddingError",
    "RevealError",
    "NotProtectedError",
    "MessageNotFoundError",
    "WrongEmbeddingKeyError",
    "WrongRecipientKeyError",
    "PayloadBindingError",
    "PayloadIntegrityError",
    "CarrierMismatchError",
    "NetworkError",
    "DecryptionError",
    "CipherBlockError",
    "WrongPixelCipherKeyError",
    "PixelIntegrityError",
    "MissingExtraError",
]


class StegonodeError(Exception):
    """Base of every stegonode error."""


class ConfigError(StegonodeError, ValueError):
    """node.toml (or an option) is wrong; the message names the key and the problem. A ValueError
    too, so that the settings models (:mod:`stegonode.codecs.settings`) collect one raised by a
    validator with the other errors, and report the first that matters."""


class DatabaseError(StegonodeError):
    """The index database (node.database) cannot be reached or used; the message says why."""


class KeyFileError(StegonodeError):
    """A key file is missing, unreadable, of the wrong role or malformed."""


class InputError(StegonodeError):
    """The input object cannot be processed (not DICOM, truncated, unsupported image)."""


class InconsistentFileMetaError(InputError):
    """The file meta (over the network: the C-STORE request) names another SOP instance or class
    than the data set does."""

    def __init__(self, name: str) -> None:
        self.name = name  # "SOP Instance UID" or "SOP Class UID"
        super().__init__(f"file meta Media Storage {name} differs from the data set's {name}")


class UnsupportedImageError(InputError):
    """The image kind is outside what the codecs handle (colour, 1-bit, 32-bit, no pixels)."""


class RefusedError(InputError):
    """The node's policy (node.toml) refuses this object; the message names the key that allows it."""


class PayloadTooLargeError(StegonodeError):
    """The sealed payload does not fit into the largest QR code."""

    def __init__(self, excess_bytes: int, limit_bytes: int) -> None:
        self.excess_bytes = excess_bytes
        self.limit_bytes = limit_bytes
        super().__init__(
            f"payload too large for a QR code: {excess_bytes} bytes over the "
            f"{limit_bytes}-byte limit; configure fewer extra attributes"
        )


class CapacityError(StegonodeError):
    """The image background offers too few embedding positions for the message."""

    def __init__(self, offered_bits: int, needed_bits: int) -> None:
        self.offered_bits = offered_bits
        self.needed_bits = needed_bits
        super().__init__(
            f"image too small for the payload: its background offers {offered_bits} bits, "
            f"{needed_bits} are needed"
        )


class UnreadableEmbeddingError(CapacityError):
    """The background took the message, but too few copies survive to read it back."""

    def __init__(self, wrong_bits: int, needed_bits: int) -> None:
        self.wrong_bits = wrong_bits
        StegonodeError.__init__(
            self,
            f"image too small for the payload: its background carries it unreadably "
            f"({wrong_bits} of {needed_bits} bits read back wrong)",
        )
        self.offered_bits, self.needed_bits = needed_bits - wrong_bits, needed_bits


class RevealError(StegonodeError):
    """Base of the errors that stop a payload from being recovered."""


class NotProtectedError(RevealError):
    """The object carries no stegonode protection block."""


class MessageNotFoundError(RevealError):
    """No readable message in the background: the pixels were altered, or segmentation differs."""


class WrongEmbeddingKeyError(RevealError):
    """The object was protected under another embedding key."""


class WrongRecipientKeyError(RevealError):
    """The payload is sealed for another recipient's key pair."""


class PayloadBindingError(RevealError):
    """The sealed payload belongs to another instance (it was copied or moved)."""


class PayloadIntegrityError(RevealError):
    """The sealed payload failed authentication: it was tampered with."""


class CarrierMismatchError(RevealError):
    """The pixel and header carriers both open but hold different identities: tampering."""


class NetworkError(StegonodeError):
    """A DICOM association failed: no answer, rejected, or a failure status from the node."""


class WorkerStartError(StegonodeError):
    """The node's worker processes could not load the protect pipeline (their log says why)."""


class DecryptionError(RevealError):
    """Base of the errors that stop encrypted pixels from being decrypted."""


class CipherBlockError(DecryptionError):
    """The cipher block (what decryption needs besides the key) is missing fields or unreadable."""


class WrongPixelCipherKeyError(DecryptionError):
    """The pixels were encrypted under another pixel-cipher key."""


class PixelIntegrityError(DecryptionError):
    """The encrypted pixels or their cipher block failed authentication: they were altered."""


class MissingExtraError(StegonodeError):
    """A command needs the optional ``train`` extra (torch, torchvision, onnx, scikit-image), not installed."""

    def __init__(self, what: str, missing: list[str], extra: str = "train") -> None:
        self.missing = missing
        purpose = "training and export only" if extra == "train" else f"the {extra} extra"
        super().__init__(
            f"{what} needs {', '.join(missing)} ({purpose}): install the {extra} extra "
            f"with `.venv/bin/pip install -c constraints.txt -e \".[{extra}]\"` (or `scripts/setup.sh --{extra}`)"
        )


# -- what a failure says, and whether another attempt may succeed ---------------------------------

# Failures of the machine rather than of the object: the disk, the network, memory.
ENVIRONMENT_FAILURES: tuple[type[BaseException], ...] = (OSError, MemoryError)


def public_message(exc: BaseException, doing: str = "protecting") -> str:
    """The one-line reason for ``exc`` that may be shown, logged or sent (as an Error Comment).

    Only stegonode's own messages are quoted (written to be shown: no patient data, no key
    material); of a failure of the environment, what the system says (``strerror``, never the
    file name); of anything else, its type alone: its text may quote a value of the input.
    """
    if isinstance(exc, StegonodeError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return f"out of memory while {doing}"
    if isinstance(exc, OSError):
        return f"system error while {doing} ({exc.strerror or type(exc).__name__})"
    return f"internal error while {doing} ({type(exc).__name__})"


def is_transient(exc: BaseException) -> bool:
    """Whether another attempt may succeed: only failures of the environment (an OSError such as
    a full disk or a lost connection, MemoryError) are retried. Everything else, stegonode's own
    refusals and unexpected errors alike, comes from the object and fails the same way again:
    it is quarantined (or refused) at once."""
    return isinstance(exc, ENVIRONMENT_FAILURES) and not isinstance(exc, StegonodeError)


@dataclass(frozen=True)
class Failure:
    """What every site that protects, reveals or writes says of a failure, and whether it retries."""

    reason: str
    transient: bool

    @classmethod
    def of(cls, exc: BaseException, doing: str = "protecting") -> Failure:
        return cls(public_message(exc, doing), is_transient(exc))
