"""DICOM SEG of the kept-intact region: valid, read back by highdicom, equal to the region the
protection block describes, and served by the node (``seg = true``)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest

from stegonode.dicom.pixels import read_pixels
from stegonode.handlers.dicomseg import Source, kept_region, kept_segmentation, software_version
from stegonode.handlers.protection import read_protection
from stegonode.handlers.reveal import usable_in
from stegonode.node.segwriter import SEGMENTATION_STORAGE

from images import ROUND_TRIP, dcmtk, image_path
from nodes import PATIENT, STEGONODE, NodeProcess, scu, storescu, write_series

SEG_SERIES = 20


def _dciodvfy_errors(path: Path) -> list[str]:
    result = subprocess.run([dcmtk("dciodvfy"), str(path)], capture_output=True, text=True, timeout=120)
    return [line for line in result.stderr.splitlines() if line.startswith("Error")]


def _read_back(seg_path: Path, source: pydicom.Dataset) -> np.ndarray:
    """The SEG's mask of ``source``, (frames, rows, columns), through highdicom's reader."""
    seg = hd.seg.segread(seg_path)
    if int(source.get("NumberOfFrames", 1)) > 1:
        frames = list(range(1, int(source.NumberOfFrames) + 1))
        pixels = seg.get_pixels_by_source_frame(source.SOPInstanceUID, frames, segment_numbers=[1],
                                                ignore_spatial_locations=True)
    else:
        pixels = seg.get_pixels_by_source_instance([source.SOPInstanceUID], segment_numbers=[1],
                                                   ignore_spatial_locations=True)
    return pixels[..., 0].astype(bool)


@pytest.mark.parametrize("name", ROUND_TRIP)
def test_seg_is_the_kept_region_pixel_for_pixel(name, protect_image, tmp_path):
    protected = protect_image(name)
    ds = protected.read()
    mask = kept_region(ds, None)
    # The region reveal computes from the protection block, independently of the SEG code.
    expected = ~usable_in(ds, read_pixels(ds), read_protection(ds))
    assert np.array_equal(mask, expected)
    assert mask.any() and not mask.all()
    # Protection kept the region computed on the cover bit-identical; the SEG's region, computed
    # on the stored image as reveal does, may differ from it at the edge (the segmenter sees
    # the embedded background): a changed pixel inside the SEG lies only where the two differ.
    kept_at_protection = ~protected.usable
    changed = read_pixels(ds) != protected.cover_pixels
    assert not (changed & kept_at_protection).any()
    # Measured: at most 2704 of 1 M pixels (MR2: embedding lifts background noise over the safety
    # guard's recorded level, which guards a margin around it on the stored image); 186 before the guard.
    assert (mask != kept_at_protection).sum() <= 0.005 * mask.size

    path = tmp_path / "seg.dcm"
    kept_segmentation([Source(ds, mask)], software_version()).save_as(path, enforce_file_format=True)
    assert _dciodvfy_errors(path) == []
    seg = pydicom.dcmread(path)
    assert seg.SOPClassUID == SEGMENTATION_STORAGE and seg.SegmentationType == "BINARY"
    assert seg.StudyInstanceUID == ds.StudyInstanceUID and seg.PatientID == ds.PatientID
    assert seg.PatientIdentityRemoved == "YES"
    assert seg.DeidentificationMethod == "stegonode: PS3.15 Basic Profile; identity in source images"  # not in the SEG
    assert np.array_equal(_read_back(path, ds), mask)


def test_segment_seg_command_groups_a_series(protect_image, tmp_path):
    """Two instances of one series give one two-frame SEG; an unprotected file fails alone."""
    first = protect_image("693_UNCR.dcm").read()
    second = protect_image("693_UNCI.dcm").read()
    second.SeriesInstanceUID = first.SeriesInstanceUID
    second.InstanceNumber = 2
    inputs = tmp_path / "in"
    inputs.mkdir()
    first.save_as(inputs / "a.dcm", enforce_file_format=True)
    second.save_as(inputs / "b.dcm", enforce_file_format=True)
    pydicom.dcmread(image_path("CT_small.dcm")).save_as(inputs / "plain.dcm")
    out = tmp_path / "out"
    result = subprocess.run([STEGONODE, "segment", "--seg", str(inputs), "--out", str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL" in result.stdout and "plain.dcm" in result.stdout and "Traceback" not in result.stderr
    (path,) = out.glob("*.dcm")
    assert pydicom.dcmread(path).NumberOfFrames == 2
    assert _dciodvfy_errors(path) == []
    for source in (first, second):
        assert np.array_equal(_read_back(path, source), kept_region(source, None))


def test_node_writes_one_seg_per_series_and_getscu_retrieves_it(tmp_path):
    node = NodeProcess(tmp_path / "node", seg=True, seg_stable_seconds=1.0).start()
    try:
        sent = storescu(node.port, write_series(tmp_path / "series", SEG_SERIES))
        assert sent.returncode == 0, sent.stdout + sent.stderr
        node.wait_idle(SEG_SERIES)
        rows = _wait_for_seg(node)
        (seg_uid, seg_series, study) = rows[0]
        got = tmp_path / "got"
        got.mkdir()
        result = scu("getscu", node.port, "-S", "-od", str(got), "-k", "QueryRetrieveLevel=SERIES",
                     "-k", f"StudyInstanceUID={study}", "-k", f"SeriesInstanceUID={seg_series}")
        assert result.returncode == 0, result.stdout + result.stderr
        (path,) = got.iterdir()
        seg = pydicom.dcmread(path)
        assert seg.SOPInstanceUID == seg_uid and seg.NumberOfFrames == SEG_SERIES
        assert _dciodvfy_errors(path) == []
        stored = {row[0]: node.data / row[1] for row in node.query(
            "SELECT SOPInstanceUID, path FROM instances WHERE SOPClassUID != ?", SEGMENTATION_STORAGE)}
        referenced = {item.ReferencedSOPInstanceUID
                      for item in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
        assert referenced == set(stored)
        for stored_path in stored.values():
            assert np.array_equal(_read_back(path, pydicom.dcmread(stored_path)),
                                  kept_region(pydicom.dcmread(stored_path), None))
        out = tmp_path / "fetched"
        fetched = node.fetch_all(out)
        assert fetched.returncode == 0, fetched.stdout + fetched.stderr
        assert f"{SEG_SERIES}/{SEG_SERIES + 1} instances revealed ({SEG_SERIES} from the pixels), 1 segmentation(s) saved" in fetched.stdout
        # Saved re-identified, like the revealed files beside it: their UIDs, study and patient.
        saved_path = out / study / f"{seg_uid}.dcm"
        saved = pydicom.dcmread(saved_path)
        revealed = {p.stem: pydicom.dcmread(p) for p in (out / study).glob("*.dcm") if p != saved_path}
        assert len(revealed) == SEG_SERIES and saved.PixelData == seg.PixelData
        assert {item.ReferencedSOPInstanceUID for item in saved.ReferencedSeriesSequence[0].ReferencedInstanceSequence} \
            == {ds.SOPInstanceUID for ds in revealed.values()}
        assert {saved.StudyInstanceUID} == {ds.StudyInstanceUID for ds in revealed.values()} != {study}
        assert saved.PatientID == PATIENT["PatientID"] and "PatientIdentityRemoved" not in saved
        assert _dciodvfy_errors(saved_path) == []
        for node_uid, ds in revealed.items():  # files are named by the node's UIDs
            assert np.array_equal(_read_back(saved_path, ds), kept_region(pydicom.dcmread(stored[node_uid]), None))
    finally:
        node.stop()


def _wait_for_seg(node: NodeProcess, timeout: float = 300) -> list[tuple]:
    """The SEG row once it covers the whole series (a SEG of an unfinished series is replaced)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        (newest,) = node.query("SELECT MAX(stored_at) FROM instances WHERE SOPClassUID != ?", SEGMENTATION_STORAGE)[0]
        rows = node.query("SELECT SOPInstanceUID, SeriesInstanceUID, StudyInstanceUID, stored_at FROM instances "
                          "WHERE SOPClassUID = ?", SEGMENTATION_STORAGE)
        assert len(rows) <= 1, rows  # one SEG per series, an older one replaced
        if rows and rows[0][3] >= newest:
            return [row[:3] for row in rows]
        time.sleep(0.2)
    raise AssertionError(f"no segmentation after {timeout} s:\n{(node.directory / 'node.log').read_text()}")

