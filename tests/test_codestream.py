"""What a sender wrote into a compressed codestream besides the pixels (a JPEG comment, an
application segment, a JPEG 2000 comment) is not stored: the node keeps such streams only
without their informative marker segments (stegonode.dicom.codestream), the pixels decoding
to exactly the same values, and stores the pixels decoded where a stream does not walk.

The sources are pydicom-data's compressed images with the patient's name and ID written into
their codestreams, as some modalities do, run through protect_object with the header carrier
alone (the pixels carry nothing, so the received stream is what would be kept)."""

from __future__ import annotations

import copy
import subprocess

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate, encapsulate_extended, generate_frames, parse_basic_offsets
from pydicom.uid import JPEGLSLossless

from stegonode.dicom.codestream import StreamError, strip_segments
from stegonode.errors import InputError
from stegonode.handlers.pipeline import build_pipeline
from stegonode.handlers.protect import protect_object
from stegonode.handlers.reveal import reveal
from stegonode.node import config as node_config

from images import dciodvfy_errors, dcmtk, image_path, realdata_images

NAME, PATIENT_ID = "Quixotova^Zebulina", "QZ918273"
IDENTITY = (b"quixotova", b"zebulina", PATIENT_ID.lower().encode())
TEXT = b"Patient: ZEBULINA QUIXOTOVA, ID QZ918273"


def _segment(marker: int, payload: bytes) -> bytes:
    return marker.to_bytes(2, "big") + (len(payload) + 2).to_bytes(2, "big") + payload


def _after_soi(stream: bytes, *segments: bytes) -> bytes:
    return stream[:2] + b"".join(segments) + stream[2:]


def _j2k_with_comments(stream: bytes) -> bytes:
    """A comment after SIZ (main header) and one in the first tile-part header (its Psot fixed)."""
    comment = _segment(0xFF64, b"\x00\x01" + TEXT)  # Rcom 1: Latin text
    siz_end = 4 + int.from_bytes(stream[4:6], "big")  # SOC, then SIZ and its length
    stream = stream[:siz_end] + comment + stream[siz_end:]
    sot = stream.index(b"\xff\x90")
    psot = int.from_bytes(stream[sot + 6:sot + 10], "big")
    new_psot = (psot + len(comment)) if psot else 0
    return (stream[:sot + 6] + new_psot.to_bytes(4, "big") + stream[sot + 10:sot + 12] + comment
            + stream[sot + 12:])


JPEG = lambda stream: _after_soi(stream, _segment(0xFFFE, TEXT), _segment(0xFFE1, b"Exif\x00\x00" + TEXT),  # noqa: E731
                                 _segment(0xFFED, b"Photoshop 3.0\x00" + TEXT))
JPEG_LS = lambda stream: _after_soi(stream, _segment(0xFFFE, TEXT), _segment(0xFFE8, b"SPIFF\x00" + TEXT))  # noqa: E731

# source -> how its frames get the identity written in, and DCMTK's decoder of its syntax
SOURCES = {
    "JPGExtended.dcm": (JPEG, "dcmdjpeg"),  # JPEG Extended, 12 bit
    "JPEG-LL.dcm": (JPEG, "dcmdjpeg"),  # JPEG Lossless SV1, 16 bit
    "SC_rgb_jpeg_dcmtk.dcm": (JPEG, "dcmdjpeg"),  # JPEG Baseline YCbCr, with its JFIF segment
    "SC_rgb_jpeg_gdcm.dcm": (JPEG, "dcmdjpeg"),  # JPEG Lossless RGB, with its Adobe segment
    "emri_small_jpeg_ls_lossless.dcm": (JPEG_LS, "dcmdjpls"),  # JPEG-LS lossless, 10 frames
    "SC_rgb_jls_lossy_sample.dcm": (JPEG_LS, "dcmdjpls"),  # JPEG-LS near-lossless RGB
    "MR_small_jp2klossless.dcm": (_j2k_with_comments, ""),  # JPEG 2000 lossless
    "US1_J2KI.dcm": (_j2k_with_comments, ""),  # JPEG 2000 irreversible, YBR_ICT
}


def _with_identity(name: str, write=None) -> pydicom.Dataset:
    """pydicom-data's ``name`` with the patient's name and ID in its header and, through
    ``write`` (each frame's stream -> the stream with them), in its codestream."""
    ds = pydicom.dcmread(image_path(name))
    ds.PatientName, ds.PatientID = NAME, PATIENT_ID
    if write is not None:
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        streams = [write(frame) for frame in generate_frames(ds.PixelData, number_of_frames=frames)]
        ds.PixelData = encapsulate(streams, has_bot=bool(parse_basic_offsets(ds.PixelData)))
    return ds


