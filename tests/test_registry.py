"""The registries: a handler and a stego codec registered from this module alone take part in
node.toml's validation, protect and reveal; no module of the package knows them."""

from __future__ import annotations

from typing import Annotated, ClassVar

import numpy as np
import pydicom
import pytest
from pydantic import Field

from stegonode.codecs.registry import CIPHERS, CODECS
from stegonode.codecs.settings import Range, Settings
from stegonode.codecs.stego import CodecEntry
from stegonode.dicom.private import read_document, remove_block, write_document
from stegonode.errors import ConfigError, MessageNotFoundError, NotProtectedError
from stegonode.handlers.base import HandlerBase, Instance, Revealing
from stegonode.handlers.pipeline import build_pipeline
from stegonode.handlers.protect import protect_object
from stegonode.handlers.protection import read_protection
from stegonode.handlers.registry import HANDLERS
from stegonode.handlers.reveal import reveal
from stegonode.node import config as node_config
from stegonode.segmenters.registry import SEGMENTERS, make_segmenter

from images import image_path

TOY_GROUP, TOY_CREATOR = 0x0015, "TOY HANDLER 1"
LENGTH_BITS = 32


class ToyCodec:
    """Least significant bits of the usable pixels in raster order, each bit ``copies`` times."""

    name = "toy"

    def __init__(self, copies: int = 3) -> None:
        self.copies = int(copies)

    def capacity(self, usable: np.ndarray) -> int:
        return max(0, int(usable.sum()) // self.copies - LENGTH_BITS)

    def fit(self, usable: np.ndarray, message_bits: int, key: bytes) -> ToyCodec:
        return self

    def embed(self, pixels, usable, message, key, value_range):
        from stegonode.errors import CapacityError

        if message.size > self.capacity(usable):
            raise CapacityError(self.capacity(usable), message.size)
        length = np.array([(message.size >> i) & 1 for i in range(LENGTH_BITS)], dtype=np.uint8)
        bits = np.repeat(np.concatenate([length, message.astype(np.uint8)]), self.copies)
        out = pixels.copy()
        where = np.flatnonzero(usable)[:bits.size]
        flat = out.reshape(-1)
        flat[where] = np.clip((flat[where].astype(np.int64) & ~1) | bits, *value_range).astype(out.dtype)
        return out

    def extract(self, pixels, usable, key, value_range):
        values = pixels.reshape(-1)[np.flatnonzero(usable)].astype(np.int64) & 1
        votes = values[:values.size // self.copies * self.copies].reshape(-1, self.copies)
        bits = (votes.sum(axis=1) * 2 > self.copies).astype(np.uint8)
        length = int(sum(int(b) << i for i, b in enumerate(bits[:LENGTH_BITS])))
        if not 0 < length <= bits.size - LENGTH_BITS:
            raise MessageNotFoundError("no toy message")
        return bits[LENGTH_BITS:LENGTH_BITS + length]

    def params(self) -> dict:
        return {"copies": self.copies}

    def change_allowance(self) -> float:
        return 1.0


class ToySettings(Settings):
    """``[handlers.toy]``: its one key, declared, defaulted and checked here."""

    label: Annotated[str, Field(max_length=64)] = "toy was here"


class ToyCodecSettings(Settings):
    copies: Annotated[int, Range(1, 15)] = 3


class ToyHandler(HandlerBase):
    """Labels the protected object (Image Comments) and records that in its own private block;
    its inverse step takes both away again."""

    name: ClassVar[str] = "toy"
    requires: ClassVar[tuple[str, ...]] = ("deidentify",)
    table: ClassVar[type[Settings]] = ToySettings

    def __init__(self, label: str) -> None:
        self.label = label

    @classmethod
    def from_config(cls, context):
        return cls(context.settings.toy.label)

    def __call__(self, instance: Instance) -> None:
        instance.dataset.ImageComments = self.label
        instance.extra["toy"] = {"label": self.label}

    def finish(self, instance: Instance) -> None:
        write_document(instance.dataset, TOY_GROUP, TOY_CREATOR, instance.extra["toy"])

    @classmethod
    def unprotect(cls, state: Revealing) -> None:
        if "ImageComments" in state.output:
            del state.output.ImageComments
        remove_block(state.output, TOY_GROUP, TOY_CREATOR)


@pytest.fixture
def toys():
    """The toy handler and codec, registered for one test only."""
    HANDLERS.register(ToyHandler)
    CODECS.register(CodecEntry("toy", lambda params: ToyCodec(**params), ToyCodecSettings))
    yield
    HANDLERS.unregister("toy")
    CODECS.unregister("toy")


def _toml(tmp_path, copies=5, label="labelled by the toy"):
    path = tmp_path / "node.toml"
    path.write_text(f"""
[pipeline]
handlers = ["collect", "seal", "segment", "embed", "deidentify", "toy"]
[handlers.segment]
segmenter = "classical"
[handlers.embed]
codec = "toy"
[handlers.embed.toy]
copies = {copies}
[handlers.toy]
label = "{label}"
""")
    return path


def test_a_toy_handler_and_codec_protect_and_reveal_from_a_test_module_alone(toys, tmp_path, node_keys, peer_keys):
    config = node_config.load(_toml(tmp_path))
    assert config.handlers.toy == ToySettings(label="labelled by the toy")
    pipeline = build_pipeline(config["pipeline"]["handlers"], config["handlers"], node_keys,
                              config["pipeline"]["carriers"])
    original = pydicom.dcmread(image_path("693_J2KI.dcm"))
    ds = pydicom.dcmread(image_path("693_J2KI.dcm"))
    instance = protect_object(ds, pipeline).instance
    protection = read_protection(ds)
    assert protection.codec == "toy" and protection.params == {"copies": 5}
    assert protection.steps == ["collect", "seal", "segment", "embed", "deidentify", "toy"]
    assert protection.segmenter == "classical" and instance.report["segmenter"] == "classical"
    assert ds.ImageComments == "labelled by the toy"
    assert read_document(ds, TOY_GROUP, TOY_CREATOR) == {"label": "labelled by the toy"}
    assert "PatientName" not in ds or ds.PatientName != original.PatientName

    revealed = reveal(ds, peer_keys)
    assert revealed.carrier == "pixels" and revealed.confirmed_by == ("header",)
    for element in revealed.attributes:
        assert element.value == original[element.tag].value, element.keyword
    assert revealed.dataset.get("ImageComments") == original.get("ImageComments")
    assert read_document(revealed.dataset, TOY_GROUP, TOY_CREATOR) is None
    assert revealed.dataset.SOPInstanceUID == original.SOPInstanceUID


def test_node_toml_validation_and_reveal_ask_the_registry(toys, tmp_path, node_keys, peer_keys):
    with pytest.raises(ConfigError, match=r"handlers.embed.toy.copies = 99: must be within 1..15"):
        node_config.load(_toml(tmp_path, copies=99))
    with pytest.raises(ConfigError, match="handlers.toy.label = 'xxx.*': String should have at most 64 characters"):
        node_config.load(_toml(tmp_path, label="x" * 65))
    config = node_config.load(_toml(tmp_path))
    ds = pydicom.dcmread(image_path("693_J2KI.dcm"))
    protect_object(ds, build_pipeline(config["pipeline"]["handlers"], config["handlers"], node_keys))
    HANDLERS.unregister("toy")
    with pytest.raises(NotProtectedError, match=r"handler\(s\) \['toy'\] this node does not have"):
        reveal(ds, peer_keys)
    HANDLERS.register(ToyHandler)
    CODECS.unregister("toy")
    with pytest.raises(NotProtectedError, match="malformed stegonode protection block: unknown codec 'toy'"):
        reveal(ds, peer_keys)


def test_without_the_toys_node_toml_refuses_them(tmp_path):
    with pytest.raises(ConfigError, match="unknown key handlers.embed.toy"):
        node_config.load(_toml(tmp_path))
    assert "toy" not in HANDLERS and "toy" not in CODECS
    # the built-ins are there; a codec, cipher or segmenter added later does not break this
    assert set(CODECS) >= {"dct", "paper", "deep"} and set(CIPHERS) >= {"aes-gcm", "chaos"}
    assert set(SEGMENTERS) >= {"classical", "maskrcnn", "padding"}
    assert list(node_config.DEFAULTS["handlers"]) == list(HANDLERS)


def test_a_name_is_registered_once():
    with pytest.raises(ValueError, match="already registered"):
        CODECS.register(CodecEntry("dct", lambda params: ToyCodec()))


def test_segmenters_declare_typed_parameters_that_make_segmenter_checks():
    """A segmenter's parameters are its typed ``settings``: what it records (``params()``) builds
    the same segmenter again, and a bad or unknown parameter is one line naming it."""
    assert set(SEGMENTERS) >= {"classical", "maskrcnn", "padding"}
    for name in ("classical", "padding"):
        segmenter = make_segmenter(name)
        assert set(segmenter.params()) == set(SEGMENTERS[name].settings.model_fields)
        assert make_segmenter(name, segmenter.params()).params() == segmenter.params()
    assert make_segmenter("classical", {"min_component": 9}).min_component == 9
    with pytest.raises(ConfigError, match=r"segmenter classical.min_component = 0: must be within"):
        make_segmenter("classical", {"min_component": 0})
    with pytest.raises(ConfigError, match=r"unknown key segmenter padding.depth"):
        make_segmenter("padding", {"depth": 3})
