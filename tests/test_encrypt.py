"""Pixel encryption of protected DICOM objects: round trips, typed errors, the CLI, valid output."""

from __future__ import annotations

import copy
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import ImplicitVRLittleEndian

from stegonode.codecs import keys as keyfiles
from stegonode.dicom.pixels import read_pixels
from stegonode.errors import (
    CipherBlockError,
    ConfigError,
    InputError,
    PixelIntegrityError,
    WrongPixelCipherKeyError,
)
from stegonode.handlers.encrypt import (
    CIPHER_CREATOR,
    CIPHER_GROUP,
    CIPHERS,
    EncryptHandler,
    decrypt_dataset,
    encrypt_dataset,
)
from stegonode.handlers.pipeline import build_pipeline
from stegonode.handlers.protect import protect_object
from stegonode.handlers.reveal import reveal
from stegonode.node import config as node_config

from images import ROUND_TRIP, dciodvfy_errors, dcmtk, image_path

STEGONODE = str(Path(sys.executable).with_name("stegonode"))


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([STEGONODE, *args], capture_output=True, text=True, timeout=300)


def reread(ds: pydicom.Dataset) -> pydicom.Dataset:
    """``ds`` written as a DICOM file and read back."""
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    return pydicom.dcmread(buffer)


def encrypted(protected, cipher: str, key: bytes) -> pydicom.Dataset:
    ds = protected.read()
    encrypt_dataset(ds, EncryptHandler(cipher, key))
    return reread(ds)


def cipher_document(ds: pydicom.Dataset) -> dict:
    return json.loads(ds.private_block(CIPHER_GROUP, CIPHER_CREATOR)[0x01].value)


@pytest.mark.parametrize("cipher", CIPHERS)
@pytest.mark.parametrize("name", ROUND_TRIP)
def test_reveal_of_encrypted_object_recovers_attributes_and_stego_pixels(name, cipher, protect_image, node_keys, peer_keys):
    """Protect, encrypt, store, reveal: exact attributes and exact stego pixels.

    Reveal gets the cover's foreground mask instead of segmenting again: segmenting the stego
    pixels is tested on every image in test_roundtrip, and here the decrypted pixels are shown
    to be those same pixels bit for bit (the CLI and pipeline tests below segment as well).
    """
    protected = protect_image(name)
    stego = read_pixels(protected.read())
    ds = encrypted(protected, cipher, node_keys.pixel_cipher_key)
    cipher_pixels = read_pixels(ds)
    assert cipher_pixels.shape == stego.shape and cipher_pixels.dtype == stego.dtype
    assert np.count_nonzero(cipher_pixels != stego) > 0.99 * stego.size
    assert ds.BitsStored == ds.BitsAllocated and ds.HighBit == ds.BitsAllocated - 1
    revealed = reveal(ds, peer_keys, foreground=protected.cover_foreground)
    assert revealed.attributes.PatientID == protected.original.PatientID
    for element in revealed.attributes:
        assert element.value == protected.original[element.tag].value, element.keyword
    restored = reread(revealed.dataset)
    np.testing.assert_array_equal(read_pixels(restored), stego)
    assert restored.BitsStored == protected.original.BitsStored
    assert restored.HighBit == protected.original.HighBit
    # the cipher block is gone; the original's own private elements of that group are back
    assert [e for e in restored if e.tag.group == CIPHER_GROUP] == \
        [e for e in protected.original if e.tag.group == CIPHER_GROUP]


def test_pipeline_with_encrypt_switched_on_in_node_toml(tmp_path, node_keys, peer_keys):
    toml = tmp_path / "node.toml"
    toml.write_text('[pipeline]\nhandlers = ["collect", "seal", "segment", "embed", "deidentify", "encrypt"]\n'
                    '[handlers.encrypt]\ncipher = "chaos"\n')
    config = node_config.load(toml)
    pipeline = build_pipeline(config["pipeline"]["handlers"], config["handlers"], node_keys)
    original = pydicom.dcmread(image_path("MR2_UNCR.dcm"))
    ds = copy.deepcopy(original)
    instance = protect_object(ds, pipeline).instance
    assert instance.report["cipher"] == "chaos" and "encrypt" in instance.timings
    stored = reread(ds)
    assert cipher_document(stored)["cipher"] == "chaos"
    assert cipher_document(stored)["bits_stored"] == original.BitsStored == 12
    assert stored.PatientIdentityRemoved == "YES"
    revealed = reveal(stored, peer_keys)
    assert revealed.dataset.PatientName == original.PatientName