def _header_only(node_keys, transfer_syntax: str = "jpeg-ls-lossless"):
    config = node_config.load(None)
    return build_pipeline(config["pipeline"]["handlers"], config["handlers"], node_keys, carriers=("header",),
                          transfer_syntax=transfer_syntax)


def _assert_no_identity(data: bytes) -> None:
    lowered = data.lower()
    for value in IDENTITY:
        assert value not in lowered, value


@pytest.mark.parametrize("name", list(SOURCES))
def test_kept_streams_lose_comments_and_application_segments(name, node_keys, peer_keys, tmp_path):
    write, decoder = SOURCES[name]
    original = pydicom.dcmread(image_path(name))
    source = _with_identity(name, write)
    assert PATIENT_ID.encode() in source.PixelData  # written where the header check never looked
    assert np.array_equal(source.pixel_array, original.pixel_array)  # ... and decoders skip it
    protected = protect_object(copy.deepcopy(source), _header_only(node_keys))
    assert protected.report["carriers"] == "header"
    _assert_no_identity(protected.data)  # anywhere in the stored file
    stored = tmp_path / "stored.dcm"
    stored.write_bytes(protected.data)
    ds = pydicom.dcmread(stored)
    assert ds.file_meta.TransferSyntaxUID == source.file_meta.TransferSyntaxUID  # the stream kept, not re-encoded
    assert len(ds.PixelData) <= len(original.PixelData)  # no more than before the sender wrote its segments
    assert np.array_equal(ds.pixel_array, original.pixel_array)  # decoded, exactly the same values
    assert protected.instance.report["codestream_segments_removed"] >= 2
    revealed = reveal(ds, peer_keys).dataset
    assert str(revealed.PatientName) == NAME and revealed.PatientID == PATIENT_ID
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID"):  # SC_rgb_jls_lossy_sample has neither
        assert revealed.get(keyword) == original.get(keyword), keyword
    decompressed = copy.deepcopy(ds)  # dciodvfy finds nothing the decoded copy or the source did not have
    decompressed.decompress(generate_instance_uid=False)
    decompressed.save_as(tmp_path / "decoded_copy.dcm", enforce_file_format=True)
    assert dciodvfy_errors(stored) <= dciodvfy_errors(tmp_path / "decoded_copy.dcm") | dciodvfy_errors(image_path(name))
    if decoder:  # DCMTK reads the stream as kept
        decoded = tmp_path / "decoded.dcm"
        result = subprocess.run([dcmtk(decoder), str(stored), str(decoded)], capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0, result.stderr
        assert np.array_equal(pydicom.dcmread(decoded).pixel_array.shape, original.pixel_array.shape)


def test_an_object_the_pixels_cannot_carry_keeps_its_stream_without_segments(node_keys, peer_keys):
    """A 3 x 3 JPEG image (too small for the pixel carrier): never decoded, kept less its segments."""
    original = pydicom.dcmread(image_path("SC_rgb_small_odd_jpeg.dcm"))
    protected = protect_object(_with_identity("SC_rgb_small_odd_jpeg.dcm", JPEG), _header_only(node_keys))
    assert "too small" in protected.instance.report["pixel_obstacle"]
    _assert_no_identity(protected.data)
    ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(protected.data))
    assert ds.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
    assert ds.PixelData == original.PixelData  # exactly the stream before the sender's segments
    assert str(reveal(ds, peer_keys).dataset.PatientName) == NAME


def test_a_segment_decoding_reads_that_holds_the_identity_is_not_kept(node_keys):
    """An Adobe segment (kept: its transform flag tells decoders the colour model) with the
    patient's name after its fields: the stream is not kept, the pixels are stored re-encoded
    losslessly in the node's syntax."""
    adobe = _segment(0xFFEE, b"Adobe\x00\x64\x00\x00\x00\x00\x00" + TEXT)
    original = pydicom.dcmread(image_path("JPGExtended.dcm"))
    source = _with_identity("JPGExtended.dcm", lambda stream: _after_soi(stream, adobe))
    assert np.array_equal(source.pixel_array, original.pixel_array)
    protected = protect_object(copy.deepcopy(source), _header_only(node_keys))
    _assert_no_identity(protected.data)
    assert "identity" in protected.instance.report["codestream_not_kept"]
    ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(protected.data))
    assert ds.file_meta.TransferSyntaxUID == JPEGLSLossless
    assert np.array_equal(ds.pixel_array, original.pixel_array)


