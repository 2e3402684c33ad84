"""node.toml: the admin's one config file, read over embedded defaults and validated.

Every key has a default here, so the node runs without a config file; the shipped node.toml
documents each key with the same values. A wrong key or value stops start-up with a message
naming the key and what is wrong.
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

from stegonode.errors import ConfigError
from stegonode.handlers.base import check_choice, check_range
from stegonode.handlers.compression import DEFAULT_STORAGE, STORAGE_SYNTAXES
from stegonode.handlers.pipeline import DEFAULT_ORDER, check_pipeline
from stegonode.handlers.registry import HANDLERS, SEGMENTERS
from stegonode.handlers.seal import CARRIERS

from . import audit
from .index import database_url

_BASE: dict[str, Any] = {
    "node": {
        "ae_title": "STEGONODE",
        "bind_address": "0.0.0.0",
        "port": 11112,
        "data_dir": "stegonode-data",
        "keys": "",
        "database": "",
        "allowed_callers": "loopback",
        "max_associations": 16,
        "max_pending_per_address": 4,
        "max_associations_per_address": 0,  # 0: half of max_associations
        "max_associations_per_ae": 0,  # 0: half of max_associations
        "acse_timeout": 5.0,
        "idle_timeout": 30.0,
        "dimse_timeout": 30.0,
        "accept_any_called_ae_title": False,
        "workers": 2,
        "receivers": 0,  # processes receiving on the port (node/receivers.py); 0: one per core, at most 4
        "lease_seconds": 30.0,
        "max_attempts": 3,
        "keep_originals": False,
        "log_level": "INFO",
        "seg": False,
        "seg_stable_seconds": 10.0,
        "max_object_mb": 1024,
        "tls": {"certificate": "", "private_key": "", "ca_certificates": ""},
    },
    "orthanc": {  # stegonode inside Orthanc (orthanc-config): see README "Run inside Orthanc"
        "mode": "callback",
        "queue_dir": "",  # queue mode's received/quarantined objects; empty: DIR/queue of orthanc-config
    },
    "peers": [],
    "pipeline": {"handlers": list(DEFAULT_ORDER), "carriers": list(CARRIERS)},
    "handlers": {},  # each registered handler's table: see defaults()
    "storage": {"transfer_syntax": DEFAULT_STORAGE},
    "web": {
        "enabled": True,
        "bind_address": "127.0.0.1",
        "port": 8080,
        "login": "none",
        "password_hash": "",
        "max_upload_mb": 256,
        "login_delay_seconds": 1.0,
        "login_lock_after": 10,
        "login_lock_seconds": 300.0,
    },
    "audit": {"repository": "", "file": "", "ca_certificates": "", "source_id": ""},
}
SEGMENTER_CHOICES = tuple(SEGMENTERS)  # the built-in ones: node.toml's choices come from the registry
# Inclusive numeric ranges of node.* and web.* (None: no upper bound). Timeouts are seconds. Each
# handler and codec declares its own (stegonode.handlers.registry, stegonode.codecs.registry).
_RANGES: dict[str, tuple[float, float | None]] = {
    "node.port": (1, 65535),
    "node.max_associations": (1, 1000),
    "node.max_pending_per_address": (1, 1000),
    "node.max_associations_per_address": (0, 1000),
    "node.max_associations_per_ae": (0, 1000),
    "node.acse_timeout": (0.1, 600),
    "node.idle_timeout": (0.1, 86400),
    "node.dimse_timeout": (0.1, 86400),
    "node.workers": (0, None),
    "node.receivers": (0, 64),
    "node.lease_seconds": (1, 86400),
    "node.max_attempts": (1, None),
    "node.seg_stable_seconds": (0, 86400),
    "node.max_object_mb": (1, 1024),
    "web.port": (1, 65535),
    "web.max_upload_mb": (1, 65536),
    "web.login_delay_seconds": (0, 3600),
    "web.login_lock_after": (1, 1000000),
    "web.login_lock_seconds": (0, 86400 * 365),
}
PEER_KEYS = {"ae_title": str, "host": str, "port": int}
_CHOICES = {
    "node.allowed_callers": ("loopback", "peers", "any"),
    "node.log_level": ("DEBUG", "INFO", "WARNING", "ERROR"),
    "web.login": ("none", "password", "token"),
    "storage.transfer_syntax": tuple(STORAGE_SYNTAXES),
    "orthanc.mode": ("callback", "queue"),
}


def defaults() -> dict[str, Any]:
    """The embedded defaults: node, peers, pipeline and web here, ``[handlers.*]`` from each
    registered handler (so a handler registered since import has its table too)."""
    config = copy.deepcopy(_BASE)
    config["handlers"] = {name: HANDLERS[name].table_defaults() for name in HANDLERS}
    return config


def load(path: Path | None) -> dict[str, Any]:
    """Defaults overlaid with ``path`` (if given), validated: the one validation of node.toml
    (everything but the keys, which the node checks before it listens; its workers and the
    Orthanc plugin only build what was validated)."""
    config = defaults()
    if path is None:
        return config
    try:
        document = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    _merge(config, document, prefix="")
    try:
        for key, allowed in _CHOICES.items():
            check_choice(key, _get(config, key), allowed)
        _check_ranges(config)
        check_pipeline(config["pipeline"]["handlers"], config["handlers"], config["pipeline"]["carriers"])
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return config


def _check_ranges(config: dict[str, Any]) -> None:
    node = config["node"]
    if len(node["ae_title"].strip()) not in range(1, 17):
        raise ConfigError("node.ae_title must be 1 to 16 characters")
    for key, (low, high) in _RANGES.items():
        check_range(key, _get(config, key), low, high)
    if node["database"]:
        database_url(node["database"])
    tls = node["tls"]
    if bool(tls["certificate"]) != bool(tls["private_key"]):
        raise ConfigError("node.tls needs both certificate and private_key, or neither")
    audit.check(config["audit"])
    titles = [peer["ae_title"] for peer in config["peers"]]
    if len(set(titles)) != len(titles):
        raise ConfigError("peers: each ae_title may appear once")


def _check_peers(value: Any) -> list[dict[str, Any]]:
    """``[[peers]]``: a list of tables with exactly ae_title, host and port."""
    if not isinstance(value, list):
        raise ConfigError("node.toml: peers must be an array of tables ([[peers]])")
    for number, peer in enumerate(value, start=1):
        if not isinstance(peer, dict):
            raise ConfigError(f"node.toml: peers entry {number} must be a table")
        for key, kind in PEER_KEYS.items():
            if not isinstance(peer.get(key), kind) or isinstance(peer.get(key), bool):
                raise ConfigError(f"node.toml: peers entry {number} needs {key} ({kind.__name__})")
        unknown = sorted(set(peer) - set(PEER_KEYS))
        if unknown:
            raise ConfigError(f"node.toml: peers entry {number}: unknown key {unknown[0]}")
    return value


def _get(config: dict, dotted: str) -> Any:
    for part in dotted.split("."):
        config = config[part]
    return config


def _merge(base: dict, overlay: dict, prefix: str) -> None:
    for key, value in overlay.items():
        name = f"{prefix}{key}"
        if key not in base:
            raise ConfigError(f"node.toml: unknown key {name}")
        default = base[key]
        if name == "peers":
            base[key] = _check_peers(value)
        elif isinstance(default, dict):
            if not isinstance(value, dict):
                raise ConfigError(f"node.toml: {name} must be a table")
            _merge(default, value, prefix=f"{name}.")
        elif not _same_type(default, value):
            raise ConfigError(
                f"node.toml: {name} must be {type(default).__name__}, got {type(value).__name__}"
            )
        else:
            base[key] = value


def _same_type(default: Any, value: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


DEFAULTS: dict[str, Any] = defaults()  # the built-in handlers' (what the shipped node.toml documents)
