"""Several recipients and key rotation: every recipient reveals with its own key alone, from
the pixels and from the header (openssl too); a wrong key is named; objects sealed under an
earlier recipient set stay revealable by its keys, and re-sealing the header carrier for a new
set leaves the pixels bit-identical."""

from __future__ import annotations

import copy
import subprocess
from io import BytesIO
from pathlib import Path

import numpy as np
import pydicom
import pytest
from cryptography.hazmat.primitives import serialization
from pydicom.filereader import read_dataset

from stegonode.codecs import keys as keyfiles
from stegonode.codecs.seal import envelope_recipients, open_sealed, seal_for
from stegonode.dicom.pixels import read_pixels
from stegonode.errors import ConfigError, KeyFileError, PayloadIntegrityError, WrongRecipientKeyError
from stegonode.handlers.pipeline import build_pipeline
from stegonode.handlers.protect import protect_object
from stegonode.handlers.protection import read_protection
from stegonode.handlers.reveal import reveal
from stegonode.node import config as node_config
from stegonode.node.keyring import reseal_files, reseal_header, stored_by_key

from images import image_path

IMAGE = "693_UNCR.dcm"


@pytest.fixture(scope="module")
def recipient_sets(tmp_path_factory):
    """node.keys, and two recipient sets for it: set 1 (three recipients), set 2 (two)."""
    directory = tmp_path_factory.mktemp("recipients")
    keyfiles.generate(directory)
    node = directory / "node.keys"
    sets = {}
    for set_name, names in (("one", ["site-a", "dpo", "site-b"]), ("two", ["site-c", "dpo2"])):
        sets[set_name] = [keyfiles.generate_recipient(directory, name, node) for name in names]
    return directory, sets


def _pipeline(directory: Path, recipients: list[Path]):
    config = node_config.defaults()
    config["handlers"]["seal"]["recipients"] = [str(path) for path in recipients]
    return build_pipeline(config["pipeline"]["handlers"], config["handlers"],
                          keyfiles.load_node_keys(directory / "node.keys"))


def _protect(pipeline, name: str = IMAGE) -> tuple[pydicom.Dataset, pydicom.Dataset]:
    original = pydicom.dcmread(image_path(name))
    ds = copy.deepcopy(original)
    instance = protect_object(ds, pipeline).instance
    assert instance.report["carriers"] == "pixels+header"
    return original, pydicom.dcmread(BytesIO(_bytes(ds)))


def _everything(ds: pydicom.Dataset) -> np.ndarray:
    """A foreground that covers the whole image: the pixel carrier reads nothing, so reveal
    must come from the header carrier."""
    return np.ones(read_pixels(ds).shape, dtype=bool)


def _bytes(ds: pydicom.Dataset) -> bytes:
    out = BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


@pytest.fixture(scope="module")
def sealed_for_three(recipient_sets):
    directory, sets = recipient_sets
    return _protect(_pipeline(directory, [public for public, _ in sets["one"]]))


def test_seal_for_several_costs_32_bytes_per_extra_recipient():
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    keys = [X25519PrivateKey.generate() for _ in range(3)]
    publics = [key.public_key().public_bytes_raw() for key in keys]
    one, three = seal_for(b"x" * 40, publics[:1], b"ad"), seal_for(b"x" * 40, publics, b"ad")
    assert (envelope_recipients(one), envelope_recipients(three)) == (1, 3)
    assert len(three) - len(seal_for(b"x" * 40, publics[:2], b"ad")) == 32
    for key in keys:
        assert open_sealed(three, key.private_bytes_raw(), b"ad") == b"x" * 40
    altered = bytearray(three)
    altered[40] ^= 1  # a bit of the first recipient's masked content key
    for key in keys:  # the slots are associated data: altering one fails every recipient
        with pytest.raises(PayloadIntegrityError):
            open_sealed(bytes(altered), key.private_bytes_raw(), b"ad")


def test_three_recipients_each_reveal_alone_from_pixels_and_header(recipient_sets, sealed_for_three):
    directory, sets = recipient_sets
    original, stego = sealed_for_three
    protection = read_protection(stego)
    recipients = [keyfiles.load_recipient(public) for public, _ in sets["one"]]
    assert protection.recipient_key_ids == [r.key_id for r in recipients]
    assert protection.header_certificate_ids == [r.certificate_id for r in recipients]
    for _, peer_path in sets["one"]:
        peer = keyfiles.load_peer_keys(peer_path)
        both = reveal(copy.deepcopy(stego), peer)
        assert (both.carrier, both.confirmed_by) == ("pixels", ("header",))
        assert both.dataset.PatientID == original.PatientID and both.dataset.PatientName == original.PatientName
        pixels_only = copy.deepcopy(stego)
        del pixels_only.EncryptedAttributesSequence
        assert reveal(pixels_only, peer).carrier == "pixels"
        from_header = reveal(copy.deepcopy(stego), peer, foreground=_everything(stego))
        assert from_header.carrier == "header" and from_header.dataset.PatientID == original.PatientID


