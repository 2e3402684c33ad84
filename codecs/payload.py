"""Payload codec: bytes <-> compact bytes <-> text-safe string <-> QR module matrix <-> bits.

The sealed payload is binary; zbar re-encodes raw bytes as text, so the ciphertext travels as
Base45 (RFC 9285) in the QR alphanumeric mode, which costs 3 % over raw bytes (Base64 in byte
mode costs 33 %). The QR matrix is drawn with a fixed mask pattern (the module matrix is never
scanned optically) by :mod:`stegonode.codecs.qrencode`, the symbol the qrcode package draws.
Decoding renders the matrix upscaled with a quiet zone and reads it with zbar (pyzbar), with
zxing-cpp as a fallback.
"""

from __future__ import annotations

import functools
import math
import zlib

import numpy as np
import qrcode
import qrcode.util

from stegonode.errors import MessageNotFoundError, PayloadTooLargeError

from . import qrencode

_B45 = qrencode.ALPHANUMERIC  # Base45 (RFC 9285) is made for this set
_B45_INDEX = {c: i for i, c in enumerate(_B45)}
_LEVELS = {
    "L": qrcode.constants.ERROR_CORRECT_L,
    "M": qrcode.constants.ERROR_CORRECT_M,
    "Q": qrcode.constants.ERROR_CORRECT_Q,
    "H": qrcode.constants.ERROR_CORRECT_H,
}
# Shared dictionary for raw deflate: frequent byte strings of DICOM payloads (explicit VR LE
# element headers, common UID roots, character sets). Changing it breaks old payloads: it is
# dictionary 1; handlers.seal builds dictionary 2 on it, and the protection block says which.
ZDICT = (
    b"ISO_IR 100ISO_IR 192ORIGINAL\\PRIMARY\\AXIALDERIVED\\SECONDARY"
    b"1.2.840.113619.2.1.3.6.1.4.1.1.2.840.10008.1.2.276.0.7230010.3.1.2.826.0.1.3680043."
    b"\x08\x00\x20\x00DA\x08\x00\x08\x00\x30\x00TM\x10\x00\x10\x00PN\x10\x00\x20\x00LO"
    b"\x20\x00\x0d\x00UI\x20\x00\x0e\x00UI\x08\x00\x18\x00UI"
)


def compress(data: bytes, zdict: bytes = ZDICT) -> bytes:
    """Raw deflate with a preset dictionary (no zlib header: every byte counts)."""
    packer = zlib.compressobj(level=9, wbits=-15, zdict=zdict)
    return packer.compress(data) + packer.flush()


def decompress(data: bytes, zdict: bytes = ZDICT) -> bytes:
    """Inverse of :func:`compress` (with the same dictionary)."""
    try:
        unpacker = zlib.decompressobj(wbits=-15, zdict=zdict)
        return unpacker.decompress(data) + unpacker.flush()
    except zlib.error:
        raise MessageNotFoundError("payload does not decompress: it is damaged") from None


def to_text(data: bytes) -> str:
    """Base45 (RFC 9285): two bytes to three characters of the QR alphanumeric set."""
    out = []
    for i in range(0, len(data) - 1, 2):
        n = data[i] * 256 + data[i + 1]
        out += [_B45[n % 45], _B45[n // 45 % 45], _B45[n // 2025]]
    if len(data) % 2:
        n = data[-1]
        out += [_B45[n % 45], _B45[n // 45]]
    return "".join(out)


def from_text(text: str) -> bytes:
    """Inverse of :func:`to_text`."""
    try:
        digits = [_B45_INDEX[c] for c in text]
    except KeyError:
        raise MessageNotFoundError("QR text is not Base45: not a stegonode payload") from None
    out = bytearray()
    for i in range(0, len(digits), 3):
        chunk = digits[i : i + 3]
        n = sum(d * 45**k for k, d in enumerate(chunk))
        if len(chunk) == 3 and n <= 0xFFFF:
            out += n.to_bytes(2, "big")
        elif len(chunk) == 2 and n <= 0xFF:
            out.append(n)
        else:
            raise MessageNotFoundError("QR text is not valid Base45: not a stegonode payload")
    return bytes(out)


def _max_alphanumeric_chars(level: int) -> int:
    bits = qrcode.util.BIT_LIMIT_TABLE[level][40] - 4 - 13  # mode and count indicators
    return bits // 11 * 2 + (1 if bits % 11 >= 6 else 0)


def to_qr(text: str, error_correction: str = "M") -> np.ndarray:
    """QR module matrix (True = dark), without quiet zone, for Base45 ``text``."""
    level = _LEVELS[error_correction]
    limit = _max_alphanumeric_chars(level)
    if len(text) > limit:
        raise PayloadTooLargeError(
            excess_bytes=math.ceil((len(text) - limit) * 2 / 3), limit_bytes=limit * 2 // 3
        )
    return qrencode.encode(text, level)


def render(modules: np.ndarray, scale: int = 3, quiet_zone: int = 4) -> np.ndarray:
    """Greyscale image (0 dark, 255 light) of a module matrix: what a QR reader expects."""
    padded = np.pad(modules, quiet_zone, constant_values=False)
    return np.where(padded, 0, 255).astype(np.uint8).repeat(scale, 0).repeat(scale, 1)


def from_qr(modules: np.ndarray) -> str:
    """Read the text of a module matrix; raise MessageNotFoundError if no reader decodes it."""
    image = render(modules)
    text = _read_zbar(image) or _read_zxing(image)
    if text is None:
        raise MessageNotFoundError(
            "no readable QR code in the background: the pixels were altered or the "
            "segmentation differs too much from the protected image's"
        )
    return text


def _read_zbar(image: np.ndarray) -> str | None:
    from pyzbar import pyzbar

    results = pyzbar.decode(image, symbols=[pyzbar.ZBarSymbol.QRCODE])
    return results[0].data.decode("ascii", "replace") if results else None


def _read_zxing(image: np.ndarray) -> str | None:
    import zxingcpp

    results = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)  # type: ignore[arg-type]  # zxingcpp's stub: BarcodeFormats only
    return results[0].text if results else None


# -- message layout 2: only the modules a reader cannot know in advance -------------------------
#
# The finder patterns with their separators, the timing patterns and the alignment patterns of a
# QR code are fixed by its version alone (10 to 20 % of the modules of the versions payloads
# use). Layout 2 sends every other module (format and version information included) and
# redraws those patterns from the version, which the message length names.


@functools.cache
def _side_for_free_modules() -> dict[int, int]:
    """Number of modules layout 2 sends -> side, for every QR version."""
    return {int((~qrencode.fixed_patterns(side)[0]).sum()): side for side in range(21, 178, 4)}


def pack(modules: np.ndarray) -> np.ndarray:
    """Layout 2: the modules of a QR matrix that its version does not fix, as 0/1 bits."""
    mask, _ = qrencode.fixed_patterns(modules.shape[0])
    return modules[~mask].astype(np.uint8)


def unpack(bits: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pack`: the QR module matrix, fixed patterns redrawn."""
    side = _side_for_free_modules().get(int(bits.size))
    if side is None:
        raise MessageNotFoundError("hidden message is not a QR code")
    mask, values = qrencode.fixed_patterns(side)
    modules = values.copy()
    modules[~mask] = bits.astype(bool)
    return modules
