"""The header carrier: PS3.15 E.1.1 Encrypted Attributes beside the pixel payload.

Standard tools read it (openssl, dciodvfy, dcmdump); either carrier alone reveals; an altered
one, or two that disagree, is tampering; a wrong key is named as such.
"""

from __future__ import annotations

import copy
import hashlib
import json
import subprocess
from io import BytesIO
from pathlib import Path

import numpy as np
import pydicom
import pytest
from cryptography.hazmat.primitives import serialization
from pydicom.filereader import read_dataset
from pydicom.uid import JPEG2000, ExplicitVRLittleEndian

from stegonode.codecs import cms, payload
from stegonode.codecs import keys as keyfiles
from stegonode.dicom.pixels import PixelFormat, read_pixels, write_pixels
from stegonode.errors import (
    CapacityError,
    CarrierMismatchError,
    ConfigError,
    KeyFileError,
    PayloadIntegrityError,
    WrongEmbeddingKeyError,
    WrongRecipientKeyError,
)
from stegonode.handlers.collect import collect, serialize
from stegonode.handlers.deidentify import deidentifier
from stegonode.handlers.header import seal_header
from stegonode.handlers.pipeline import PipelineContext, build_pipeline, pixels_only_notice
from stegonode.handlers.protect import protect_object
from stegonode.handlers.reveal import reveal
from stegonode.handlers.seal import CARRIERS, payload_dictionary
from stegonode.node import config as node_config

from images import NO_BACKGROUND, dciodvfy_errors, dcmtk, image_path

ENCRYPTED_CONTENT = (0x0400, 0x0520)


def _content(ds: pydicom.Dataset) -> bytes:
    return bytes(ds.EncryptedAttributesSequence[0][ENCRYPTED_CONTENT].value)


def _exact(attributes: pydicom.Dataset, original: pydicom.Dataset) -> None:
    for element in attributes:
        assert element.VR == original[element.tag].VR and element.value == original[element.tag].value, element.keyword


@pytest.fixture(scope="module")
def changed_attributes(node_keys):
    """What de-identification changes in an original: what the header carrier must hold."""
    context = PipelineContext(node_config.DEFAULTS["handlers"], node_keys, CARRIERS)  # the default options
    return lambda original: collect(original, context.shared(deidentifier))