def test_encrypted_object_survives_implicit_vr_storage(protect_image, node_keys, peer_keys):
    """A PACS may store implicit VR: the private blocks come back as UN bytes and still work."""
    protected = protect_image("693_UNCR.dcm")
    ds = encrypted(protected, "aes-gcm", node_keys.pixel_cipher_key)
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    stored = reread(ds)
    assert stored[CIPHER_GROUP, 0x1001].VR == "UN"
    revealed = reveal(stored, peer_keys)
    assert revealed.attributes.PatientID == protected.original.PatientID
    np.testing.assert_array_equal(read_pixels(revealed.dataset), read_pixels(protected.read()))


def test_damaged_cipher_blocks_are_named(protect_image, node_keys, peer_keys):
    protected = protect_image("693_UNCR.dcm")
    ds = encrypted(protected, "chaos", node_keys.pixel_cipher_key)
    element = ds.private_block(CIPHER_GROUP, CIPHER_CREATOR)[0x01]
    document = json.loads(element.value)
    for damage, error, message in [
        ("{not json", CipherBlockError, "not readable JSON"),
        (json.dumps({**document, "nonce": "zz"}), CipherBlockError, "nonce is not 16 bytes of hex"),
        (json.dumps({**document, "cipher": "rot13"}), CipherBlockError, "unknown cipher 'rot13'"),
        (json.dumps({k: v for k, v in document.items() if k != "tag"}), CipherBlockError, "fields missing"),
        (json.dumps({**document, "nonce": "00" * 16}), PixelIntegrityError, "failed authentication"),
        (json.dumps({**document, "bits_stored": 12}), PixelIntegrityError, "failed authentication"),
        (json.dumps({**document, "key_id": "00000000"}), WrongPixelCipherKeyError, "pixel-cipher key 00000000"),
    ]:
        damaged = copy.deepcopy(ds)
        damaged.private_block(CIPHER_GROUP, CIPHER_CREATOR)[0x01].value = damage
        with pytest.raises(error, match=message):
            reveal(damaged, peer_keys)
        with pytest.raises(error):
            decrypt_dataset(damaged, peer_keys.pixel_cipher_key)
        np.testing.assert_array_equal(read_pixels(damaged), read_pixels(ds))  # left as it was


