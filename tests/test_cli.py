"""The command line as a user runs it: real files, real processes, real DCMTK/dicom3tools."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from images import dciodvfy_errors, dcmtk, image_path

STEGONODE = str(Path(sys.executable).with_name("stegonode"))


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([STEGONODE, *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("cli-keys")
    assert run("keygen", str(directory)).returncode == 0
    return directory


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """Good images next to every kind of bad input, in one folder."""
    folder = tmp_path_factory.mktemp("in")
    for name in ("693_UNCR.dcm", "MR2_UNCR.dcm", "RG3_UNCR.dcm", "CT_small.dcm", "rtplan.dcm",
                 "rtdose.dcm", "liver_1frame.dcm", "SC_rgb.dcm"):
        shutil.copy(image_path(name), folder / name)
    data = image_path("693_UNCR.dcm").read_bytes()
    (folder / "truncated.dcm").write_bytes(data[: len(data) // 3])
    (folder / "notdicom.dcm").write_bytes(b"hello")
    return folder


@pytest.fixture(scope="module")
def protected(inputs, keys, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("out")
    return out, run("protect", str(inputs), "--out", str(out), "--keys", str(keys / "node.keys"))


def test_protect_reports_each_file_and_fails_bad_ones_with_a_reason(protected):
    out, result = protected
    assert result.returncode == 1
    lines = {line.split(":")[0].split()[-1].rsplit("/", 1)[-1]: line for line in result.stdout.splitlines()}
    for good in ("693_UNCR.dcm", "MR2_UNCR.dcm", "RG3_UNCR.dcm"):
        assert re.search(r"^OK .*: carriers pixels\+header, payload \d+ B, PSNR [\d.]+ dB.*pixels changed, \d+ ms$",
                         lines[good]), lines[good]
        assert (out / good).exists()
    # too small for the pixel carrier (CT_small; SC_rgb's colour bars leave too little achromatic
    # background for the luminance): never refused for that alone
    for small in ("CT_small.dcm", "SC_rgb.dcm"):
        assert re.search(r"^OK .*: carriers (header \(background too small|pixels\+header \(core)", lines[small])
    # objects whose pixels cannot carry the identity: the header carrier alone
    header_only = {
        "rtplan.dcm": "no Pixel Data",
        "rtdose.dcm": "RT Dose Storage: its pixels are data",
        "liver_1frame.dcm": "Segmentation Storage: its pixels are data",
    }
    for name, reason in header_only.items():
        assert lines[name].startswith("OK ") and f"carriers header (no pixel carrier: {reason}" in lines[name], lines[name]
        assert (out / name).exists()
    reasons = {
        "truncated.dcm": "truncated",
        "notdicom.dcm": "not a DICOM file",
    }
    for name, reason in reasons.items():
        assert lines[name].startswith("FAIL") and reason in lines[name], lines[name]
        assert not (out / name).exists()
    assert len(result.stdout.splitlines()) == 10
    assert "no certificate" not in result.stderr


def test_reveal_json_and_reidentified_files(protected, keys, tmp_path):
    out, _ = protected
    result = run("reveal", str(out), "--keys", str(keys / "peer.keys"), "--json", "--out", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(objects) == 8 and all(o["ok"] and o["error"] is None and o["complete"] for o in objects)
    carriers = {Path(o["file"]).name: (o["carrier"], o["confirmed_by"]) for o in objects}
    assert carriers["693_UNCR.dcm"] == ("pixels", ["header"])
    assert carriers["CT_small.dcm"][0] == "header"
    for document in objects:
        name = Path(document["file"]).name
        original = pydicom.dcmread(image_path(name))
        assert document["attributes"]["PatientName"] == str(original.PatientName)
        assert document["attributes"]["PatientID"] == original.PatientID
        assert document["attributes"]["SOPInstanceUID"] == original.SOPInstanceUID
        restored = pydicom.dcmread(tmp_path / name)
        assert restored.PatientName == original.PatientName
        assert restored.StudyInstanceUID == original.StudyInstanceUID


def test_reveal_with_node_keys_or_plain_image_fails_clearly(protected, keys, inputs):
    out, _ = protected
    result = run("reveal", str(out / "693_UNCR.dcm"), "--keys", str(keys / "node.keys"))
    assert result.returncode == 2 and "needs peer keys" in result.stderr
    result = run("reveal", str(inputs / "693_UNCR.dcm"), str(out / "693_UNCR.dcm"), "--keys", str(keys / "peer.keys"), "--json")
    assert result.returncode == 1
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert not first["ok"] and "not a stegonode-protected object" in first["error"]
    assert second["ok"]


def test_protect_keeps_an_already_protected_file_as_it_is(protected, keys, tmp_path):
    out, _ = protected
    result = run("protect", str(out / "693_UNCR.dcm"), str(out / "CT_small.dcm"), "--out", str(tmp_path / "again"),
                 "--keys", str(keys / "node.keys"))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and all("already protected by stegonode, kept as it is" in line for line in lines), lines
    revealed = run("reveal", str(tmp_path / "again"), "--keys", str(keys / "peer.keys"), "--json")
    for document in map(json.loads, revealed.stdout.splitlines()):  # the original identity, not pseudonyms
        original = pydicom.dcmread(image_path(Path(document["file"]).name))
        assert document["ok"] and document["attributes"]["PatientID"] == original.PatientID, document


@pytest.mark.parametrize("name", ["693_UNCR.dcm", "MR2_UNCR.dcm", "RG3_UNCR.dcm", "CT_small.dcm"])
def test_outputs_are_valid_dicom(protected, inputs, name):
    out, _ = protected
    new_errors = dciodvfy_errors(out / name) - dciodvfy_errors(inputs / name)
    assert not new_errors, new_errors
    dump = subprocess.run([dcmtk("dcmdump"), str(out / name)], capture_output=True, text=True, timeout=60)
    assert dump.returncode == 0 and "PatientIdentityRemoved" in dump.stdout, dump.stderr


def test_demo_runs(tmp_path):
    result = run("demo", "--workdir", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "re-identified header matches the original" in result.stdout
