"""node.toml: the shipped file documents the embedded defaults; mistakes name the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stegonode.errors import ConfigError
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
        ("[node]\nport = 70000\n", "node.port = 70000: must be within 1..65535"),
        ("[node]\nworkers = -1\n", "node.workers = -1: must be >= 0"),
        ("[node]\nlease_seconds = 0\n", "node.lease_seconds = 0: must be within 1..86400"),
        ("[node]\nallowed_callers = 'all'\n", "node.allowed_callers = 'all'"),
        ("[node]\nae_title = 'A_TITLE_LONGER_THAN_16'\n", "node.ae_title must be 1 to 16 characters"),
        ("[node]\ndatabase = 'mysql://db/x'\n", "node.database: mysql:// is not supported"),
        ("[node]\ndatabase = 'postgresql://db'\n", "node.database: the URL names no database"),
        ("[node]\ndatabase = 'index.sqlite'\n", "node.database 'index.sqlite': not a database URL"),
        ("[node.tls]\ncertificate = 'node.pem'\n", "node.tls needs both certificate and private_key"),
        ("[[peers]]\nae_title = 'PACS'\nhost = 'pacs'\n", "peers entry 1 needs port (int)"),
        ("[[peers]]\nae_title = 'PACS'\nhost = 'pacs'\nport = 104\nhsot = 'x'\n", "peers entry 1: unknown key hsot"),
        ("peers = 'PACS'\n", "peers must be an array of tables"),
        ("[web]\nlogin = 'basic'\n", "web.login = 'basic'; choose one of none, password, token"),
        ("[web]\nport = 0\n", "web.port = 0: must be within 1..65535"),
        ("[orthanc]\nmode = 'async'\n", "orthanc.mode = 'async'; choose one of callback, queue"),
        ("[web]\nmax_upload_mb = 0\n", "web.max_upload_mb = 0: must be within 1..65536"),
        ("[[peers]]\nae_title = 'A'\nhost = 'h'\nport = 1\n[[peers]]\nae_title = 'A'\nhost = 'g'\nport = 2\n",
         "peers: each ae_title may appear once"),
    ],
)
def test_wrong_config_names_the_key(tmp_path, text, message):
    path = tmp_path / "node.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
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
