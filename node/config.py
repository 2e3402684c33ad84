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

from stegonode.codecs.errors import ConfigError
from stegonode.handlers.pipeline import DEFAULT_ORDER

DEFAULTS: dict[str, Any] = {
    "node": {
        "keys": "stegonode-data/keys/node.keys",
    },
    "pipeline": {"handlers": list(DEFAULT_ORDER)},
    "handlers": {
        "collect": {"extra_attributes": []},
        "seal": {"qr_error_correction": "L"},
        "segment": {"segmenter": "classical", "margin": 6},
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
        "deidentify": {},
    },
}
_CHOICES = {
    "handlers.seal.qr_error_correction": ("L", "M", "Q", "H"),
    "handlers.embed.codec": ("dct", "paper", "deep"),
    "handlers.segment.segmenter": ("classical",),
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
    if config["handlers"]["segment"]["margin"] < 0:
        raise ConfigError(f"{path}: handlers.segment.margin must be >= 0")
    return config


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
        if isinstance(default, dict):
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
