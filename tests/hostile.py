"""Hostile inputs built from real images: each failure class of issue 14, and the PHI canaries.

Every builder starts from a real CT slice of pydicom-data (693_UNCR, Explicit VR Little Endian)
and breaks one thing, the way a faulty modality, a careless converter or an attacker would.
The tests and ``benchmarks/fuzz.py`` share them.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable

import pydicom
from pydicom import Dataset
from pydicom.dataelem import DataElement
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.sequence import Sequence
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian

from images import image_path

SOURCE = "693_UNCR.dcm"
# Distinctive values no log line, error comment, quarantine reason or file name may contain.
CANARIES = {
    "date": "19471399",  # PatientBirthDate: month 14, day 99
    "ui_name": "Canary^Quixote^UI",  # PatientName written with VR UI
    "private": "CANARY-PRIVATE-77031",  # in a private tag
    "address": "Calle Canario 7, Toboso",  # PatientAddress with VR UI (the example)
    "uid": "1.2.999.canary.77031",  # a corrupted SOP Instance UID (letters in a UI)
}


def real_ct() -> Dataset:
    return pydicom.dcmread(image_path(SOURCE))


def encode(ds: Dataset, transfer_syntax: str = ExplicitVRLittleEndian, meta_uid: str | None = None) -> bytes:
    """A Part 10 file of ``ds`` with this transfer syntax in its meta, the body in Explicit VR
    Little Endian (so announcing another syntax over the same body is a lie the reader meets)."""
    meta = Dataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = meta_uid or ds.SOPInstanceUID
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
    buffer = io.BytesIO()
    buffer.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(buffer, pydicom.dataset.FileMetaDataset(meta), enforce_standard=True)
    body = pydicom.filebase.DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, False
    write_dataset(body, ds)
    return buffer.getvalue() + body.getvalue()


def _raw_element(group: int, element: int, vr: bytes, value: bytes) -> bytes:
    """One Explicit VR Little Endian element, written byte by byte (VR and length as given)."""
    return struct.pack("<HH", group, element) + vr + struct.pack("<H", len(value)) + value


def _insert_before_pixels(data: bytes, raw: bytes) -> bytes:
    at = data.rindex(b"\xe0\x7f\x10\x00")  # (7FE0,0010) Pixel Data
    return data[:at] + raw + data[at:]


def unknown_vr() -> bytes:
    """An element whose VR bytes are no VR at all ('ZZ')."""
    return _insert_before_pixels(encode(real_ct()), _raw_element(0x0018, 0x1020, b"ZZ", b"CANARYV1"))


def bad_value_length() -> bytes:
    """A US (2 bytes per value) element of length 3."""
    return _insert_before_pixels(encode(real_ct()), _raw_element(0x0028, 0x0106, b"US", b"\x01\x02\x03"))


def empty_pixel_data() -> bytes:
    ds = real_ct()
    ds.PixelData = b""
    return encode(ds)


def image_of_size(rows: int, columns: int, new_uid: bool = False) -> bytes:
    """A consistent image of ``rows`` x ``columns`` (0 x 0 has empty Pixel Data); ``new_uid``:
    an instance of its own (else the source's SOP Instance UID)."""
    ds = real_ct()
    if new_uid:
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.Rows, ds.Columns = rows, columns
    ds.PixelData = ds.PixelData[: rows * columns * 2]
    return encode(ds)


def nested_sequences(depth: int = 100) -> bytes:
    """Referenced Image Sequence nested ``depth`` levels deep."""
    ds = real_ct()
    inner = Dataset()
    inner.ReferencedSOPInstanceUID = "1.2.3"
    for _ in range(depth):
        outer = Dataset()
        outer.ReferencedImageSequence = Sequence([inner])
        inner = outer
    ds.ReferencedImageSequence = inner.ReferencedImageSequence
    return encode(ds)


def deflate_lie() -> bytes:
    """Deflated Explicit VR Little Endian announced in the meta, a plain body behind it."""
    return encode(real_ct(), DeflatedExplicitVRLittleEndian)


def malformed_meta() -> bytes:
    """File meta whose Transfer Syntax UID element claims more bytes than the meta holds."""
    data = bytearray(encode(real_ct()))
    at = data.index(b"\x02\x00\x10\x00UI")  # (0002,0010) Transfer Syntax UID
    struct.pack_into("<H", data, at + 6, 0xFFF0)
    return bytes(data)


def missing_media_storage_uid() -> bytes:
    """A real CT whose file meta lacks Media Storage SOP Instance UID (the data set has its UID)."""
    ds = real_ct()
    data = bytearray(encode(ds))
    uid = ds.SOPInstanceUID.encode()
    uid += b"\0" * (len(uid) % 2)
    element = _raw_element(0x0002, 0x0003, b"UI", uid)
    at = data.index(element)
    del data[at: at + len(element)]
    group_length = data.index(b"\x02\x00\x00\x00UL") + 8
    struct.pack_into("<I", data, group_length, struct.unpack_from("<I", data, group_length)[0] - len(element))
    return bytes(data)


def mismatched_instance_uid() -> bytes:
    """File meta (and so a C-STORE's Affected SOP Instance UID) naming another instance."""
    return encode(real_ct(), meta_uid=pydicom.uid.generate_uid())


def phi_canaries() -> Dataset:
    """A protectable real CT whose values are invalid in ways pydicom warns about, quoting them."""
    ds = real_ct()
    ds.PatientBirthDate = CANARIES["date"]
    ds.add(DataElement(0x00100010, "UI", CANARIES["ui_name"]))
    ds.add(DataElement(0x00101040, "UI", CANARIES["address"]))
    ds.private_block(0x0009, "CANARY CORP", create=True).add_new(0x01, "LO", CANARIES["private"])
    ds.add(DataElement(0x00081155, "UI", CANARIES["uid"]))  # Referenced SOP Instance UID
    ds.SOPInstanceUID = numbered_uid(0)
    return ds


def numbered_uid(number: int) -> str:
    """SOP Instance UIDs of one length: a file's copies can be renumbered byte for byte."""
    return f"1.2.826.0.1.3680043.10.1401.{number:010d}"


def renumbered(data: bytes, number: int) -> bytes:
    """``data`` (an encoded :func:`phi_canaries`) as instance ``number``: meta and data set."""
    return data.replace(numbered_uid(0).encode(), numbered_uid(number).encode())


def body_offset(data: bytes) -> int:
    """Where the data set starts, after the preamble and the file meta group."""
    group_length = struct.unpack_from("<I", data, 128 + 4 + 8)[0]  # (0002,0000) UL, first in the meta
    return 128 + 4 + 12 + group_length


# Each CLI failure class of the issue, with a word its one-line reason must contain.
FAILURE_CLASSES: dict[str, tuple[Callable[[], bytes], str]] = {
    "unknown_vr": (unknown_vr, "VR"),
    "bad_value_length": (bad_value_length, "length"),
    "empty_pixel_data": (empty_pixel_data, "Pixel Data"),
    "zero_by_zero": (lambda: image_of_size(0, 0), "Pixel Data"),
    "nested_100": (nested_sequences, "nested"),
    "deflate_lie": (deflate_lie, "deflate"),
    "malformed_meta": (malformed_meta, "file meta"),
}


# Images too small for the pixel carrier: protected with the header carrier alone.
SMALL_IMAGES: dict[str, Callable[[], bytes]] = {
    "one_by_one": lambda: image_of_size(1, 1, new_uid=True),
    "two_columns": lambda: image_of_size(512, 2, new_uid=True),
}


# -- fuzzing: Hypothesis strategies over real files and real PDUs -------------------------------

# Elements whose VR, length or value bytes the structured mutations aim at.
TARGET_TAGS = (
    0x00020010, 0x00020003, 0x00080016, 0x00080018, 0x00100010, 0x00100030, 0x00280002,
    0x00280004, 0x00280008, 0x00280010, 0x00280011, 0x00280100, 0x00280101, 0x00280103,
    0x7FE00010,
)


def _tag_bytes(tag: int) -> bytes:
    return struct.pack("<HH", tag >> 16, tag & 0xFFFF)


def file_mutations():
    """Lists of edits of a Part 10 file: bytes overwritten, inserted or deleted in the header,
    an element's VR/length/value bytes overwritten, or the file cut short."""
    from hypothesis import strategies as st

    header = st.integers(0, 1600)  # the header of the real CT ends at byte ~1570
    edit = st.one_of(
        st.tuples(st.just("set"), header, st.binary(min_size=1, max_size=8)),
        st.tuples(st.just("insert"), header, st.binary(min_size=1, max_size=16)),
        st.tuples(st.just("delete"), header, st.integers(1, 16)),
        st.tuples(st.just("element"), st.sampled_from(TARGET_TAGS), st.binary(min_size=1, max_size=10)),
        st.tuples(st.just("truncate"), st.integers(0, 530_000), st.just(b"")),
    )
    return st.lists(edit, min_size=1, max_size=4)


def mutate(data: bytes, edits) -> bytes:
    """Apply ``edits`` (from :func:`file_mutations`) to ``data``."""
    out = bytearray(data)
    for kind, where, what in edits:
        if kind == "set":
            out[where: where + len(what)] = what
        elif kind == "insert":
            out[where:where] = what
        elif kind == "delete":
            del out[where: where + what]
        elif kind == "element":
            at = out.find(_tag_bytes(where))
            if at >= 0:
                out[at + 4: at + 4 + len(what)] = what  # VR, length and the value's first bytes
        else:
            del out[where:]
    return bytes(out)


def _item(kind: int, payload: bytes) -> bytes:
    return struct.pack(">BxH", kind, len(payload)) + payload


def associate_rq(called: str = "STEGONODE", calling: str = "FUZZER") -> bytes:
    """A well-formed A-ASSOCIATE-RQ PDU proposing Verification in Implicit VR Little Endian."""
    context = _item(0x30, b"1.2.840.10008.1.1") + _item(0x40, b"1.2.840.10008.1.2")
    items = (
        _item(0x10, b"1.2.840.10008.3.1.1.1")
        + _item(0x20, bytes([1, 0, 0, 0]) + context)
        + _item(0x50, _item(0x51, struct.pack(">I", 16384)))
    )
    body = struct.pack(">HH", 1, 0) + called.ljust(16).encode() + calling.ljust(16).encode() + b"\0" * 32 + items
    return struct.pack(">BxI", 0x01, len(body)) + body


def pdus():
    """Raw bytes for the listener: junk, PDU headers with lying lengths, mutated association requests."""
    from hypothesis import strategies as st

    header = st.builds(
        lambda kind, length, payload: struct.pack(">BxI", kind, length) + payload,
        st.integers(0, 255), st.integers(0, 0xFFFFFFFF), st.binary(max_size=64),
    )
    request = associate_rq()
    mutated = st.builds(
        lambda edits: mutate(request, edits),
        st.lists(st.one_of(
            st.tuples(st.just("set"), st.integers(0, len(request)), st.binary(min_size=1, max_size=6)),
            st.tuples(st.just("insert"), st.integers(0, len(request)), st.binary(min_size=1, max_size=6)),
            st.tuples(st.just("delete"), st.integers(0, len(request)), st.integers(1, 8)),
            st.tuples(st.just("truncate"), st.integers(0, len(request)), st.just(b"")),
        ), min_size=1, max_size=3),
    )
    return st.one_of(st.binary(max_size=512), header, mutated)


def command_sets():
    """P-DATA-TF PDUs carrying a DIMSE command fragment: random bytes, or a real C-ECHO-RQ
    command set with bytes overwritten (unknown commands, lying lengths, missing fields)."""
    from hypothesis import strategies as st

    echo = Dataset()
    echo.CommandGroupLength = 0
    echo.AffectedSOPClassUID = "1.2.840.10008.1.1"
    echo.CommandField = 0x0030
    echo.MessageID = 1
    echo.CommandDataSetType = 0x0101
    buffer = pydicom.filebase.DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, True
    write_dataset(buffer, echo)
    command = buffer.getvalue()

    def pdata(body: bytes, control: int) -> bytes:
        pdv = struct.pack(">IBB", len(body) + 2, 1, control) + body
        return struct.pack(">BxI", 0x04, len(pdv)) + pdv

    edited = st.builds(
        lambda at, what: command[:at] + what + command[at + len(what):],
        st.integers(0, len(command)), st.binary(min_size=1, max_size=8),
    )
    return st.builds(pdata, st.one_of(st.binary(max_size=128), edited), st.sampled_from([0x00, 0x01, 0x02, 0x03]))
