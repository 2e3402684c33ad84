"""Shared fixtures: keys, the default pipeline, and the real images of pydicom-data."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest

from stegonode.codecs import keys as keyfiles
from stegonode.handlers.pipeline import build_pipeline
from stegonode.node import config as node_config

from images import image_path

@pytest.fixture(scope="session")
def key_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("keys")
    keyfiles.generate(directory)
    return directory


@pytest.fixture(scope="session")
def node_keys(key_dir):
    return keyfiles.load_node_keys(key_dir / "node.keys")


@pytest.fixture(scope="session")
def peer_keys(key_dir):
    return keyfiles.load_peer_keys(key_dir / "peer.keys")


@pytest.fixture(scope="session")
def pipeline(node_keys):
    config = node_config.load(None)
    return build_pipeline(config["pipeline"]["handlers"], config["handlers"], node_keys)


@dataclass
class Protected:
    """An original image, its protected version written to disk, and what protect reported."""

    name: str
    original: pydicom.Dataset
    cover_pixels: np.ndarray
    cover_foreground: np.ndarray
    path: Path
    report: dict

    def read(self) -> pydicom.Dataset:
        return pydicom.dcmread(self.path)


@pytest.fixture(scope="session")
def protect_image(pipeline, tmp_path_factory):
    """Protect a named image once per session (protection is deterministic enough to share)."""
    out = tmp_path_factory.mktemp("protected")
    cache: dict[str, Protected] = {}

    def protect(name: str) -> Protected:
        if name not in cache:
            from stegonode.handlers.pixels import read_pixels

            original = pydicom.dcmread(image_path(name))
            ds = copy.deepcopy(original)
            cover = read_pixels(ds).copy()
            instance = pipeline.protect(ds)
            path = out / name
            ds.save_as(path, enforce_file_format=True)
            cache[name] = Protected(name, original, cover, instance.foreground, path, instance.report)
        return cache[name]

    return protect


