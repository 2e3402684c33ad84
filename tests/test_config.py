"""node.toml: the shipped file documents the embedded defaults; mistakes name the key."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from stegonode.errors import ConfigError
from stegonode.node import config

SHIPPED = Path(__file__).resolve().parents[1] / "node.toml"


def _flat(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted key -> value for every key of a TOML document, at every depth."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def differences_from_defaults(path: Path) -> list[str]:
    """How node.toml, read alone (not over the defaults), differs from the embedded defaults: a
    key it lacks, a key the defaults lack, a value that differs. An empty array of tables (no
    peers by default) is shown as a commented-out example instead of a value."""
    text = path.read_text()
    shipped, defaults = _flat(tomllib.loads(text)), _flat(config.load(None).model_dump(mode="json"))
    missing = [
        f"missing {key}"
        for key in defaults.keys() - shipped.keys()
        if not (defaults[key] == [] and re.search(rf"^#\s*\[\[{re.escape(key)}\]\]$", text, re.MULTILINE))
    ]
    unknown = [f"unknown {key}" for key in shipped.keys() - defaults.keys()]
    differ = [f"{key} = {shipped[key]!r}, default {defaults[key]!r}" for key in shipped.keys() & defaults.keys()
              if shipped[key] != defaults[key]]
    return sorted(missing + unknown + differ)


def test_shipped_node_toml_equals_the_embedded_defaults():
    assert differences_from_defaults(SHIPPED) == []
    assert config.load(SHIPPED) == config.load(None)
    assert config.load(None).model_dump(mode="json") == config.DEFAULTS


@pytest.mark.parametrize(
    "edit, difference",
    [
        (lambda text: text.replace("\nmode = \"callback\"\n", "\n"), "missing orthanc.mode"),
        (lambda text: text.replace("[storage]\n", "[storage]\nlevel = 3\n", 1), "unknown storage.level"),
        (lambda text: text.replace("\nmode = \"callback\"\n", "\nmode = \"queue\"\n"),
         "orthanc.mode = 'queue', default 'callback'"),
        (lambda text: text.replace("#   [[peers]]\n", ""), "missing peers"),
    ],
)
def test_a_node_toml_that_drifts_from_the_defaults_is_caught(tmp_path, edit, difference):
    drifted = edit(SHIPPED.read_text())
    assert drifted != SHIPPED.read_text()
    (tmp_path / "node.toml").write_text(drifted)
    assert differences_from_defaults(tmp_path / "node.toml") == [difference]


@pytest.mark.parametrize(
    "text, message",
    [
        ("[handlers.embed.dct]\nstpe = 3\n", "unknown key handlers.embed.dct.stpe"),
        ("[handlers.segment]\nmargin = 'wide'\n", "handlers.segment.margin must be int"),
        ("[handlers.seal]\nqr_error_correction = 'X'\n", "handlers.seal.qr_error_correction = 'X': choose one of L, M, Q, H"),
        ("[handlers.embed]\ncodec = 'lsb'\n", "handlers.embed.codec = 'lsb'"),
        ("[handlers.encrypt]\ncipher = 'des'\n", "handlers.encrypt.cipher = 'des': choose one of aes-gcm, chaos"),
        ("[pipeline\n", "not valid TOML"),
        ("[node]\nport = 70000\n", "node.port = 70000: must be within 1..65535"),
        ("[node]\nworkers = -1\n", "node.workers = -1: must be >= 0"),
        ("[node]\nlease_seconds = 0\n", "node.lease_seconds = 0: must be within 1..86400"),
        ("[node]\nallowed_callers = 'all'\n", "node.allowed_callers = 'all': choose one of loopback, peers, any"),
        ("[node]\nae_title = 'A_TITLE_LONGER_THAN_16'\n", "node.ae_title must be 1 to 16 characters"),
        ("[node]\ndatabase = 'mysql://db/x'\n", "node.database: mysql:// is not supported"),
        ("[node]\ndatabase = 'postgresql://db'\n", "node.database: the URL names no database"),
        ("[node]\ndatabase = 'index.sqlite'\n", "node.database 'index.sqlite': not a database URL"),
        ("[node.tls]\ncertificate = 'node.pem'\n", "node.tls needs both certificate and private_key"),
        ("[[peers]]\nae_title = 'PACS'\nhost = 'pacs'\n", "peers[1].port is missing"),
        ("[[peers]]\nae_title = 'PACS'\nhost = 'pacs'\nport = 104\nhsot = 'x'\n", "unknown key peers[1].hsot"),
        ("peers = 'PACS'\n", "peers must be list, got str"),
        ("[[peers]]\nae_title = 'PACS'\nhost = 'pacs'\nport = '104'\n", "peers[1].port must be int, got str"),
        ("[node]\nworkers = true\n", "node.workers must be int, got bool"),
        ("[node]\nacse_timeout = 'x'\n", "node.acse_timeout must be float, got str"),
        ("[pipeline]\nhandlers = 'collect'\n", "pipeline.handlers must be list, got str"),
        ("[handlers.embed.deep]\nmin_copies = 9\nmax_copies = 2\n", "min_copies must not exceed handlers.embed.deep.max_copies"),
        ("[handlers.deidentify]\ndate_shift_days = [1]\n", "handlers.deidentify.date_shift_days must be two whole numbers"),
        ("[web]\nlogin = 'password'\n", 'web.login = "password" needs web.password_hash'),
        ("[web]\nbind_address = '0.0.0.0'\n", "web.bind_address = '0.0.0.0' is beyond loopback"),
        ("[audit]\nrepository = 'ftp://x'\n", "audit"),
        ("[web]\nlogin = 'basic'\n", "web.login = 'basic': choose one of none, password, token"),
        ("[web]\nport = 0\n", "web.port = 0: must be within 1..65535"),
        ("[orthanc]\nmode = 'async'\n", "orthanc.mode = 'async': choose one of callback, queue"),
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


def test_the_configuration_is_typed_and_frozen():
    loaded = config.load(None)
    assert loaded.node.workers == loaded["node"]["workers"] == 2
    assert loaded.handlers.embed.dct.step == 10.0 and loaded.pipeline.handlers[0] == "collect"
    with pytest.raises(ValueError, match="frozen"):
        loaded.node.workers = 3
    assert config.parse({"node": {"workers": 4}}).node.workers == 4
