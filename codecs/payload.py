"""Payload codec: bytes <-> compact bytes <-> text-safe string <-> QR module matrix.

The sealed payload is binary; zbar re-encodes raw bytes as text, so the ciphertext travels as
Base45 (RFC 9285) in the QR alphanumeric mode, which costs 3 % over raw bytes (Base64 in byte
mode costs 33 %). The QR matrix is rendered with a fixed mask pattern: the module matrix is
never scanned optically, and choosing the "best" mask is most of qrcode's run time.
Decoding renders the matrix upscaled with a quiet zone and reads it with zbar (pyzbar), with
zxing-cpp as a fallback.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import qrcode
import qrcode.util

from .errors import MessageNotFoundError, PayloadTooLargeError

_B45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_B45_INDEX = {c: i for i, c in enumerate(_B45)}
_LEVELS = {
    "L": qrcode.constants.ERROR_CORRECT_L,
    "M": qrcode.constants.ERROR_CORRECT_M,
    "Q": qrcode.constants.ERROR_CORRECT_Q,
    "H": qrcode.constants.ERROR_CORRECT_H,
}
# Shared dictionary for raw deflate: frequent byte strings of DICOM payloads (explicit VR LE
# element headers, common UID roots, character sets). Changing it breaks old payloads: bump
# the payload format version in the handlers if you do.
_ZDICT = (
    b"ISO_IR 100ISO_IR 192ORIGINAL\\PRIMARY\\AXIALDERIVED\\SECONDARY"
    b"1.2.840.113619.2.1.3.6.1.4.1.1.2.840.10008.1.2.276.0.7230010.3.1.2.826.0.1.3680043."
    b"\x08\x00\x20\x00DA\x08\x00\x08\x00\x30\x00TM\x10\x00\x10\x00PN\x10\x00\x20\x00LO"
    b"\x20\x00\x0d\x00UI\x20\x00\x0e\x00UI\x08\x00\x18\x00UI"
)


def compress(data: bytes) -> bytes:
    """Raw deflate with a preset dictionary (no zlib header: every byte counts)."""
    packer = zlib.compressobj(level=9, wbits=-15, zdict=_ZDICT)
    return packer.compress(data) + packer.flush()


def decompress(data: bytes) -> bytes:
    """Inverse of :func:`compress`."""
    try:
        unpacker = zlib.decompressobj(wbits=-15, zdict=_ZDICT)
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
    qr = qrcode.QRCode(error_correction=level, box_size=1, border=0, mask_pattern=0)
    qr.add_data(qrcode.util.QRData(text.encode("ascii"), mode=qrcode.util.MODE_ALPHA_NUM, check_data=False))
    qr.make(fit=True)
    return np.array(qr.modules, dtype=bool)


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

    results = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    return results[0].text if results else None
