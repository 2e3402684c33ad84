"""Stored objects in an S3-compatible object store: ``[storage] url = "s3://BUCKET/PREFIX"``.

The same areas as the data directory, as keys under the prefix (docs/object-store.md)::

    PREFIX/inbox/<token>.dcm            received bytes, waiting for a worker
    PREFIX/stored/<uid>.dcm             protected objects: what the node serves
    PREFIX/originals/<uid>.dcm          received originals, only with node.keep_originals
    PREFIX/quarantine/<token>.dcm       objects whose processing failed for good
    PREFIX/tmp/<host>.<pid>.<random>.part   protected objects staged by a worker

What replaces the data directory's guarantees:

* atomic: an S3 PUT (and a server-side copy) makes the whole object visible at once or not at
  all, so the temporary file and the rename of the directory are not needed: an object is
  written straight under its key, and a crashed PUT leaves nothing;
* durable: a PUT returns success only once the store holds the object (as its own replication
  and write policy define; see the page on configuring SeaweedFS or MinIO for fsync);
* publish: a worker PUTs its protected object under ``tmp/``; the pool copies it (server side)
  to ``stored/<uid>.dcm`` inside the index transaction that records it, as the directory's
  rename was, then deletes the staged key;
* sweep: staged keys whose writer process is gone (this host) or that are a day old (any
  host) are deleted when a host starts, as the directory's tmp/ files are.

Every failure to reach the store is an :class:`ObjectStoreError` (an OSError, as a full disk
would be): a C-STORE then gets Out of Resources (0xA700), a job is retried. Received objects
are read into memory, never onto another host's disk; a stored (protected) object that
pynetdicom sends is spooled through a temporary file of the host's own data directory
(``spool/``), streamed in chunks, and deleted once sent.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

from botocore.exceptions import BotoCoreError, ClientError

from stegonode.errors import ConfigError

from .storage import HOST, STALE_TMP_S, process_alive

# A store that does not answer must not hold a C-STORE for minutes: a few quick tries, then
# Out of Resources (the sender retries later).
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 30.0
ATTEMPTS = 3
CONNECTIONS = 32  # associations and worker threads of one process share the client
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
MISSING = {"NoSuchKey", "404", "NotFound"}


class ObjectStoreError(OSError):
    """The object store cannot be reached or refused a request (the message names its code)."""


@dataclass(frozen=True)
class S3Settings:
    """node.toml's [storage] keys for an object store (credentials: node.toml, else boto3's
    own chain: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL, AWS_REGION, ...)."""

    bucket: str
    prefix: str  # "" or ending in "/"
    endpoint: str | None
    region: str | None
    access_key_id: str | None
    secret_access_key: str | None = None

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def __repr__(self) -> str:  # never the secret
        return f"S3Settings({self.url!r}, endpoint={self.endpoint!r})"


def settings_of(storage: Any) -> S3Settings | None:
    """The object store node.toml's [storage] table configures, or None (the data directory).
    The one place [storage]'s url, endpoint, region and credentials are read."""
    url = storage.get("url", "")
    if not url:
        return None
    match = re.fullmatch(r"s3://([^/]+)/?(.*)", url)
    if match is None or not BUCKET.match(match.group(1)):
        raise ConfigError(f"storage.url = {url!r}: not s3://BUCKET/PREFIX (a bucket name of 3 to 63 "
                          "lowercase letters, digits, dots and hyphens)")
    prefix = match.group(2).strip("/")
    key_id, secret = storage.get("access_key_id", ""), storage.get("secret_access_key", "")
    if bool(key_id) != bool(secret):
        raise ConfigError("storage needs both access_key_id and secret_access_key, or neither "
                          "(then the AWS environment variables or files give them)")
    return S3Settings(match.group(1), f"{prefix}/" if prefix else "", storage.get("endpoint") or None,
                      storage.get("region") or None, key_id or None, secret or None)


@contextmanager
def _requests(what: str) -> Iterator[None]:
    """botocore's exceptions as OSErrors: FileNotFoundError for a missing object, else
    ObjectStoreError with the error code or the exception type (never a URL or a secret)."""
    try:
        yield
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", "unknown"))
        if code in MISSING:
            raise FileNotFoundError(errno.ENOENT, f"object store: no such object ({what})") from None
        raise ObjectStoreError(errno.EIO, f"object store refused {what} ({code})") from None
    except BotoCoreError as exc:
        raise ObjectStoreError(errno.EIO, f"object store unreachable ({type(exc).__name__})") from None


