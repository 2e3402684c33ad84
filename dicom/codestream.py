"""What a sender put in a compressed codestream besides the pixels: its informative marker
segments removed, the pixels untouched.

Compressed Pixel Data kept as received (:class:`stegonode.dicom.pixels.ReceivedPixels`) would
keep whatever its encoder or sender wrote into the codestream: a JPEG comment naming the
patient, an Exif block with dates, an encoder's name. :func:`strip_segments` walks the marker
segments of every frame and removes those that never change the decoded values; the
entropy-coded data is copied, not decoded, so the pixels stay bit for bit what they were.

JPEG (ISO/IEC 10918-1: 1.2.840.10008.1.2.4.50, .51, .57, .70) and JPEG-LS (ISO/IEC 14495-1:
.80, .81): every marker segment from SOI to EOI. After each SOS header the entropy-coded
segment is skipped to the next marker by the standards' stuffing rules (JPEG: FF is followed
by 00 or a restart marker inside scans; JPEG-LS: by a byte below 80), since tables, comments
and application segments may also stand between scans and before EOI.

- Removed: COM (FFFE), and every APPn (FFE0-FFEF) but those below. Decoders skip APPn
  segments they do not know (10918-1 B.2.4.6, 14495-1 C.2.4.1.5), so none of the removed ones
  changes the decoded values: Exif (APP1), ICC profiles (APP2; DICOM states the profile in
  ICC Profile (0028,2000)), Photoshop/IPTC (APP13), JFIF extension thumbnails (APP0 "JFXX"),
  SPIFF headers and directories (JPEG-LS APP8 "SPIFF": the frame header says what decodes).
- Kept, because decoders read them to decide what the samples mean: APP0 "JFIF" (libjpeg
  takes three components as YCbCr when it is present), without its thumbnail, which is an
  image of its own (rewritten with a 0 x 0 thumbnail); APP14 "Adobe" (its transform flag
  says whether the components are YCbCr, YCCK or untransformed); APP11 "JP" (JPEG XT boxes,
  ISO/IEC 18477, which libjpeg's decoder applies); JPEG-LS APP8 "mrfx"/"xfrm" (HP's colour
  transforms, which CharLS applies).
- Data after EOI is dropped (no decoder reads it); the frame is padded to even length again
  (one byte: a frame whose only change would be its pad byte is left as it is).

JPEG 2000 (ISO/IEC 15444-1, -2, -15: .90-.93, HTJ2K .201-.203): the main header from SOC to
the first SOT and every tile-part header up to its SOD; tile-part data is skipped by its
length (Psot), never parsed. COM (FF64) is removed wherever it stands; a tile-part whose
header loses one gets its Psot shortened, and TLM segments (tile-part lengths, only an index
for random access) are then removed rather than left wrong. Data after EOC is dropped.

A stream that does not walk (truncated, a marker the standard does not define where it
stands, a JP2 file wrapped around the codestream, which DICOM does not allow) raises
:class:`StreamError`, naming why, and is left as it was: the caller must not keep it. Other
compressed transfer syntaxes are not walked: RLE (:data:`NO_SEGMENTS`) has a header of
segment offsets and nothing else; the rest also raise :class:`StreamError`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from pydicom.encaps import encapsulate, encapsulate_extended, generate_frames, parse_basic_offsets
from pydicom.uid import (
    UID,
    JPEG2000TransferSyntaxes,
    JPEGLSTransferSyntaxes,
    JPEGTransferSyntaxes,
    RLETransferSyntaxes,
)

NO_SEGMENTS = frozenset(RLETransferSyntaxes)  # pixels only: nothing to walk

SOI, EOI, SOS, COM = 0xD8, 0xD9, 0xDA, 0xFE
APP0, APP8, APP11, APP14, APP15 = 0xE0, 0xE8, 0xEB, 0xEE, 0xEF
RESTARTS = range(0xD0, 0xD8)
# ISO/IEC 10918-1 Table B.1 marker segments (SOF0-15 but JPG, DHT, DAC, DQT, DNL, DRI, DHP, EXP).
JPEG_TABLES = frozenset({*range(0xC0, 0xD0), 0xDB, 0xDC, 0xDD, 0xDE, 0xDF}) - {0xC8}
# ISO/IEC 14495-1: SOF55, LSE, DRI, and DNL (Table C.1).
JPEG_LS_TABLES = frozenset({0xF7, 0xF8, 0xDD, 0xDC})
# Which bytes after an FF end an entropy-coded segment (a marker), by the stuffing rules.
_JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7]")
_JPEG_LS_MARKER = re.compile(rb"\xff[\x80-\xcf\xd8-\xff]")

SOC, SOT, SOD, EOC, J2K_COM, TLM = 0xFF4F, 0xFF90, 0xFF93, 0xFFD9, 0xFF64, 0xFF55
# ISO/IEC 15444-1 Table A.2 (SIZ, COD, COC, TLM, PLM, PLT, QCD, QCC, RGN, POC, PPM, PPT, CRG, COM),
# 15444-15 (CAP, PRF, CPF) and 15444-2's extension segments (FF70-FF7F).
J2K_SEGMENTS = frozenset({0xFF50, 0xFF51, 0xFF52, 0xFF53, 0xFF55, 0xFF56, 0xFF57, 0xFF58, 0xFF59, 0xFF5C,
                          0xFF5D, 0xFF5E, 0xFF5F, 0xFF60, 0xFF61, 0xFF63, J2K_COM, *range(0xFF70, 0xFF80)})
JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"


class StreamError(ValueError):
    """A codestream that does not walk; the message says why (no values from it)."""


@dataclass(frozen=True)
class Stripped:
    """Encapsulated Pixel Data without its informative marker segments."""

    pixel_data: bytes  # the input itself when nothing was removed
    extended: tuple[bytes, bytes] | None  # Extended Offset Table and its Lengths, when the input had them
    removed: int  # segments removed (and trailing data dropped), over all frames
    kept: tuple[bytes, ...]  # application segments kept because decoding reads them


@dataclass
class _Frame:
    """One frame's codestream as it is rebuilt."""

    parts: list[bytes]
    removed: int = 0  # segments removed
    kept: list[bytes] = field(default_factory=list)  # application segments kept (decoding reads them)


