"""Node options a site relies on: compressed transfer syntaxes, kept originals, DICOM TLS."""

from __future__ import annotations

import datetime

import pydicom
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydicom.uid import DeflatedExplicitVRLittleEndian, generate_uid

from stegonode.handlers.pipeline import DEFAULT_ORDER

from images import image_path
from nodes import NodeProcess, scu, storescu, write_series

# (file, storescu option proposing its transfer syntax as it is)
COMPRESSED = [
    ("693_J2KR.dcm", "-xv"),  # JPEG 2000 lossless
    ("693_J2KI.dcm", "-xw"),  # JPEG 2000
    ("bad_sequence.dcm", "-xs"),  # JPEG lossless, first-order prediction
    ("ct_deflated.dcm", "-xd"),  # deflated explicit VR little endian (written below from 693_UNCR)
]


def _path(name: str, folder) -> str:
    """pydicom-data's file; ``ct_deflated.dcm``: a CT slice re-encoded Deflated Explicit VR LE (the
    only deflated image there, image_dfl, is an OT test pattern the modality policy refuses)."""
    if name != "ct_deflated.dcm":
        return str(image_path(name))
    ds = pydicom.dcmread(image_path("693_UNCR.dcm"))
    ds.SOPInstanceUID = generate_uid()  # another instance than 693_J2KR's, which is the same slice
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    path = folder / name
    ds.save_as(path, enforce_file_format=True)
    return str(path)


def test_compressed_transfer_syntaxes_are_received_as_sent_and_originals_kept(tmp_path, new_database):
    node = NodeProcess(tmp_path, keep_originals=True, database=new_database()).start()
    try:
        for name, option in COMPRESSED:
            result = storescu(node.port, [_path(name, tmp_path)], option)
            assert "Received Store Response (Success)" in result.stderr, result.stderr
        counts = node.wait_idle(len(COMPRESSED))
        assert counts["processed"] == len(COMPRESSED)
        originals = sorted((node.data / "originals").iterdir())
        assert len(originals) == len(COMPRESSED)
        syntaxes = {str(pydicom.dcmread(p, stop_before_pixels=True).file_meta.TransferSyntaxUID)
                    for p in originals}
        expected = {str(pydicom.dcmread(_path(n, tmp_path), stop_before_pixels=True).file_meta.TransferSyntaxUID)
                    for n, _ in COMPRESSED}
        assert syntaxes == expected  # the bytes kept are the bytes sent, no conversion
    finally:
        node.stop()


def _self_signed(directory) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stegonode test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "node.pem", directory / "node.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def test_tls_only_when_configured(tmp_path):
    certificate, private_key = _self_signed(tmp_path)
    node = NodeProcess(tmp_path, tls={"certificate": certificate, "private_key": private_key}).start()
    try:
        assert scu("echoscu", node.port, "+tla", "-ic").returncode == 0  # anonymous TLS client
        assert scu("echoscu", node.port).returncode != 0  # plain TCP is not spoken
    finally:
        node.stop()
    assert "(TLS)" in node.log.read_text()


def test_encryption_on_in_node_toml_end_to_end(tmp_path, new_database):
    """storescu -> encrypted stego objects on the node -> fetch decrypts, reveals, re-identifies."""
    series = write_series(tmp_path / "series", 10)
    originals = {ds.SOPInstanceUID: ds for ds in map(pydicom.dcmread, series)}
    handlers = [*DEFAULT_ORDER, "encrypt"]
    node = NodeProcess(tmp_path / "node", database=new_database(),
                       tables={"pipeline": {"handlers": handlers},
                               "handlers.encrypt": {"cipher": "chaos"}}).start()
    try:
        assert storescu(node.port, series).returncode == 0
        assert node.wait_idle(10)["processed"] == 10
        found = scu("findscu", node.port, "-S", "-k", "QueryRetrieveLevel=STUDY",
                    "-k", "StudyInstanceUID", "-k", "NumberOfStudyRelatedInstances")
        assert "IS [10]" in found.stderr  # NumberOfStudyRelatedInstances
        out = tmp_path / "fetched"
        fetched = node.fetch_all(out)
        assert fetched.returncode == 0, fetched.stdout + fetched.stderr
        stored = tmp_path / "stored-decrypted"
        decrypted = node.run("decrypt", str(node.data / "stored"), "--out", str(stored),
                             "--keys", str(node.peer_keys))
        assert decrypted.returncode == 0, decrypted.stdout + decrypted.stderr
    finally:
        node.stop()
    (study,) = [p for p in out.iterdir() if p.is_dir()]
    for path in study.iterdir():
        revealed = pydicom.dcmread(path)
        original = originals[revealed.SOPInstanceUID]
        assert revealed.PatientName == original.PatientName and revealed.PatientID == original.PatientID
        cipher = pydicom.dcmread(node.data / "stored" / path.name)
        stego = pydicom.dcmread(stored / path.name)
        assert revealed.PixelData == stego.PixelData != cipher.PixelData  # stego pixels, exactly
        assert revealed.BitsStored == original.BitsStored


def test_port_in_use_stops_start_up_with_a_message(tmp_path):
    first = NodeProcess(tmp_path / "first").start()
    try:
        second = NodeProcess(tmp_path / "second")
        second.port = second.node["port"] = first.port
        second.write_config()
        result = second.run("serve", "--config", str(second.config))
        assert result.returncode == 2
        assert f"node.bind_address/node.port 0.0.0.0:{first.port}: cannot listen" in result.stderr
        assert "Traceback" not in result.stderr
    finally:
        first.stop()
