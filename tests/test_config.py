"""node.toml: the shipped file documents the embedded defaults; mistakes name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from stegonode.codecs.errors import ConfigError
from stegonode.node import config

SHIPPED = Path(__file__).resolve().parents[1] / "node.toml"


def test_shipped_node_toml_equals_the_embedded_defaults():
    assert config.load(SHIPPED) == config.load(None) == config.DEFAULTS


@pytest.mark.parametrize(
    "text, message",
    [
        ("[handlers.embed.dct]\nstpe = 3\n", "unknown key handlers.embed.dct.stpe"),
        ("[handlers.segment]\nmargin = 'wide'\n", "handlers.segment.margin must be int"),
        ("[handlers.seal]\nqr_error_correction = 'X'\n", "handlers.seal.qr_error_correction = 'X'"),
        ("[handlers.embed]\ncodec = 'lsb'\n", "handlers.embed.codec = 'lsb'"),
        ("[handlers.encrypt]\ncipher = 'des'\n", "handlers.encrypt.cipher = 'des'; choose one of aes-gcm, chaos"),
        ("[pipeline\n", "not valid TOML"),
    ],
)
def test_wrong_config_names_the_key(tmp_path, text, message):
    path = tmp_path / "node.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        config.load(path)


def test_pipeline_order_is_checked(tmp_path, node_keys):
    from stegonode.handlers.pipeline import build_pipeline

    settings = config.load(None)["handlers"]
    with pytest.raises(ConfigError, match="'embed' needs seal, segment before it"):
        build_pipeline(["collect", "embed"], settings, node_keys)
    with pytest.raises(ConfigError, match="'encrypt' needs embed before it"):
        build_pipeline(["collect", "encrypt"], settings, node_keys)
    with pytest.raises(ConfigError, match="unknown handler"):
        build_pipeline(["collect", "compress"], settings, node_keys)
