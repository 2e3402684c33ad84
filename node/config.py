"""node.toml: the admin's one config file, read over embedded defaults and validated.

Every key has a default here, so the node runs without a config file; the shipped node.toml
documents each key with the same values. A wrong key or value stops start-up with a message
naming the key and what is wrong.
"""

from __future__ import annotations

import copy
import math
import tomllib
from pathlib import Path
from typing import Any

from stegonode.codecs.errors import ConfigError
from stegonode.handlers.pipeline import DEFAULT_ORDER, check_pipeline
from stegonode.handlers.seal import CARRIERS, CORE_ATTRIBUTES

from .index import database_url

DEFAULTS: dict[str, Any] = {
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
        "acse_timeout": 5.0,
        "idle_timeout": 30.0,
        "dimse_timeout": 30.0,
        "accept_any_called_ae_title": False,
        "workers": 2,
        "lease_seconds": 30.0,
        "max_attempts": 3,
        "keep_originals": False,
        "log_level": "INFO",
        "seg": False,
        "seg_stable_seconds": 10.0,
        "tls": {"certificate": "", "private_key": "", "ca_certificates": ""},
    },
    "peers": [],
    "pipeline": {"handlers": list(DEFAULT_ORDER), "carriers": list(CARRIERS)},
    "handlers": {
        "collect": {"extra_attributes": []},
        "seal": {"qr_error_correction": "L", "core_attributes": list(CORE_ATTRIBUTES)},
        "segment": {
            "segmenter": "maskrcnn",
            "validated_modalities": ["CT", "MR", "CR", "DX"],
            "other_modalities": "padding",
            "margin": 6,
        },
        "embed": {
            "codec": "dct",
            "dct": {
                "step": 10.0,
                "min_coefficients": 3,
                "target_redundancy": 6.0,
                "min_redundancy": 2.0,
            },
            "paper": {"beta": 8, "alpha": 0.02},
            "deep": {"min_copies": 1, "max_copies": 8, "module_pixels": 2},
        },
        "deidentify": {"allow_burned_in_annotation": False},
        "encrypt": {"cipher": "aes-gcm"},
    },
    "web": {
        "enabled": True,
        "bind_address": "127.0.0.1",
        "port": 8080,
        "login": "none",
        "password_hash": "",
        "max_upload_mb": 256,
    },
}
SEGMENTER_CHOICES = ("classical", "maskrcnn", "padding")
# Inclusive numeric ranges (None: no upper bound). Timeouts are seconds.
_RANGES: dict[str, tuple[float, float | None]] = {
    "node.port": (1, 65535),
    "node.max_associations": (1, 1000),
    "node.max_pending_per_address": (1, 1000),
    "node.acse_timeout": (0.1, 600),
    "node.idle_timeout": (0.1, 86400),
    "node.dimse_timeout": (0.1, 86400),
    "node.workers": (0, None),
    "node.lease_seconds": (1, 86400),
    "node.max_attempts": (1, None),
    "node.seg_stable_seconds": (0, 86400),
    "handlers.segment.margin": (0, 256),
    "handlers.embed.dct.step": (0.5, 1000),
    "handlers.embed.dct.min_coefficients": (1, 15),
    "handlers.embed.dct.target_redundancy": (1, 1000),
    "handlers.embed.dct.min_redundancy": (1, 1000),
    "handlers.embed.paper.beta": (1, 100000),
    "handlers.embed.paper.alpha": (0, 0.49),
    "handlers.embed.deep.min_copies": (1, 1000),
    "handlers.embed.deep.max_copies": (1, 1000),
    "web.port": (1, 65535),
    "web.max_upload_mb": (1, 65536),
}
PEER_KEYS = {"ae_title": str, "host": str, "port": int}
_CHOICES = {
    "node.allowed_callers": ("loopback", "peers", "any"),
    "node.log_level": ("DEBUG", "INFO", "WARNING", "ERROR"),
    "handlers.seal.qr_error_correction": ("L", "M", "Q", "H"),
    "handlers.embed.codec": ("dct", "paper", "deep"),
    "handlers.segment.segmenter": SEGMENTER_CHOICES,
    "handlers.segment.other_modalities": (*SEGMENTER_CHOICES, "none"),
    "handlers.encrypt.cipher": ("aes-gcm", "chaos"),
    "web.login": ("none", "password", "token"),
}


def load(path: Path | None) -> dict[str, Any]:
    """Defaults overlaid with ``path`` (if given), validated."""
    config = copy.deepcopy(DEFAULTS)
    if path is None:
        return config
    try:
        document = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    _merge(config, document, prefix="")
    for key, allowed in _CHOICES.items():
        value = _get(config, key)
        if value not in allowed:
            raise ConfigError(f"{path}: {key} = {value!r}; choose one of {', '.join(allowed)}")
    _check_ranges(config, path)
    try:
        check_pipeline(config["pipeline"]["handlers"], config["handlers"], config["pipeline"]["carriers"])
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return config


def _check_ranges(config: dict[str, Any], path: Path) -> None:
    node = config["node"]
    if len(node["ae_title"].strip()) not in range(1, 17):
        raise ConfigError(f"{path}: node.ae_title must be 1 to 16 characters")
    for key, (low, high) in _RANGES.items():
        value = _get(config, key)
        if not (math.isfinite(value) and low <= value and (high is None or value <= high)):
            bound = f">= {low}" if high is None else f"within {low}..{high}"
            raise ConfigError(f"{path}: {key} = {value!r}: must be {bound}")
    for low_key, high_key in (("handlers.embed.dct.min_redundancy", "handlers.embed.dct.target_redundancy"),
                              ("handlers.embed.deep.min_copies", "handlers.embed.deep.max_copies")):
        if _get(config, low_key) > _get(config, high_key):
            raise ConfigError(f"{path}: {low_key} must not exceed {high_key}")
    if node["database"]:
        try:
            database_url(node["database"])
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    tls = node["tls"]
    if bool(tls["certificate"]) != bool(tls["private_key"]):
        raise ConfigError(f"{path}: node.tls needs both certificate and private_key, or neither")
    modalities = config["handlers"]["segment"]["validated_modalities"]
    if not all(isinstance(m, str) and m.isalnum() and m.isupper() and len(m) <= 16 for m in modalities):
        raise ConfigError(f"{path}: handlers.segment.validated_modalities must list modality codes "
                          "such as \"CT\" (upper case, at most 16 characters)")
    titles = [peer["ae_title"] for peer in config["peers"]]
    if len(set(titles)) != len(titles):
        raise ConfigError(f"{path}: peers: each ae_title may appear once")


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