def strip_segments(pixel_data: bytes, syntax: UID, frames: int,
                   extended: tuple[bytes, bytes] | None = None) -> Stripped:
    """``pixel_data`` (encapsulated, ``frames`` frames, in ``syntax``) without the informative
    marker segments of its codestreams, re-encapsulated one fragment per frame with the offset
    table it had (Basic, empty Basic, or ``extended``). Raises :class:`StreamError`."""
    walk = _walker(syntax)
    if walk is None:
        return Stripped(pixel_data, extended, 0, ())
    try:
        streams = list(generate_frames(pixel_data, number_of_frames=frames, extended_offsets=extended))
    except Exception as exc:  # pydicom raises several types for malformed encapsulation
        raise StreamError(f"encapsulated Pixel Data does not split into {frames} frame(s)") from exc
    if len(streams) != frames:
        raise StreamError(f"encapsulated Pixel Data holds {len(streams)} frame(s), not {frames}")
    walked = [walk(stream) for stream in streams]
    removed = sum(frame.removed for frame in walked)
    kept = tuple(segment for frame in walked for segment in frame.kept)
    if not removed:
        return Stripped(pixel_data, extended, 0, kept)
    cleaned = [b"".join(frame.parts) for frame in walked]
    if extended is not None:
        data, offsets, lengths = encapsulate_extended(cleaned)
        return Stripped(data, (offsets, lengths), removed, kept)
    has_bot = bool(parse_basic_offsets(pixel_data))
    return Stripped(encapsulate(cleaned, has_bot=has_bot), None, removed, kept)


def _walker(syntax: UID) -> Callable[[bytes], _Frame] | None:
    if syntax in JPEGTransferSyntaxes:
        return lambda stream: _jpeg(stream, JPEG_TABLES, _JPEG_MARKER, _jpeg_application)
    if syntax in JPEGLSTransferSyntaxes:
        return lambda stream: _jpeg(stream, JPEG_LS_TABLES, _JPEG_LS_MARKER, _jpeg_ls_application)
    if syntax in JPEG2000TransferSyntaxes:
        return _j2k
    if syntax in NO_SEGMENTS:
        return None
    raise StreamError(f"{syntax.name}: its codestreams are not walked for marker segments")


# -- JPEG and JPEG-LS ---------------------------------------------------------------------------

def _jpeg(stream: bytes, tables: frozenset[int], marker_after: re.Pattern[bytes],
          application: Callable[[int, bytes], bytes | None]) -> _Frame:
    if stream[:2] != b"\xff\xd8":
        raise StreamError("a frame does not start with SOI")
    frame, pos = _Frame([b"\xff\xd8"]), 2
    while True:
        code, pos = _jpeg_marker(stream, pos)
        if code == EOI:
            frame.parts.append(b"\xff\xd9")
            frame.removed += _trailing(stream, pos)
            return frame
        if not (code in tables or code == SOS or code == COM or APP0 <= code <= APP15):
            raise StreamError(f"marker FF{code:02X} where a marker segment must stand")
        if pos + 2 > len(stream):
            raise StreamError("truncated marker segment")
        end = pos + int.from_bytes(stream[pos:pos + 2], "big")
        if end < pos + 2 or end > len(stream):
            raise StreamError(f"marker segment FF{code:02X} runs past the end of the frame")
        segment = stream[pos - 2:end]
        if code == COM:
            frame.removed += 1
        elif APP0 <= code <= APP15:
            kept = application(code, segment)
            if kept is None or kept != segment:
                frame.removed += 1
            if kept is not None:
                frame.parts.append(kept)
                frame.kept.append(kept)
        else:
            frame.parts.append(segment)
        pos = end
        if code == SOS:  # the entropy-coded segment runs to the next marker
            found = marker_after.search(stream, pos)
            if found is None:
                raise StreamError("scan data without EOI")
            frame.parts.append(stream[pos:found.start()])
            pos = found.start()