class S3Store:
    """:class:`~stegonode.node.storage.ObjectStore` on an S3-compatible object store; ``data_dir``
    is this host's own directory (the spool of objects being sent)."""

    def __init__(self, settings: S3Settings, data_dir: Path) -> None:
        import boto3  # here: about 0.2 s, which a node on its data directory does not pay
        from botocore.config import Config

        self.settings = settings
        self.bucket = settings.bucket
        self.prefix = settings.prefix
        self.spool = Path(data_dir) / "spool"
        config = Config(connect_timeout=CONNECT_TIMEOUT_S, read_timeout=READ_TIMEOUT_S,
                        retries={"max_attempts": ATTEMPTS, "mode": "standard"},
                        max_pool_connections=CONNECTIONS,
                        s3={"addressing_style": "path"} if settings.endpoint else None)
        self.client = boto3.session.Session().client(
            "s3", endpoint_url=settings.endpoint, region_name=settings.region,
            aws_access_key_id=settings.access_key_id, aws_secret_access_key=settings.secret_access_key,
            config=config)

    @classmethod
    def create(cls, settings: S3Settings, data_dir: Path) -> S3Store:
        """Open the store (its bucket must exist and answer) and sweep what crashed processes
        of this host left: staged keys, spooled files."""
        store = cls(settings, data_dir)
        try:
            with _requests("the bucket"):
                store.client.head_bucket(Bucket=store.bucket)
        except OSError as exc:
            raise ConfigError(f"storage.url {settings.url}: {exc.strerror}") from None
        store.spool.mkdir(parents=True, exist_ok=True)
        store.sweep()
        return store

    def sweep(self) -> None:
        """Delete staged keys whose writer is gone (a process of this host that no longer runs,
        or any key a day old: another host's crash), and this host's stale spooled files."""
        cutoff = time.time() - STALE_TMP_S
        for key, modified in self._list("tmp"):
            writer = key.rsplit("/", 1)[-1].removesuffix(".part").rsplit(".", 2)  # host, pid, random
            gone = len(writer) == 3 and writer[0] == HOST and writer[1].isdigit() \
                and not process_alive(int(writer[1]))
            if gone or modified < cutoff:
                self.delete(key)
        for leftover in self.spool.iterdir():
            pid = leftover.name.split(".", 1)[0]
            if not (pid.isdigit() and process_alive(int(pid))):
                leftover.unlink(missing_ok=True)

    # -- keys --------------------------------------------------------------------------------

    def key(self, area: str, name: str) -> str:
        return f"{area}/{name}.dcm"

    def _object(self, key: str) -> str:
        return self.prefix + key

    def location(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._object(key)}"

    def _list(self, area: str) -> Iterator[tuple[str, float]]:
        """(key, last modified) of every object in ``area``."""
        with _requests(f"a listing of {area}/"):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._object(f"{area}/"))
            for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"][len(self.prefix):], item["LastModified"].timestamp()

    def names(self, area: str) -> list[str]:
        return [key[len(area) + 1:-4] for key, _ in self._list(area) if key.endswith(".dcm")]

    # -- writing -----------------------------------------------------------------------------

    def _put(self, key: str, data: bytes) -> str:
        with _requests(f"a write to {key.split('/', 1)[0]}/"):
            self.client.put_object(Bucket=self.bucket, Key=self._object(key), Body=data)
        return key

    def write(self, area: str, name: str, data: bytes) -> str:
        """One PUT: the object appears whole under its key once the store holds it."""
        return self._put(self.key(area, name), data)

    def stage(self, data: bytes) -> str:
        return self._put(f"tmp/{HOST}.{os.getpid()}.{secrets.token_hex(8)}.part", data)

    def move(self, source: str, area: str, name: str) -> str:
        """A server-side copy (atomic: the old object or the new one), then the source goes."""
        key = self.key(area, name)
        with _requests(f"a copy to {area}/"):
            self.client.copy_object(Bucket=self.bucket, Key=self._object(key),
                                    CopySource={"Bucket": self.bucket, "Key": self._object(source)})
        self.delete(source)
        return key

    def discard(self, source: str) -> None:
        self.delete(source)

    def relocate(self, area: str, name: str, to_area: str, to_name: str) -> str:
        return self.move(self.key(area, name), to_area, to_name)

    def delete(self, key: str) -> None:
        with _requests(f"a delete in {key.split('/', 1)[0]}/"):
            self.client.delete_object(Bucket=self.bucket, Key=self._object(key))

    # -- reading -----------------------------------------------------------------------------

    def _get(self, key: str) -> Any:
        with _requests(f"a read of {key.split('/', 1)[0]}/"):
            return self.client.get_object(Bucket=self.bucket, Key=self._object(key))["Body"]

    def read(self, key: str) -> bytes:
        body = self._get(key)
        with _requests("a read"):
            try:
                return cast(bytes, body.read())
            finally:
                body.close()

    def open(self, key: str) -> BinaryIO:
        return cast(BinaryIO, self._get(key))

    @contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        """Stream the object into a spool file of this host, deleted when the context ends."""
        self.spool.mkdir(parents=True, exist_ok=True)
        spooled = self.spool / f"{os.getpid()}.{secrets.token_hex(8)}.dcm"
        try:
            body = self._get(key)
            with _requests("a read"), open(spooled, "wb") as handle:
                try:
                    shutil.copyfileobj(body, handle, 1 << 20)
                finally:
                    body.close()
            yield spooled
        finally:
            spooled.unlink(missing_ok=True)
