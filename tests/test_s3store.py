"""The object store back end (node/s3store.py) against a real S3 server (SeaweedFS): the same
interface as the data directory, atomic publishing, the sweep of staged keys a dead process
left, credentials from node.toml or the AWS environment, and failures as one-line OSErrors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from stegonode.errors import ConfigError
from stegonode.node import config as node_config
from stegonode.node.s3store import ObjectStoreError, S3Store, settings_of
from stegonode.node.storage import HOST, Storage, open_store

from nodes import STEGONODE, free_port


@pytest.fixture
def store(seaweed, tmp_path) -> S3Store:
    config = {"storage": seaweed.storage(seaweed.bucket(), "site/a")}
    opened = open_store(config, tmp_path / "host")
    assert isinstance(opened, S3Store)
    return opened


def test_the_areas_as_keys_under_the_prefix(store, seaweed):
    key = store.write("inbox", "token1", b"received bytes")
    assert key == "inbox/token1.dcm" and store.names("inbox") == ["token1"]
    assert store.read(key) == b"received bytes"
    assert store.location(key) == f"s3://{store.bucket}/site/a/inbox/token1.dcm"
    with store.open(key) as stream:
        assert stream.read() == b"received bytes"
    with store.local_copy(key) as path:  # a spool file of this host, gone after
        assert path.read_bytes() == b"received bytes" and path.parent == store.spool
    assert not path.exists()

    assert store.relocate("inbox", "token1", "quarantine", "token1") == "quarantine/token1.dcm"
    assert store.names("inbox") == [] and store.names("quarantine") == ["token1"]
    store.delete("quarantine/token1.dcm")
    store.delete("quarantine/token1.dcm")  # gone already: nothing
    assert seaweed.keys(store.bucket, "site/") == []
    with pytest.raises(FileNotFoundError):
        store.read("stored/none.dcm")
    with pytest.raises(FileNotFoundError):
        store.relocate("inbox", "none", "quarantine", "none")


def test_a_staged_object_is_invisible_until_moved_and_the_move_replaces_whole(store, seaweed):
    store.write("stored", "1.2.3", b"old copy")
    staged = store.stage(b"new copy")
    assert staged.startswith(f"tmp/{HOST}.") and store.names("stored") == ["1.2.3"]
    assert store.read("stored/1.2.3.dcm") == b"old copy"
    assert store.move(staged, "stored", "1.2.3") == "stored/1.2.3.dcm"
    assert store.read("stored/1.2.3.dcm") == b"new copy"
    assert [key for key in seaweed.keys(store.bucket, "site/a/") if "/tmp/" in key] == []
    discarded = store.stage(b"never published")
    store.discard(discarded)
    assert store.names("stored") == ["1.2.3"] and seaweed.keys(store.bucket, "site/a/tmp/") == []


def test_a_start_sweeps_what_dead_processes_staged(store, seaweed, tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # a process of this host that has ended
    dead = f"tmp/{HOST}.{child.pid}.0123456789abcdef.part"
    store.client.put_object(Bucket=store.bucket, Key=f"site/a/{dead}", Body=b"half a job")
    alive = store.stage(b"this process is still writing")
    other_host = "tmp/elsewhere.1.0123456789abcdef.part"  # another host's, fresh: its own start sweeps it
    store.client.put_object(Bucket=store.bucket, Key=f"site/a/{other_host}", Body=b"theirs")
    spooled = store.spool / f"{child.pid}.0123456789abcdef.dcm"
    spooled.write_bytes(b"a send cut short")
    S3Store.create(store.settings, tmp_path / "host")
    left = {key.removeprefix("site/a/") for key in seaweed.keys(store.bucket, "site/a/")}
    assert left == {alive, other_host} and not spooled.exists()


def test_credentials_and_endpoint_from_the_aws_environment(seaweed, tmp_path, monkeypatch):
    bucket = seaweed.bucket()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-environment")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-environment-secret")
    monkeypatch.setenv("AWS_ENDPOINT_URL", seaweed.endpoint)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    settings = settings_of({"url": f"s3://{bucket}"})
    assert settings is not None and settings.endpoint is None and settings.access_key_id is None
    store = S3Store.create(settings, tmp_path)
    assert store.write("stored", "9.9", b"x") == "stored/9.9.dcm"
    assert seaweed.keys(bucket) == ["stored/9.9.dcm"]  # no prefix: keys at the bucket's root


def test_node_toml_storage_url_is_checked(tmp_path):
    config = tmp_path / "node.toml"
    for table, message in (
        ('url = "http://bucket/prefix"', "not s3://BUCKET/PREFIX"),
        ('url = "s3://Bad_Bucket/prefix"', "not s3://BUCKET/PREFIX"),
        ('url = "s3://bucket/p"\naccess_key_id = "AKIA"', "both access_key_id and secret_access_key"),
    ):
        config.write_text(f"[storage]\n{table}\n")
        with pytest.raises(ConfigError, match=message):
            node_config.load(config)
    config.write_text('[storage]\nurl = "s3://bucket/a/b/"\nsecret_access_key = "wJalrXUtnFEMI"\n'
                      'access_key_id = "k"\n')
    settings = settings_of(node_config.load(config)["storage"])
    assert settings is not None and (settings.bucket, settings.prefix) == ("bucket", "a/b/")
    assert settings.secret_access_key == "wJalrXUtnFEMI" and "wJalrXUtnFEMI" not in repr(settings)
    assert isinstance(open_store(node_config.load(None), tmp_path / "data"), Storage)  # the default


def test_an_unreachable_store_is_a_one_line_error(tmp_path):
    closed = free_port()  # nothing listens there
    settings = settings_of({"url": "s3://bucket/p", "endpoint": f"http://127.0.0.1:{closed}",
                            "access_key_id": "k", "secret_access_key": "secret"})
    assert settings is not None
    with pytest.raises(ConfigError) as refused:
        S3Store.create(settings, tmp_path)
    assert str(refused.value) == "storage.url s3://bucket/p/: object store unreachable (EndpointConnectionError)"
    with pytest.raises(ObjectStoreError) as failed:  # an OSError: Out of Resources, a retried job
        S3Store(settings, tmp_path).write("inbox", "t", b"x")
    assert isinstance(failed.value, OSError) and "secret" not in str(failed.value)


def test_serve_and_worker_stop_with_one_line_when_the_store_does_not_answer(tmp_path):
    closed = free_port()
    config = tmp_path / "node.toml"
    keys = tmp_path / "keys"
    subprocess.run([STEGONODE, "keygen", str(keys)], check=True, capture_output=True)
    config.write_text(f'[node]\ndata_dir = "{tmp_path / "data"}"\nkeys = "{keys / "node.keys"}"\n'
                      f'[storage]\nurl = "s3://bucket/prefix"\nendpoint = "http://127.0.0.1:{closed}"\n'
                      'access_key_id = "k"\nsecret_access_key = "wJalrXUtnFEMI"\n')
    for command in ("serve", "worker"):
        result = subprocess.run([STEGONODE, command, "--config", str(config)], capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert "storage.url s3://bucket/prefix/: object store unreachable (EndpointConnectionError)" in result.stderr
        assert "wJalrXUtnFEMI" not in result.stderr