def _jpeg_marker(stream: bytes, pos: int) -> tuple[int, int]:
    """The marker code at ``pos`` (fill bytes FF skipped) and the position after it."""
    if stream[pos:pos + 1] != b"\xff":
        raise StreamError("no marker where one must stand (truncated or corrupt frame)")
    while stream[pos + 1:pos + 2] == b"\xff":
        pos += 1
    if pos + 2 > len(stream):
        raise StreamError("frame ends without EOI")
    return stream[pos + 1], pos + 2


def _jpeg_application(code: int, segment: bytes) -> bytes | None:
    """The APPn segment of a JPEG stream as kept (None: removed)."""
    payload = segment[4:]
    if code == APP0 and payload.startswith(b"JFIF\x00") and len(payload) >= 14:
        if payload[12:14] == b"\x00\x00":
            return segment
        return b"\xff\xe0\x00\x10" + payload[:12] + b"\x00\x00"  # without its thumbnail
    if (code == APP14 and payload.startswith(b"Adobe")) or (code == APP11 and payload.startswith(b"JP")):
        return segment
    return None


def _jpeg_ls_application(code: int, segment: bytes) -> bytes | None:
    """The APPn segment of a JPEG-LS stream as kept (None: removed)."""
    return segment if code == APP8 and segment[4:8] in (b"mrfx", b"xfrm") else None


# -- JPEG 2000 ----------------------------------------------------------------------------------

def _j2k(stream: bytes) -> _Frame:
    if stream.startswith(JP2_SIGNATURE):
        raise StreamError("a JP2 file, not a bare JPEG 2000 codestream (DICOM allows only the codestream)")
    if stream[:2] != b"\xff\x4f":
        raise StreamError("a frame does not start with SOC")
    main, pos, removed = _j2k_segments(stream, 2, SOT)
    tile_parts: list[bytes] = []
    lengths_changed = False
    while _u16(stream, pos) == SOT:
        start = pos
        if _u16(stream, pos + 2) != 10:
            raise StreamError("SOT segment of the wrong length")
        psot = int.from_bytes(stream[pos + 6:pos + 10], "big")
        header, sod, dropped = _j2k_segments(stream, pos + 12, SOD)
        if psot:
            end = start + psot
        else:  # the last tile-part runs to EOC
            end = stream.rfind(b"\xff\xd9")
        if end < sod + 2 or end > len(stream):
            raise StreamError("tile-part runs past the end of the frame")
        sot = stream[start:start + 12]
        if dropped:
            lengths_changed = True
            new_length = (psot - sum(len(s) for s in dropped)) if psot else 0
            sot = sot[:6] + new_length.to_bytes(4, "big") + sot[10:]
        tile_parts.append(b"".join([sot, *header, stream[sod:end]]))
        removed += dropped
        pos = end
    if _u16(stream, pos) != EOC:
        raise StreamError("no EOC after the last tile-part")
    frame = _Frame([b"\xff\x4f"])
    frame.removed = len(removed) + _trailing(stream, pos + 2)
    if lengths_changed:
        kept_main = [segment for segment in main if _u16(segment, 0) != TLM]
        frame.removed += len(main) - len(kept_main)
        main = kept_main
    frame.parts += [*main, *tile_parts, b"\xff\xd9"]
    return frame


def _j2k_segments(stream: bytes, pos: int, until: int) -> tuple[list[bytes], int, list[bytes]]:
    """The marker segments from ``pos`` up to the marker ``until``: those kept, the position of
    ``until``, those removed (COM)."""
    kept: list[bytes] = []
    removed: list[bytes] = []
    while (code := _u16(stream, pos)) != until:
        if code not in J2K_SEGMENTS:
            raise StreamError(f"marker {code:04X} where a JPEG 2000 header segment must stand"
                              if code >= 0 else "truncated JPEG 2000 header")
        end = pos + 2 + _u16(stream, pos + 2)
        if end < pos + 4 or end > len(stream):
            raise StreamError(f"marker segment {code:04X} runs past the end of the frame")
        (removed if code == J2K_COM else kept).append(stream[pos:end])
        pos = end
    return kept, pos, removed


def _trailing(stream: bytes, end: int) -> int:
    """1 when data follows the end of the codestream at ``end``: more than the one byte that
    pads a frame to even length (which is not counted: it is dropped and added again)."""
    return int(len(stream) - end > 1)


def _u16(data: bytes, pos: int) -> int:
    """The big-endian 16-bit value at ``pos`` (-1: past the end)."""
    return int.from_bytes(data[pos:pos + 2], "big") if pos + 2 <= len(data) else -1