def test_a_stream_that_does_not_walk_is_stored_decoded(node_keys):
    """GDCM's JP2 file in a JPEG 2000 object (DICOM allows the bare codestream only), with an
    XML box naming the patient: not kept, its pixels stored decoded and re-encoded losslessly."""
    original = pydicom.dcmread(image_path("GDCMJ2K_TextGBR.dcm"))
    xml = b"<patient>" + TEXT + b"</patient>"
    box = (len(xml) + 8).to_bytes(4, "big") + b"xml " + xml

    def with_box(stream: bytes) -> bytes:
        assert stream.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n")
        ftyp_end = 12 + int.from_bytes(stream[12:16], "big")
        return stream[:ftyp_end] + box + stream[ftyp_end:]

    source = _with_identity("GDCMJ2K_TextGBR.dcm", with_box)
    assert np.array_equal(source.pixel_array, original.pixel_array)
    protected = protect_object(copy.deepcopy(source), _header_only(node_keys))
    _assert_no_identity(protected.data)
    assert "JP2" in protected.instance.report["codestream_not_kept"]
    ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(protected.data))
    assert ds.file_meta.TransferSyntaxUID != original.file_meta.TransferSyntaxUID
    assert np.array_equal(ds.pixel_array, original.pixel_array)


def test_a_truncated_stream_the_pixels_cannot_carry_is_refused_with_a_reason(node_keys):
    """Never decoded (too small for the pixel carrier), its stream cut inside a segment: neither
    kept unchecked nor decodable, so refused, with a one-line reason."""
    def truncated(stream: bytes) -> bytes:
        return _after_soi(stream, _segment(0xFFFE, TEXT))[:20]

    with pytest.raises(InputError, match="not kept .*does not decode") as raised:
        protect_object(_with_identity("SC_rgb_small_odd_jpeg.dcm", truncated), _header_only(node_keys))
    assert "\n" not in str(raised.value) and "QZ918273" not in str(raised.value)


def test_offset_tables_are_rebuilt_for_the_shorter_frames():
    """Ten JPEG-LS frames with a Basic Offset Table, then with an Extended one: each frame
    found by its table decodes as before."""
    ds = _with_identity("emri_small_jpeg_ls_lossless.dcm", JPEG_LS)
    before = ds.pixel_array
    frames = list(generate_frames(ds.PixelData, number_of_frames=10))
    for extended in (False, True):
        if extended:
            data, offsets, lengths = encapsulate_extended(frames)
            result = strip_segments(data, ds.file_meta.TransferSyntaxUID, 10, (offsets, lengths))
            assert result.extended is not None
            ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths = result.extended
        else:
            result = strip_segments(encapsulate(frames), ds.file_meta.TransferSyntaxUID, 10)
            assert result.extended is None and len(parse_basic_offsets(result.pixel_data)) == 10
        assert result.removed == 20 and TEXT not in result.pixel_data
        stripped = copy.deepcopy(ds)
        stripped.PixelData = result.pixel_data
        assert np.array_equal(stripped.pixel_array, before)


@pytest.mark.parametrize("cut, reason", [
    (lambda s: s[:6], "runs past the end"),
    (lambda s: s[:2] + b"\xff\x02\x00\x04ab" + s[2:], "marker FF02"),
    (lambda s: s[:-2], "without EOI"),
])
def test_streams_that_do_not_walk_raise_with_a_reason(cut, reason):
    ds = pydicom.dcmread(image_path("JPGExtended.dcm"))
    (frame,) = generate_frames(ds.PixelData, number_of_frames=1)
    with pytest.raises(StreamError, match=reason):
        strip_segments(encapsulate([cut(_after_soi(frame, _segment(0xFFFE, TEXT)))]),
                       ds.file_meta.TransferSyntaxUID, 1)


def test_a_stream_without_informative_segments_is_kept_byte_for_byte():
    ds = pydicom.dcmread(image_path("JPGExtended.dcm"))
    result = strip_segments(ds.PixelData, ds.file_meta.TransferSyntaxUID, 1)
    assert result.removed == 0 and result.pixel_data is ds.PixelData


