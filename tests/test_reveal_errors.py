"""Every way a reveal can go wrong gives its own clear error, never wrong patient data."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from stegonode.codecs import keys as keyfiles
from stegonode.dicom.pixels import read_pixels, write_pixels
from stegonode.errors import (
    MessageNotFoundError,
    NotProtectedError,
    PayloadBindingError,
    PayloadIntegrityError,
    WrongEmbeddingKeyError,
    WrongRecipientKeyError,
)
from stegonode.handlers.reveal import reveal

from images import image_path


@pytest.fixture(scope="module")
def other_peer(tmp_path_factory):
    directory = tmp_path_factory.mktemp("other")
    keyfiles.generate(directory)
    return keyfiles.load_peer_keys(directory / "peer.keys")


def test_wrong_private_key(protect_image, peer_keys, other_peer):
    keys = keyfiles.PeerKeys(other_peer.recipient_private_key, peer_keys.embedding_key, peer_keys.pixel_cipher_key)
    with pytest.raises(WrongRecipientKeyError, match="sealed for recipient key"):
        reveal(protect_image("693_UNCR.dcm").read(), keys)


def test_wrong_embedding_key(protect_image, peer_keys, other_peer):
    keys = keyfiles.PeerKeys(peer_keys.recipient_private_key, other_peer.embedding_key, peer_keys.pixel_cipher_key)
    with pytest.raises(WrongEmbeddingKeyError, match="protected with embedding key"):
        reveal(protect_image("693_UNCR.dcm").read(), keys)


def test_payload_moved_into_another_image(protect_image, peer_keys):
    """The stego pixels (and protection block) of one instance under another's identity."""
    moved = protect_image("693_UNCR.dcm").read()
    other = protect_image("explicit_VR-UN.dcm").read()
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        assert moved[keyword].value != other[keyword].value
        moved[keyword].value = other[keyword].value
    with pytest.raises(PayloadBindingError, match="bound to another instance"):
        reveal(moved, peer_keys)


def test_overwritten_background(protect_image, peer_keys):
    protected = protect_image("693_UNCR.dcm")
    stego = protected.read()
    pixels = read_pixels(stego).copy()
    background = protected.usable
    pixels[background] = np.random.default_rng(3).integers(-2000, -1990, background.sum())
    write_pixels(stego, pixels)
    assert reveal(stego, peer_keys).carrier == "header"  # the header carrier still has it
    del stego.EncryptedAttributesSequence
    with pytest.raises(MessageNotFoundError):
        reveal(stego, peer_keys)


def test_tampered_protection_block_or_plain_image(peer_keys):
    with pytest.raises(NotProtectedError):
        reveal(pydicom.dcmread(image_path("693_UNCR.dcm")), peer_keys)


def test_errors_are_distinct_types():
    kinds = [WrongRecipientKeyError, WrongEmbeddingKeyError, PayloadBindingError, MessageNotFoundError, PayloadIntegrityError]
    assert len({k for k in kinds}) == len(kinds)
    assert not any(issubclass(a, b) for a in kinds for b in kinds if a is not b)


def test_a_protection_block_with_unknown_codec_parameters_is_named_not_pythons_message():
    from stegonode.codecs.registry import make_codec
    from stegonode.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        make_codec("dct", {"step": 10.0, "bogus_strength": 3})
    assert "unknown or missing parameter among bogus_strength, step" in str(caught.value)
    assert "__init__" not in str(caught.value) and "keyword argument" not in str(caught.value)
