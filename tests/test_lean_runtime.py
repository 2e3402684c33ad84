"""The lean runtime: inference through ONNX Runtime, torch only for training and export.

Objects protected by the torch path (tests/fixtures/legacy, written before inference moved to
ONNX Runtime) still reveal.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import pydicom
import pytest

from stegonode.codecs import keys as keyfiles
from stegonode.handlers.reveal import reveal
from stegonode.models import deepstego
from stegonode.node import deepstego as node_deep
from stegonode.node.cli import main

from images import image_path

LEGACY = Path(__file__).with_name("fixtures") / "legacy"


@pytest.mark.parametrize(("fixture", "original"), [
    ("MR-SIEMENS-DICOM-WithOverlays-dct.dcm.gz", "MR-SIEMENS-DICOM-WithOverlays.dcm"),
    ("693_UNCR-deep.dcm.gz", "693_UNCR.dcm"),
])
def test_objects_protected_by_the_torch_path_still_reveal(fixture, original):
    stego = pydicom.dcmread(io.BytesIO(gzip.decompress((LEGACY / fixture).read_bytes())))
    source = pydicom.dcmread(image_path(original))
    assert "PatientName" not in stego or stego.PatientName != source.PatientName
    revealed = reveal(stego, keyfiles.load_peer_keys(LEGACY / "peer.keys"))
    assert len(revealed.attributes) > 5
    for element in revealed.attributes:
        assert element.value == source[element.tag].value, element.keyword


def test_deep_hide_stego_of_the_torch_path_still_reveals(tmp_path):
    out = tmp_path / "recovered.png"
    assert main(["deep-reveal", str(LEGACY / "deep-stego.png"), "--out", str(out)]) == 0
    secret = node_deep.read_png(LEGACY / "deep-secret.png")
    assert deepstego.psnr(deepstego.mse(node_deep.read_png(out), secret)) >= 30.0
