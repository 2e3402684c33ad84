"""The one way in (stegonode.handlers.protect.protect_object) and the one failure rule
(stegonode.errors.Failure), as the command line, the console and the Orthanc plugin use them."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest

from stegonode import cli
from stegonode.dicom.pixels import read_pixels
from stegonode.errors import (
    CapacityError,
    Failure,
    InputError,
    RefusedError,
    UnsupportedImageError,
    is_transient,
    public_message,
)
from stegonode.handlers.protect import protect_object
from stegonode.handlers.protection import read_protection
from stegonode.handlers.reveal import reveal
from stegonode.node.ingest import CANNOT_UNDERSTAND, DATASET_DOES_NOT_MATCH_SOP_CLASS, OUT_OF_RESOURCES
from stegonode.node.orthanc_plugin import failure
from stegonode.web.jobs import protect_one

from images import image_path

NAME = "693_UNCR.dcm"
IDENTITY = ("PatientName", "PatientID", "PatientBirthDate")


@pytest.fixture(scope="module")
def stego(protect_image) -> bytes:
    return protect_image(NAME).path.read_bytes()


def test_an_object_is_protected_and_encoded(pipeline):
    data = image_path(NAME).read_bytes()
    protected = protect_object(data, pipeline)
    assert not protected.kept and protected.instance is not None
    stored = pydicom.dcmread(io.BytesIO(protected.data))
    assert stored.PatientIdentityRemoved == "YES" and read_protection(stored).has_pixels
    original = pydicom.dcmread(image_path(NAME))
    assert str(stored.PatientName) != str(original.PatientName)
    assert {"decode", "encode"} <= set(protected.timings)


def test_an_already_protected_object_is_kept_as_it_is(pipeline, peer_keys, stego):
    protected = protect_object(stego, pipeline)
    assert protected.kept and protected.instance is None and protected.report == {}
    kept, received = pydicom.dcmread(io.BytesIO(protected.data)), pydicom.dcmread(io.BytesIO(stego))
    assert np.array_equal(read_pixels(kept), read_pixels(received))
    assert read_protection(kept) == read_protection(received)
    # the identity it carries is still the original's: protecting again would seal pseudonyms
    original = pydicom.dcmread(image_path(NAME))
    revealed = reveal(kept, peer_keys).dataset
    assert all(str(revealed.get(k)) == str(original.get(k)) for k in IDENTITY)


def test_refusals_come_before_any_pixel_is_decoded(pipeline):
    ds = pydicom.dcmread(image_path(NAME))
    ds.BurnedInAnnotation = "YES"
    with pytest.raises(RefusedError, match="allow_burned_in_annotation"):
        protect_object(ds, pipeline)
    assert ds._pixel_array is None
    with pytest.raises(InputError, match="not a DICOM file"):
        protect_object(b"hello", pipeline)


def test_protect_command_keeps_an_already_protected_file(stego, key_dir, tmp_path, capsys):
    source = tmp_path / "in" / NAME
    source.parent.mkdir()
    source.write_bytes(stego)
    assert cli.main(["protect", str(source), "--out", str(tmp_path / "out"), "--keys", str(key_dir / "node.keys")]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith(f"OK {source}: already protected by stegonode, kept as it is"), line
    kept = pydicom.dcmread(tmp_path / "out" / NAME)
    assert read_protection(kept) == read_protection(pydicom.dcmread(source))


def test_console_upload_keeps_an_already_protected_object(pipeline, node_keys, stego):
    result = protect_one(1, stego, pipeline, node_keys.pixel_cipher_key)
    assert result.error is None and result.kept and result.overlay == b""
    assert read_protection(pydicom.dcmread(io.BytesIO(result.data))) == read_protection(
        pydicom.dcmread(io.BytesIO(stego)))
    plain = protect_one(2, image_path(NAME).read_bytes(), pipeline, node_keys.pixel_cipher_key)
    assert plain.error is None and not plain.kept and plain.overlay


# -- the one failure rule ----------------------------------------------------------------------


def test_only_stegonode_messages_are_quoted():
    value = "DOE^JANE 19700101"  # what a library's message could quote from the object
    assert public_message(CapacityError(10, 20)) == str(CapacityError(10, 20))
    for error in (ValueError(value), KeyError(value), OSError(28, "No space left on device", value)):
        assert value not in public_message(error)
    assert public_message(ValueError(value)) == "internal error while protecting (ValueError)"
    assert public_message(OSError(28, "No space left on device", value), "revealing") == (
        "system error while revealing (No space left on device)")
    assert public_message(MemoryError()) == "out of memory while protecting"


def test_only_failures_of_the_environment_are_retried():
    assert is_transient(OSError(28, "No space left on device")) and is_transient(MemoryError())
    assert is_transient(ConnectionResetError())
    for error in (InputError("x"), CapacityError(1, 2), TypeError("x"), RecursionError(), KeyError("x")):
        assert not is_transient(error), error
    assert Failure.of(TypeError("x")) == Failure("internal error while protecting (TypeError)", False)


def test_orthanc_statuses_follow_the_rule():
    assert failure(OSError(28, "No space left on device")).status == OUT_OF_RESOURCES
    assert failure(UnsupportedImageError("colour")).status == DATASET_DOES_NOT_MATCH_SOP_CLASS
    assert failure(CapacityError(1, 2)).status == CANNOT_UNDERSTAND
    unexpected = failure(ValueError("DOE^JANE"))
    assert unexpected.status == CANNOT_UNDERSTAND and "DOE" not in unexpected.reason