@pytest.mark.parametrize("cipher", CIPHERS)
def test_wrong_key_and_flipped_bit_are_typed_errors(cipher, protect_image, node_keys, peer_keys, tmp_path):
    ds = encrypted(protect_image("693_UNCR.dcm"), cipher, node_keys.pixel_cipher_key)
    keyfiles.generate(tmp_path)
    other = keyfiles.load_peer_keys(tmp_path / "peer.keys")
    wrong = keyfiles.PeerKeys(peer_keys.recipient_private_key, peer_keys.embedding_key, other.pixel_cipher_key)
    with pytest.raises(WrongPixelCipherKeyError, match="encrypted with pixel-cipher key"):
        reveal(ds, wrong)
    flipped = copy.deepcopy(ds)
    data = bytearray(flipped.PixelData)
    data[len(data) // 2] ^= 0x10
    flipped.PixelData = bytes(data)
    with pytest.raises(PixelIntegrityError, match="failed authentication"):
        reveal(flipped, peer_keys)


def test_encrypting_twice_is_refused(protect_image, node_keys):
    ds = encrypted(protect_image("693_UNCR.dcm"), "aes-gcm", node_keys.pixel_cipher_key)
    with pytest.raises(InputError, match="already encrypted"):
        encrypt_dataset(ds, EncryptHandler("aes-gcm", node_keys.pixel_cipher_key))


# The command line, as a user runs it.

@pytest.fixture(scope="module")
def cli(tmp_path_factory, key_dir, protect_image) -> dict[str, Path]:
    """Session keys, another key pair, a file protected and encrypted (chaos) by the CLI, a plain one."""
    root = tmp_path_factory.mktemp("cipher-cli")
    keyfiles.generate(root / "other")
    source = image_path("693_UNCR.dcm")
    result = run("protect", str(source), "--out", str(root), "--keys", str(key_dir / "node.keys"), "--encrypt", "chaos")
    assert result.returncode == 0 and "pixels encrypted (chaos)" in result.stdout, result.stdout + result.stderr
    return {"keys": key_dir, "other": root / "other", "chaos": root / source.name,
            "plain": protect_image(source.name).path}


def test_protect_encrypt_then_reveal(cli):
    stored = pydicom.dcmread(cli["chaos"])
    assert cipher_document(stored)["cipher"] == "chaos"
    result = run("reveal", str(cli["chaos"]), "--keys", str(cli["keys"] / "peer.keys"), "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    document = json.loads(result.stdout)
    assert document["ok"] and document["attributes"]["PatientID"] == pydicom.dcmread(image_path("693_UNCR.dcm")).PatientID


def test_encrypt_with_fixed_nonce_then_decrypt_is_exact(cli, tmp_path):
    nonce = "0123456789abcdef01234567"
    result = run("encrypt", str(cli["plain"]), "--out", str(tmp_path / "enc"), "--keys", str(cli["keys"] / "node.keys"),
                 "--cipher", "aes-gcm", "--nonce", nonce)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "--nonce fixes the nonce" in result.stderr and "for analysis only" in result.stderr
    encrypted_file = tmp_path / "enc" / cli["plain"].name
    assert cipher_document(pydicom.dcmread(encrypted_file))["nonce"] == nonce
    result = run("decrypt", str(encrypted_file), "--out", str(tmp_path / "dec"), "--keys", str(cli["keys"] / "peer.keys"))
    assert result.returncode == 0 and "authentication verified" in result.stdout, result.stdout + result.stderr
    before, after = pydicom.dcmread(cli["plain"]), pydicom.dcmread(tmp_path / "dec" / cli["plain"].name)
    assert after.PixelData == before.PixelData
    assert (after.BitsStored, after.HighBit) == (before.BitsStored, before.HighBit) == (14, 13)


def test_a_nonce_of_the_wrong_size_is_refused(node_keys):
    with pytest.raises(ConfigError, match=r"nonce for cipher chaos must be 16 bytes \(32 hex digits\), got 12"):
        EncryptHandler("chaos", node_keys.pixel_cipher_key, bytes(12))


def test_bad_inputs_fail_clearly_and_write_nothing(cli, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    shutil.copy(cli["chaos"], bad / "good.dcm")
    flipped = pydicom.dcmread(cli["chaos"])
    data = bytearray(flipped.PixelData)
    data[1000] ^= 0x01
    flipped.PixelData = bytes(data)
    flipped.save_as(bad / "flipped_bit.dcm")
    damaged = pydicom.dcmread(cli["chaos"])
    damaged.private_block(CIPHER_GROUP, CIPHER_CREATOR)[0x01].value = '{"version":1,"cipher":'
    damaged.save_as(bad / "damaged_block.dcm")
    shutil.copy(cli["plain"], bad / "not_encrypted.dcm")
    reasons = {"damaged_block.dcm": "damaged cipher block", "flipped_bit.dcm": "failed authentication"}
    for command, keys, extra in (("decrypt", "keys", {"not_encrypted.dcm": "pixels are not encrypted"}),
                                 ("reveal", "keys", {}),
                                 ("decrypt", "other", {"good.dcm": "encrypted with pixel-cipher key"})):
        out = tmp_path / f"{command}-{keys}"
        result = run(command, str(bad), "--out", str(out), "--keys", str(cli[keys] / "peer.keys"))
        lines = {Path(line.split(": ")[0].split()[-1]).name: line for line in result.stdout.splitlines()}
        assert result.returncode == 1 and len(lines) == 4, result.stdout + result.stderr
        expected = {**reasons, **extra} if keys == "keys" else {**extra}
        for name, reason in expected.items():
            assert lines[name].startswith("FAIL") and reason in lines[name], lines[name]
        written = sorted(p.name for p in out.iterdir()) if out.exists() else []
        assert written == sorted(name for name, line in lines.items() if line.startswith("OK")), written


@pytest.mark.parametrize("cipher", CIPHERS)
@pytest.mark.parametrize("name", ["693_UNCR.dcm", "MR2_UNCR.dcm", "JPGLosslessP14SV1_1s_1f_8b.dcm"])
def test_encrypted_outputs_are_valid_dicom(name, cipher, protect_image, node_keys, tmp_path):
    protected = protect_image(name)
    path = tmp_path / name
    encrypted(protected, cipher, node_keys.pixel_cipher_key).save_as(path, enforce_file_format=True)
    assert not dciodvfy_errors(path) - dciodvfy_errors(protected.path)
    dump = subprocess.run([dcmtk("dcmdump"), str(path)], capture_output=True, text=True, timeout=60)
    assert dump.returncode == 0 and CIPHER_CREATOR in dump.stdout, dump.stderr
    assert not [line for line in dump.stderr.splitlines() if line.startswith(("E:", "W:"))], dump.stderr


def test_cipher_report_table_and_histograms(cli, tmp_path):
    result = run("cipher-report", str(image_path("693_UNCR.dcm")), "--out", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("  ") and "test" not in line[:8]]
    assert len(rows) == 14
    assert all(line.count("PASS") + line.count("FAIL") == 2 for line in rows)
    npcr = next(line for line in rows if line.strip().startswith("NPCR"))
    assert "> 99.9972 %" in npcr
    png = tmp_path / "693_UNCR.dcm-histogram.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
