"""The pure codecs on their own: payload text/QR, sealing, key files, DCT stego (and how its
parameters read back from a protection block)."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
from pydicom import Dataset

from stegonode.codecs import keys as keyfiles
from stegonode.codecs import payload
from stegonode.codecs.dct import DctCodec, DctParams
from stegonode.codecs.registry import make_codec
from stegonode.codecs.seal import open_sealed, seal
from stegonode.errors import (
    CapacityError,
    KeyFileError,
    MessageNotFoundError,
    PayloadBindingError,
    PayloadIntegrityError,
    PayloadTooLargeError,
    WrongRecipientKeyError,
)
from stegonode.handlers.protection import Protection, read_protection, write_protection


@pytest.mark.parametrize("size", [0, 1, 2, 3, 100, 501])
def test_base45_round_trip(size):
    data = os.urandom(size)
    text = payload.to_text(data)
    assert set(text) <= set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")
    assert payload.from_text(text) == data


@pytest.mark.parametrize("level", ["L", "M", "Q", "H"])
def test_qr_round_trip_through_a_reader(level):
    text = payload.to_text(os.urandom(300))
    modules = payload.to_qr(text, level)
    assert modules.shape[0] == modules.shape[1] and modules.dtype == bool
    assert payload.from_qr(modules) == text


@pytest.mark.parametrize("level", ["L", "M", "Q", "H"])
def test_qr_symbol_is_the_one_the_qrcode_package_draws(level):
    """stegonode.codecs.qrencode draws the symbol qrcode draws (mask 0, smallest version), at
    every length from 1 character to the largest version, odd and even counts."""
    import qrcode
    import qrcode.util

    rng = np.random.default_rng(1)
    limit = payload._max_alphanumeric_chars(payload._LEVELS[level])
    for length in sorted({1, 2, 3, limit - 1, limit, *rng.integers(4, limit, 60).tolist()}):
        text = "".join(rng.choice(list(payload._B45), length))
        qr = qrcode.QRCode(error_correction=payload._LEVELS[level], box_size=1, border=0, mask_pattern=0)
        qr.add_data(qrcode.util.QRData(text.encode(), mode=qrcode.util.MODE_ALPHA_NUM, check_data=False))
        qr.make(fit=True)
        np.testing.assert_array_equal(payload.to_qr(text, level), np.array(qr.modules, dtype=bool),
                                      err_msg=f"{length} characters at level {level}")


@pytest.mark.parametrize("size", [10, 150, 600, 2000])
def test_message_layout_2_sends_only_what_the_version_does_not_fix(size):
    text = payload.to_text(os.urandom(size))
    modules = payload.to_qr(text, "L")
    bits = payload.pack(modules)
    assert bits.dtype == np.uint8 and bits.size < 0.95 * modules.size
    np.testing.assert_array_equal(payload.unpack(bits), modules)
    assert payload.from_qr(payload.unpack(bits)) == text
    with pytest.raises(MessageNotFoundError, match="not a QR code"):
        payload.unpack(bits[:-1])


def test_too_large_payload_says_by_how_many_bytes():
    limit = payload._max_alphanumeric_chars(payload._LEVELS["H"]) * 2 // 3
    with pytest.raises(PayloadTooLargeError) as caught:
        payload.to_qr(payload.to_text(os.urandom(limit + 100)), "H")
    assert caught.value.excess_bytes == pytest.approx(100, abs=2)
    assert "bytes over the" in str(caught.value)


def test_compression_round_trip_and_damage():
    data = b"ISO_IR 100" * 20 + os.urandom(50)
    assert payload.decompress(payload.compress(data)) == data
    assert len(payload.compress(data)) < len(data)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    directory = tmp_path_factory.mktemp("k")
    keyfiles.generate(directory)
    return keyfiles.load_node_keys(directory / "node.keys"), keyfiles.load_peer_keys(directory / "peer.keys")


def test_seal_opens_only_for_the_recipient_and_the_instance(pair, tmp_path):
    node, peer = pair
    envelope = seal(b"secret", node.recipient_public_key, b"instance-1")
    assert open_sealed(envelope, peer.recipient_private_key, b"instance-1") == b"secret"
    with pytest.raises(PayloadBindingError):
        open_sealed(envelope, peer.recipient_private_key, b"instance-2")
    tampered = envelope[:-1] + bytes([envelope[-1] ^ 1])
    with pytest.raises(PayloadIntegrityError):
        open_sealed(tampered, peer.recipient_private_key, b"instance-1")
    keyfiles.generate(tmp_path)
    other = keyfiles.load_peer_keys(tmp_path / "peer.keys")
    with pytest.raises(WrongRecipientKeyError):
        open_sealed(envelope, other.recipient_private_key, b"instance-1")


def test_keygen_files_are_private_and_the_node_cannot_open_payloads(tmp_path):
    node_path, peer_path = keyfiles.generate(tmp_path)
    for path in (node_path, peer_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "private" not in node_path.read_text()
    assert "recipient_private_key" in peer_path.read_text()
    with pytest.raises(KeyFileError, match="already exists"):
        keyfiles.generate(tmp_path)
    with pytest.raises(KeyFileError, match="needs peer keys"):
        keyfiles.load_peer_keys(node_path)
    with pytest.raises(KeyFileError, match="not found"):
        keyfiles.load_node_keys(tmp_path / "missing.keys")


def _synthetic(shape, dtype, background, rng):
    """A bright disc (foreground) on a noisy background at ``background``."""
    frames, rows, cols = shape
    y, x = np.ogrid[:rows, :cols]
    disc = (y - rows / 2) ** 2 + (x - cols / 2) ** 2 < (min(rows, cols) / 4) ** 2
    info = np.iinfo(dtype)
    image = np.clip(background + rng.integers(0, 3, shape), info.min, info.max)
    image[:, disc] = min(info.max, background + 100)
    usable = np.broadcast_to(~disc, shape) & np.broadcast_to(
        np.abs(y - rows / 2) ** 2 + np.abs(x - cols / 2) ** 2 > (min(rows, cols) / 4 + 6) ** 2, shape
    )
    return image.astype(dtype), usable


@pytest.mark.parametrize(
    "shape, dtype, value_range, background",
    [
        ((1, 512, 512), np.uint16, (0, 4095), 0),  # unsigned, background at the floor
        ((1, 301, 257), np.int16, (-2048, 2047), -2048),  # not a multiple of 4, signed floor
        ((3, 256, 256), np.uint16, (0, 65535), 30000),  # multi-frame
        ((1, 512, 512), np.uint8, (0, 255), 250),  # 8-bit, near the ceiling
    ],
)
def test_dct_round_trip_keeps_foreground_and_range(shape, dtype, value_range, background):
    rng = np.random.default_rng(7)
    image, usable = _synthetic(shape, dtype, background, rng)
    message = rng.integers(0, 2, 33 * 33).astype(np.uint8)
    key = os.urandom(32)
    codec = DctCodec().fit(usable, message.size, key)
    stego = codec.embed(image, usable, message, key, value_range)
    assert stego.dtype == image.dtype
    np.testing.assert_array_equal(stego[~usable], image[~usable])
    assert stego.min() >= value_range[0] and stego.max() <= value_range[1]
    np.testing.assert_array_equal(codec.extract(stego, usable, key, value_range), message)
    with pytest.raises(MessageNotFoundError):
        codec.extract(stego, usable, os.urandom(32), value_range)


def test_dct_capacity_error_names_offered_and_needed_bits():
    rng = np.random.default_rng(1)
    image, usable = _synthetic((1, 64, 64), np.uint16, 0, rng)
    with pytest.raises(CapacityError, match=r"offers \d+ bits, 4761 are needed"):
        DctCodec().embed(image, usable, np.ones(4761, np.uint8), b"k" * 32, (0, 4095))


def test_dct_fit_uses_fewer_coefficients_on_large_backgrounds():
    usable = np.ones((1, 512, 512), bool)
    assert len(DctCodec().fit(usable, 3000, b"k" * 32).settings.coefficients) == 3
    small = np.zeros((1, 512, 512), bool)
    small[:, :64, :] = True
    assert len(DctCodec().fit(small, 3000, b"k" * 32).settings.coefficients) > 3
    assert DctCodec(DctParams.from_dict(DctCodec().params())).settings == DctParams()


def test_dct_small_background_leaves_few_bits_without_a_vote():
    # A 300x484 image whose body leaves about 3 votes per message bit (examples_overlay's case).
    rows, cols = 300, 484
    y, x = np.ogrid[:rows, :cols]
    body = ((y - rows / 2) / (rows * 0.62)) ** 2 + ((x - cols / 2) / (cols * 0.45)) ** 2 < 1
    usable = np.broadcast_to(~body, (1, rows, cols))
    image = np.random.default_rng(5).integers(0, 3, (1, rows, cols)).astype(np.uint16)
    message = np.random.default_rng(6).integers(0, 2, 8545).astype(np.uint8)
    key = bytes(range(32))
    codec = DctCodec().fit(usable, message.size, key)
    stego = codec.embed(image, usable, message, key, (0, 4095))
    errors = np.count_nonzero(codec.extract(stego, usable, key, (0, 4095)) != message)
    assert errors <= message.size // 1000  # layout 1 gets 79 wrong here


def test_dct_protection_block_without_layout_reads_as_layout_1():
    rng = np.random.default_rng(3)
    image, usable = _synthetic((1, 256, 256), np.uint16, 0, rng)
    message = rng.integers(0, 2, 33 * 33).astype(np.uint8)
    key = os.urandom(32)
    legacy = DctCodec(DctParams(layout=1)).fit(usable, message.size, key)
    stego = legacy.embed(image, usable, message, key, (0, 4095))
    params = legacy.params()
    del params["layout"], params["chunk_extra"]  # as written before the codec had layouts
    ds = Dataset()
    write_protection(ds, Protection("dct", params, "classical", 6, "e", "r"))
    codec = make_codec("dct", read_protection(ds).params)
    assert codec.settings.layout == 1
    np.testing.assert_array_equal(codec.extract(stego, usable, key, (0, 4095)), message)