def test_openssl_decrypts_the_envelope_with_each_recipient_key(recipient_sets, sealed_for_three, tmp_path):
    _, sets = recipient_sets
    original, stego = sealed_for_three
    content = tmp_path / "content.der"
    content.write_bytes(bytes(stego.EncryptedAttributesSequence[0].EncryptedContent))
    structure = subprocess.run(["openssl", "cms", "-cmsout", "-print", "-inform", "DER", "-in", str(content)],
                               capture_output=True, text=True, timeout=60)
    assert structure.stdout.count("rid: ") == 3 or structure.stdout.count("issuerAndSerialNumber") == 3
    for index, (_, peer_path) in enumerate(sets["one"]):
        peer = keyfiles.load_peer_keys(peer_path)
        cert, key = tmp_path / f"cert{index}.pem", tmp_path / f"key{index}.pem"
        cert.write_bytes(peer.certificate.public_bytes(serialization.Encoding.PEM))
        key.write_bytes(peer.rsa_private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        result = subprocess.run(["openssl", "cms", "-decrypt", "-binary", "-inform", "DER", "-in", str(content),
                                 "-recip", str(cert), "-inkey", str(key)], capture_output=True, timeout=60)
        assert result.returncode == 0, result.stderr
        data_set = read_dataset(BytesIO(result.stdout), is_implicit_VR=False, is_little_endian=True)
        assert data_set.ModifiedAttributesSequence[0].PatientID == original.PatientID


def test_a_key_of_another_set_is_named_wrong(recipient_sets, sealed_for_three):
    _, sets = recipient_sets
    _, stego = sealed_for_three
    outsider = keyfiles.load_peer_keys(sets["two"][0][1])
    with pytest.raises(WrongRecipientKeyError, match="sealed for recipient keys .*, .*, .*peer.keys holds"):
        reveal(copy.deepcopy(stego), outsider)


def test_rotation_and_resealing_the_header_for_a_new_set(recipient_sets, tmp_path):
    directory, sets = recipient_sets
    one = [public for public, _ in sets["one"]]
    two = [public for public, _ in sets["two"]]
    stored = tmp_path / "stored"
    stored.mkdir()
    _, old = _protect(_pipeline(directory, one), "693_UNCR.dcm")
    _, new = _protect(_pipeline(directory, two), "RG3_UNCR.dcm")
    (stored / "old.dcm").write_bytes(_bytes(old))
    (stored / "new.dcm").write_bytes(_bytes(new))
    peer_one = keyfiles.load_peer_keys(sets["one"][1][1])
    peer_two = keyfiles.load_peer_keys(sets["two"][0][1])
    assert reveal(copy.deepcopy(old), peer_one).carrier == "pixels"
    assert reveal(copy.deepcopy(new), peer_two).carrier == "pixels"
    with pytest.raises(WrongRecipientKeyError):
        reveal(copy.deepcopy(old), peer_two)

    counts = stored_by_key(stored)
    set_one_ids = {keyfiles.load_recipient(p).key_id for p in one}
    assert {key: n for key, n in counts.items() if key in set_one_ids} == dict.fromkeys(set_one_ids, 1)
    assert sum(counts.values()) == 10  # 5 recipients: a pixel key id and a certificate id each

    pixels_before = read_pixels(old).copy()
    results = reseal_files([stored / "old.dcm", stored / "new.dcm"], sets["one"][1][1], two)
    assert [outcome for _, outcome in results] == ["resealed", "skipped: already sealed for these recipients"]
    resealed = pydicom.dcmread(stored / "old.dcm")
    assert np.array_equal(read_pixels(resealed), pixels_before)
    from_header = reveal(copy.deepcopy(resealed), peer_two, foreground=_everything(resealed))
    assert from_header.carrier == "header" and from_header.dataset.PatientID == old_patient_id(old, peer_one)
    assert reveal(copy.deepcopy(resealed), peer_one).carrier == "pixels"  # the pixels keep set 1
    counts = stored_by_key(stored)
    assert all(counts[keyfiles.load_recipient(p).certificate_id] == 2 for p in two)


def old_patient_id(old: pydicom.Dataset, peer: keyfiles.PeerKeys) -> str:
    return str(reveal(copy.deepcopy(old), peer).dataset.PatientID)


def test_reseal_needs_a_key_the_header_was_sealed_for(recipient_sets, sealed_for_three):
    _, sets = recipient_sets
    _, stego = sealed_for_three
    with pytest.raises(WrongRecipientKeyError):
        reseal_header(copy.deepcopy(stego), keyfiles.load_peer_keys(sets["two"][0][1]),
                      [keyfiles.load_recipient(p) for p, _ in sets["two"]])


def test_recipient_files_are_checked(recipient_sets, tmp_path):
    directory, sets = recipient_sets
    with pytest.raises(ConfigError, match="peer.keys"):
        _pipeline(directory, [sets["one"][0][1]])  # a peer.keys holds private keys: refused
    with pytest.raises(ConfigError, match="twice"):
        _pipeline(directory, [sets["one"][0][0], sets["one"][0][0]])
    with pytest.raises(ConfigError, match="not found"):
        _pipeline(directory, [tmp_path / "absent.recipient"])
    assert keyfiles.load_recipient(directory / "node.keys").key_id == keyfiles.load_node_keys(
        directory / "node.keys").recipient.key_id
    with pytest.raises(KeyFileError, match="already exists"):
        keyfiles.generate_recipient(directory, "site-a", directory / "node.keys")
    with pytest.raises(KeyFileError, match="recipient name"):
        keyfiles.generate_recipient(directory, "../x", directory / "node.keys")
    text = (sets["one"][0][0]).read_text()
    assert "recipient_private_key" not in text and '"role": "recipient"' in text


def test_command_line_recipients_rotation_and_reseal(tmp_path, capsys):
    """keygen --recipient, protect for a set listed in node.toml, keys objects, keys reseal."""
    from stegonode.cli import main

    keys = tmp_path / "keys"
    assert main(["keygen", str(keys)]) == 0
    for name in ("site-a", "dpo", "site-c"):
        assert main(["keygen", str(keys), "--recipient", name, "--node-keys", str(keys / "node.keys")]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and "dpo.recipient" in out
    assert main(["keygen", str(keys), "--recipient", "x"]) == 2  # --node-keys missing: a usage error
    config = tmp_path / "node.toml"
    config.write_text('[handlers.seal]\nrecipients = ["keys/site-a.recipient", "keys/dpo.recipient"]\n'
                      '[handlers.segment]\nsegmenter = "classical"\n')
    folder = tmp_path / "protected"
    import os
    os.chdir(tmp_path)
    assert main(["protect", str(image_path(IMAGE)), "--out", str(folder), "--keys", str(keys / "node.keys"),
                 "--config", str(config)]) == 0
    capsys.readouterr()
    assert main(["keys", "objects", "--config", str(config), "--folder", str(folder), "--json"]) == 0
    import json
    document = json.loads(capsys.readouterr().out)
    site_a, dpo, site_c = (keyfiles.load_recipient(keys / f"{n}.recipient") for n in ("site-a", "dpo", "site-c"))
    assert document["current"] == [site_a.key_ids, dpo.key_ids]
    assert document["stored_by_key"] == {site_a.key_id: 1, site_a.certificate_id: 1, dpo.key_id: 1,
                                         dpo.certificate_id: 1}
    for name in ("site-a", "dpo"):
        assert main(["reveal", str(folder / IMAGE), "--keys", str(keys / f"{name}.peer.keys")]) == 0
    assert main(["reveal", str(folder / IMAGE), "--keys", str(keys / "site-c.peer.keys")]) == 1
    assert "sealed for recipient keys" in capsys.readouterr().out
    pixels = read_pixels(pydicom.dcmread(folder / IMAGE)).copy()
    assert main(["keys", "reseal", str(folder / IMAGE), "--config", str(config), "--keys",
                 str(keys / "dpo.peer.keys"), "--recipient", str(keys / "site-c.recipient")]) == 0
    assert "resealed" in capsys.readouterr().out
    resealed = pydicom.dcmread(folder / IMAGE)
    assert np.array_equal(read_pixels(resealed), pixels)
    peer_c = keyfiles.load_peer_keys(keys / "site-c.peer.keys")
    assert reveal(resealed, peer_c, foreground=_everything(resealed)).carrier == "header"
    # a peer that holds keys of both sets: each file with the key it was sealed for
    assert main(["protect", str(image_path("RG3_UNCR.dcm")), "--out", str(folder), "--keys",
                 str(keys / "node.keys")]) == 0  # node.keys's own recipient: peer.keys
    capsys.readouterr()
    both = [str(folder / IMAGE), str(folder / "RG3_UNCR.dcm")]
    assert main(["reveal", *both, "--keys", str(keys / "site-a.peer.keys"), "--keys", str(keys / "peer.keys")]) == 0
    assert capsys.readouterr().out.count("OK ") == 2
    assert main(["reveal", *both, "--keys", str(keys / "site-a.peer.keys")]) == 1


def test_an_odd_length_envelope_is_read_without_its_padding_byte():
    """DICOM pads an odd-length Encrypted Content with a zero byte; the MAC covers the DER
    envelope as made (its length varies with the recipients' certificate serial numbers)."""
    from stegonode.handlers.header import stored_envelope

    item = pydicom.Dataset()
    item.EncryptedContent = b"\x30\x03abc\x00"  # a 5-byte DER value, padded
    assert stored_envelope(item) == b"\x30\x03abc"
    item.EncryptedContent = b"\x30\x04abc\x00"  # a 6-byte DER value that ends in zero: as stored
    assert stored_envelope(item) == b"\x30\x04abc\x00"
    item.EncryptedContent = b"\x30\x82\x00\x03abc\x00"
    assert stored_envelope(item) == b"\x30\x82\x00\x03abc"