def test_realdata_streams_keep_their_pixels_and_do_not_grow():
    """Every compressed file of ../shared/realdata: the stream walks, stripped it is no larger
    and decodes to the same values (the encoders' comments and trailing bytes go)."""
    compressed = 0
    for path in realdata_images():
        ds = pydicom.dcmread(path)
        syntax = ds.file_meta.TransferSyntaxUID
        if not syntax.is_compressed:
            continue
        compressed += 1
        result = strip_segments(ds.PixelData, syntax, int(ds.get("NumberOfFrames", 1) or 1))
        assert len(result.pixel_data) <= len(ds.PixelData), path.name
        if result.removed:
            stripped = copy.deepcopy(ds)
            stripped.PixelData = result.pixel_data
            assert np.array_equal(stripped.pixel_array, ds.pixel_array), path.name
    if not compressed:
        pytest.skip("no compressed file in ../shared/realdata")


def _frame(name: str) -> tuple[pydicom.Dataset, bytes]:
    ds = pydicom.dcmread(image_path(name))
    (frame,) = generate_frames(ds.PixelData, number_of_frames=1)
    return ds, frame


def _decodes_as(ds: pydicom.Dataset, pixel_data: bytes) -> bool:
    copied = copy.deepcopy(ds)
    copied.PixelData = pixel_data
    return np.array_equal(copied.pixel_array, ds.pixel_array)


def test_a_jfif_segment_is_kept_without_its_thumbnail():
    ds, frame = _frame("JPGExtended.dcm")
    thumbnail = bytes(range(12))  # 2 x 2 RGB: an image of its own
    jfif = _segment(0xFFE0, b"JFIF\x00\x01\x02\x00\x00\x01\x00\x01\x02\x02" + thumbnail)
    result = strip_segments(encapsulate([_after_soi(frame, jfif)]), ds.file_meta.TransferSyntaxUID, 1)
    (kept,) = result.kept
    assert result.removed == 1 and kept == b"\xff\xe0\x00\x10JFIF\x00\x01\x02\x00\x00\x01\x00\x01\x00\x00"
    assert kept in result.pixel_data and thumbnail not in result.pixel_data
    assert _decodes_as(ds, result.pixel_data)


def _unpadded(frame: bytes) -> bytes:
    """A frame as encapsulated, without the byte that pads it to even length."""
    return frame.removesuffix(b"\x00")


def _with_tlm(stream: bytes) -> bytes:
    """``stream`` with a TLM segment after SIZ giving each tile-part's length (Psot)."""
    siz_end = 4 + int.from_bytes(stream[4:6], "big")
    entries, pos = b"", stream.index(b"\xff\x90", siz_end)
    while stream[pos:pos + 2] == b"\xff\x90":
        psot = int.from_bytes(stream[pos + 6:pos + 10], "big")
        entries += stream[pos + 4:pos + 6][1:] + psot.to_bytes(4, "big")  # Ttlm: 8 bits; Ptlm: 32 bits
        pos += psot
    tlm = _segment(0xFF55, b"\x00\x50" + entries)  # Ztlm 0; Stlm: ST 1, SP 1
    return stream[:siz_end] + tlm + stream[siz_end:]


def test_a_jpeg_2000_tile_part_loses_its_comment_and_the_tile_part_lengths_go():
    """A comment in a tile-part header: Psot shortened, and TLM (which gave the old lengths,
    an index only) removed; a comment in the main header alone leaves TLM as it was."""
    ds, frame = _frame("MR_small_jp2klossless.dcm")
    plain = strip_segments(encapsulate([frame]), ds.file_meta.TransferSyntaxUID, 1)
    (clean,) = generate_frames(plain.pixel_data, number_of_frames=1)  # OpenJPEG's comment removed
    with_tlm = _with_tlm(clean)
    assert _decodes_as(ds, encapsulate([with_tlm]))
    commented = _j2k_with_comments(with_tlm)
    result = strip_segments(encapsulate([commented]), ds.file_meta.TransferSyntaxUID, 1)
    assert result.removed == 3 and TEXT not in result.pixel_data and b"\xff\x55" not in result.pixel_data[:200]
    assert _decodes_as(ds, result.pixel_data)
    (stripped,) = generate_frames(result.pixel_data, number_of_frames=1)
    assert _unpadded(stripped) == _unpadded(clean)  # exactly the stream before the comments and the TLM
    main_only = with_tlm[:4 + int.from_bytes(with_tlm[4:6], "big")] + _segment(0xFF64, b"\x00\x01" + TEXT) \
        + with_tlm[4 + int.from_bytes(with_tlm[4:6], "big"):]
    result = strip_segments(encapsulate([main_only]), ds.file_meta.TransferSyntaxUID, 1)
    (stripped,) = generate_frames(result.pixel_data, number_of_frames=1)
    assert result.removed == 1 and _unpadded(stripped) == _unpadded(with_tlm)