def test_openssl_decrypts_exactly_the_original_values(protect_image, peer_keys, changed_attributes, tmp_path):
    protected = protect_image("693_UNCR.dcm")
    stego = protected.read()
    (item,) = stego.EncryptedAttributesSequence
    assert item.EncryptedContentTransferSyntaxUID == ExplicitVRLittleEndian
    (tmp_path / "content.der").write_bytes(_content(stego))
    (tmp_path / "cert.pem").write_bytes(peer_keys.certificate.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(peer_keys.rsa_private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    structure = subprocess.run(["openssl", "cms", "-cmsout", "-print", "-inform", "DER",
                                "-in", str(tmp_path / "content.der")], capture_output=True, text=True, timeout=60)
    assert "pkcs7-envelopedData" in structure.stdout and "aes-256-cbc" in structure.stdout, structure.stderr
    assert "rsaEncryption" in structure.stdout
    result = subprocess.run(
        ["openssl", "cms", "-decrypt", "-binary", "-inform", "DER", "-in", str(tmp_path / "content.der"),
         "-recip", str(tmp_path / "cert.pem"), "-inkey", str(tmp_path / "key.pem"),
         "-out", str(tmp_path / "plain.bin")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    data_set = read_dataset(BytesIO((tmp_path / "plain.bin").read_bytes()), is_implicit_VR=False,
                            is_little_endian=True)
    (modified,) = data_set.ModifiedAttributesSequence
    expected = changed_attributes(protected.original)
    assert [e.tag for e in modified] == [e.tag for e in expected]
    _exact(modified, protected.original)
    assert str(modified.PatientName) == str(protected.original.PatientName)


@pytest.mark.parametrize("name", ["693_UNCR.dcm", "RG3_UNCR.dcm"])
def test_sequence_is_valid_dicom(protect_image, name, tmp_path):
    protected = protect_image(name)
    stripped = protected.read()
    del stripped.EncryptedAttributesSequence
    stripped.save_as(tmp_path / name, enforce_file_format=True)
    assert not dciodvfy_errors(protected.path) - dciodvfy_errors(tmp_path / name)
    dump = subprocess.run([dcmtk("dcmdump"), str(protected.path)], capture_output=True, text=True, timeout=60)
    assert dump.returncode == 0 and "(0400,0500)" in dump.stdout and "(0400,0520)" in dump.stdout, dump.stderr
    assert "E:" not in dump.stderr


def test_both_carriers_agree_and_either_alone_reveals(protect_image, peer_keys):
    protected = protect_image("693_UNCR.dcm")
    both = reveal(protected.read(), peer_keys)
    assert (both.carrier, both.confirmed_by, both.complete) == ("pixels", ("header",), True)
    stripped = protected.read()
    del stripped.EncryptedAttributesSequence
    from_pixels = reveal(stripped, peer_keys)
    assert (from_pixels.carrier, from_pixels.confirmed_by) == ("pixels", ())
    _exact(from_pixels.attributes, protected.original)
    assert "EncryptedAttributesSequence" not in both.dataset


def _noisy(ds: pydicom.Dataset, sigma: float) -> pydicom.Dataset:
    pixels = read_pixels(ds)
    noise = np.random.default_rng(8).normal(0, sigma, pixels.shape)
    write_pixels(ds, np.clip(np.rint(pixels + noise), *PixelFormat.of(ds).value_range).astype(pixels.dtype))
    return ds


def _j2k_lossy(ds: pydicom.Dataset, path: Path) -> pydicom.Dataset:
    ds.compress(JPEG2000, j2k_cr=[20])  # 20:1, what an archive's lossy policy might do
    ds.save_as(path, enforce_file_format=True)
    return pydicom.dcmread(path)


@pytest.mark.parametrize("damage", ["noise sigma 8", "JPEG 2000 20:1"])
def test_lossy_pixels_reveal_from_the_header(protect_image, peer_keys, damage, tmp_path):
    protected = protect_image("693_UNCR.dcm")
    stego = protected.read()
    damaged = _noisy(stego, 8.0) if damage.startswith("noise") else _j2k_lossy(stego, tmp_path / "j2k.dcm")
    revealed = reveal(damaged, peer_keys)
    assert (revealed.carrier, revealed.confirmed_by, revealed.complete) == ("header", (), True)
    _exact(revealed.attributes, protected.original)
    assert revealed.dataset.PatientID == protected.original.PatientID


def test_carriers_that_disagree_are_tampering(node_keys, peer_keys):
    """Pixels of a copy protected under another name, header of the original: both valid, and
    bound to the same instance (the pseudonymous UIDs are keyed on the original UIDs)."""
    config = node_config.load(None)
    pipeline = build_pipeline(config["pipeline"]["handlers"], config["handlers"], node_keys)
    original, other = pydicom.dcmread(image_path("693_UNCR.dcm")), pydicom.dcmread(image_path("693_UNCR.dcm"))
    other.PatientName = "Someone^Else"
    protect_object(original, pipeline)
    protect_object(other, pipeline)
    other.EncryptedAttributesSequence = original.EncryptedAttributesSequence
    other.private_block(0x0011, "STEGONODE 1")[0x01].value = original.private_block(0x0011, "STEGONODE 1")[0x01].value
    with pytest.raises(CarrierMismatchError, match="tampered"):
        reveal(other, peer_keys)


@pytest.mark.parametrize("how", ["flipped byte", "valid envelope, other values"])
def test_altered_header_carrier_is_tampering(protect_image, peer_keys, how):
    protected = protect_image("693_UNCR.dcm")
    stego = protected.read()
    item = stego.EncryptedAttributesSequence[0]
    if how == "flipped byte":
        content = bytearray(_content(stego))
        content[len(content) // 2] ^= 0x01
        item[ENCRYPTED_CONTENT].value = bytes(content)
    else:  # anyone with the certificate can encrypt; only the MAC key makes it count
        forged = copy.deepcopy(reveal(protected.read(), peer_keys).attributes)
        forged.PatientName = "Someone^Else"
        item[ENCRYPTED_CONTENT].value = seal_header(forged, peer_keys.certificate)
    with pytest.raises(PayloadIntegrityError, match="failed authentication"):
        reveal(stego, peer_keys)


def test_wrong_keys_give_clear_errors(protect_image, peer_keys, tmp_path):
    keyfiles.generate(tmp_path)
    other = keyfiles.load_peer_keys(tmp_path / "peer.keys")
    protected = protect_image("693_UNCR.dcm")
    with pytest.raises(WrongEmbeddingKeyError, match="protected with embedding key"):
        reveal(protected.read(), other)
    wrong_recipients = keyfiles.PeerKeys(other.recipient_private_key, peer_keys.embedding_key,
                                         peer_keys.pixel_cipher_key, other.recipient_certificate,
                                         other.recipient_rsa_private_key)
    with pytest.raises(WrongRecipientKeyError, match="sealed for recipient key .*for certificate"):
        reveal(protected.read(), wrong_recipients)
    no_rsa = keyfiles.PeerKeys(peer_keys.recipient_private_key, peer_keys.embedding_key, peer_keys.pixel_cipher_key)
    with pytest.raises(WrongRecipientKeyError, match="holds no certificate with its private key"):
        reveal(_noisy(protected.read(), 8.0), no_rsa)
    assert reveal(protected.read(), no_rsa).carrier == "pixels"  # the pixels need no RSA key


@pytest.mark.parametrize("name", NO_BACKGROUND)
def test_no_background_is_stored_with_the_header_carrier_only(name, pipeline, peer_keys, tmp_path):
    ds = pydicom.dcmread(image_path(name))
    original = copy.deepcopy(ds)
    cover = read_pixels(ds).copy()
    instance = protect_object(ds, pipeline).instance
    assert instance.report["carriers"] == "header" and instance.report["pixel_attributes"] == "none"
    np.testing.assert_array_equal(read_pixels(ds), cover)
    ds.save_as(tmp_path / name, enforce_file_format=True)
    revealed = reveal(pydicom.dcmread(tmp_path / name), peer_keys)
    assert (revealed.carrier, revealed.complete) == ("header", True)
    _exact(revealed.attributes, original)


def test_old_key_files_keep_working_with_the_pixel_carrier_only(tmp_path):
    keyfiles.generate(tmp_path)
    for role in ("node", "peer"):
        path = tmp_path / f"{role}.keys"
        document = json.loads(path.read_text())
        document["version"] = 1
        for field in ("recipient_certificate", "recipient_rsa_private_key"):
            document.pop(field, None)
        path.write_text(json.dumps(document))
    node, peer = keyfiles.load_node_keys(tmp_path / "node.keys"), keyfiles.load_peer_keys(tmp_path / "peer.keys")
    config = node_config.defaults()
    assert "pixel carrier only" in pixels_only_notice(config["pipeline"]["carriers"], node)
    config["handlers"]["segment"]["segmenter"] = "classical"
    pipeline = build_pipeline(config["pipeline"]["handlers"], config["handlers"], node)
    ds = pydicom.dcmread(image_path("693_UNCR.dcm"))
    assert protect_object(ds, pipeline).instance.report["carriers"] == "pixels"
    assert "EncryptedAttributesSequence" not in ds
    assert reveal(ds, peer).carrier == "pixels"
    with pytest.raises(CapacityError):  # nothing else could carry it: refused, as before
        protect_object(pydicom.dcmread(image_path(NO_BACKGROUND[0])), pipeline)
    with pytest.raises(ConfigError, match="needs a certificate"):
        build_pipeline(config["pipeline"]["handlers"], config["handlers"], node, ["header"])


def test_keygen_takes_a_hospital_certificate(tmp_path):
    key, certificate = cms.new_recipient("Hospital PKI recipient")
    (tmp_path / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()))
    keyfiles.generate(tmp_path / "keys", certificate=tmp_path / "cert.pem", private_key=tmp_path / "key.pem")
    node = keyfiles.load_node_keys(tmp_path / "keys" / "node.keys")
    peer = keyfiles.load_peer_keys(tmp_path / "keys" / "peer.keys")
    assert node.certificate == certificate == peer.certificate
    assert peer.rsa_private_key.public_key() == certificate.public_key()
    other, _ = cms.new_recipient("someone else")
    (tmp_path / "other.pem").write_bytes(other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with pytest.raises(KeyFileError, match="is not the private key of certificate"):
        keyfiles.generate(tmp_path / "bad", certificate=tmp_path / "cert.pem", private_key=tmp_path / "other.pem")
    with pytest.raises(KeyFileError, match="not an X.509 certificate"):
        keyfiles.generate(tmp_path / "bad", certificate=tmp_path / "key.pem")
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("carriers, message", [
    ("[]", "give one or both"), ("['pixels', 'pixels']", "give one or both"), ("['qr']", "give one or both"),
])
def test_carriers_key_is_validated(carriers, message, tmp_path):
    (tmp_path / "node.toml").write_text(f"[pipeline]\ncarriers = {carriers}\n")
    with pytest.raises(ConfigError, match=message):
        node_config.load(tmp_path / "node.toml")


def test_payload_dictionary_is_pinned_and_compacter(protect_image):
    """Dictionary 2 may never change (payloads written with it would no longer open)."""
    assert hashlib.sha256(payload_dictionary(2)).hexdigest()[:16] == "21630db8802a5a36"
    attributes = serialize(protect_image("693_UNCR.dcm").instance_attributes)
    smaller = len(payload.compress(attributes, payload_dictionary(2)))
    assert smaller < len(payload.compress(attributes, payload_dictionary(1)))
    assert payload.decompress(payload.compress(attributes, payload_dictionary(2)), payload_dictionary(2)) == attributes


def test_deidentification_attributes_name_the_carriers_the_object_has(protect_image, pipeline):
    """Derivation Description and De-identification Method say where the identity is: pixels and
    header for a CT slice, the header alone (pixels unchanged) for an image with no background."""
    both = pydicom.dcmread(protect_image("693_UNCR.dcm").path)
    assert both.DeidentificationMethod == "stegonode: PS3.15 Basic Profile; identity in pixels+header"
    assert "background pixels" in both.DerivationDescription and "Encrypted Attributes" in both.DerivationDescription
    header_only = pydicom.dcmread(image_path(NO_BACKGROUND[0]))
    assert protect_object(header_only, pipeline).instance.report["carriers"] == "header"
    assert header_only.DeidentificationMethod == "stegonode: PS3.15 Basic Profile; identity in header"
    assert "pixels" not in header_only.DeidentificationMethod
    assert header_only.DerivationDescription == ("stegonode: patient identity sealed into the header "
                                                 "(Encrypted Attributes Sequence, PS3.15 E.1.1); pixels unchanged")
    for ds in (both, header_only):
        assert len(ds.DeidentificationMethod) <= 64  # LO
