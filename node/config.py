"""node.toml: the admin's one config file, read over embedded defaults, validated once, typed.

:func:`load` returns a :class:`Config`: frozen pydantic models, one class per node.toml section
(``[node]`` :class:`NodeSettings`, ``[orthanc]``, ``[[peers]]``, ``[pipeline]``, ``[handlers.*]``
from each registered handler, ``[storage]``, ``[web]``, ``[audit]``, ``[dicomweb]``). Every key has a default,
so the node runs without a config file; the shipped node.toml documents each key with the same
values. Types, ranges, choices and the rules across keys are declared on the models; a wrong key
or value stops start-up with one line naming the key and what is wrong. Nothing downstream checks
again. ``config.node.workers`` reads a key (``config["node"]["workers"]`` too).

A new section is one more model class here and one more field of :class:`Config`; a new key is
one more field of its section's model.
"""

from __future__ import annotations

import functools
import ipaddress
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError, create_model, field_validator, model_validator

from stegonode.codecs.settings import Choice, Range, Settings, config_error
from stegonode.errors import ConfigError
from stegonode.handlers.compression import DEFAULT_STORAGE, STORAGE_SYNTAXES
from stegonode.handlers.settings import PipelineSettings, handlers_model
from stegonode.segmenters.registry import SEGMENTERS

from . import audit, s3store
from .index import database_url

__all__ = ["Config", "NodeSettings", "TlsSettings", "OrthancSettings", "PeerSettings", "StorageSettings",
           "WebSettings", "AuditSettings", "DicomwebSettings", "PipelineSettings", "load", "parse", "defaults", "DEFAULTS"]

SEGMENTER_CHOICES = tuple(SEGMENTERS)  # the built-in ones: node.toml's choices come from the registry
Seconds = float  # timeouts and periods are seconds


class TlsSettings(Settings):
    """``[node.tls]``: TLS for DICOM associations, with both certificate and private key, or off."""

    certificate: str = ""
    private_key: str = ""
    ca_certificates: str = ""

    @model_validator(mode="after")
    def _pair(self) -> TlsSettings:
        if bool(self.certificate) != bool(self.private_key):
            raise ConfigError("node.tls needs both certificate and private_key, or neither")
        return self


class NodeSettings(Settings):
    """``[node]``: the DICOM node, its data, its index, its worker pool."""

    ae_title: str = "STEGONODE"
    bind_address: str = "0.0.0.0"
    port: Annotated[int, Range(1, 65535)] = 11112
    data_dir: str = "stegonode-data"
    keys: str = ""
    database: str = ""
    allowed_callers: Annotated[str, Choice("loopback", "peers", "any")] = "loopback"
    max_associations: Annotated[int, Range(1, 1000)] = 16
    max_pending_per_address: Annotated[int, Range(1, 1000)] = 4
    max_associations_per_address: Annotated[int, Range(0, 1000)] = 0  # 0: half of max_associations
    max_associations_per_ae: Annotated[int, Range(0, 1000)] = 0  # 0: half of max_associations
    acse_timeout: Annotated[Seconds, Range(0.1, 600)] = 5.0
    idle_timeout: Annotated[Seconds, Range(0.1, 86400)] = 30.0
    dimse_timeout: Annotated[Seconds, Range(0.1, 86400)] = 30.0
    accept_any_called_ae_title: bool = False
    workers: Annotated[int, Range(0)] = 2
    receivers: Annotated[int, Range(0, 64)] = 0  # processes receiving on the port (node/receivers.py); 0: one per core, at most 4
    lease_seconds: Annotated[Seconds, Range(1, 86400)] = 30.0
    max_attempts: Annotated[int, Range(1)] = 3
    keep_originals: bool = False
    log_level: Annotated[str, Choice("DEBUG", "INFO", "WARNING", "ERROR")] = "INFO"
    seg: bool = False
    seg_stable_seconds: Annotated[Seconds, Range(0, 86400)] = 10.0
    max_object_mb: Annotated[int, Range(1, 1024)] = 1024
    tls: TlsSettings = Field(default_factory=TlsSettings)

    @field_validator("ae_title")
    @classmethod
    def _ae_title(cls, value: str) -> str:
        if len(value.strip()) not in range(1, 17):
            raise ConfigError("node.ae_title must be 1 to 16 characters")
        return value

    @field_validator("database")
    @classmethod
    def _database(cls, value: str) -> str:
        if value:
            database_url(value)
        return value


class OrthancSettings(Settings):
    """``[orthanc]``: stegonode inside Orthanc (orthanc-config): see README "Run inside Orthanc"."""

    mode: Annotated[str, Choice("callback", "queue")] = "callback"
    queue_dir: str = ""  # queue mode's received/quarantined objects; empty: DIR/queue of orthanc-config


class PeerSettings(Settings):
    """One ``[[peers]]`` entry: a DICOM node this one queries, retrieves from and sends to."""

    ae_title: str
    host: str
    port: int


class StorageSettings(Settings):
    """``[storage]``: the transfer syntax stored objects are encoded in (lossless), and where they
    are: the data directory (``url`` empty) or an S3-compatible object store (docs/object-store.md)."""

    transfer_syntax: Annotated[str, Choice(*STORAGE_SYNTAXES)] = DEFAULT_STORAGE
    url: str = ""  # s3://BUCKET/PREFIX
    endpoint: str = ""
    region: str = ""
    access_key_id: str = ""
    secret_access_key: str = Field(default="", repr=False)

    @model_validator(mode="after")
    def _object_store(self) -> StorageSettings:
        s3store.settings_of(self)  # the one reading of url, endpoint, region and credentials
        return self


class WebSettings(Settings):
    """``[web]``: the console. It listens beyond loopback only with a login, and a password login
    needs its hash."""

    enabled: bool = True
    bind_address: str = "127.0.0.1"
    port: Annotated[int, Range(1, 65535)] = 8080
    login: Annotated[str, Choice("none", "password", "token")] = "none"
    password_hash: str = ""
    max_upload_mb: Annotated[int, Range(1, 65536)] = 256
    login_delay_seconds: Annotated[Seconds, Range(0, 3600)] = 1.0
    login_lock_after: Annotated[int, Range(1, 1000000)] = 10
    login_lock_seconds: Annotated[Seconds, Range(0, 86400 * 365)] = 300.0

    @model_validator(mode="after")
    def _login(self) -> WebSettings:
        if self.login == "password" and not self.password_hash:
            raise ConfigError('web.login = "password" needs web.password_hash '
                              "(make one with 'stegonode web --hash-password')")
        if self.login == "none" and not is_loopback(self.bind_address):
            raise ConfigError(
                f"web.bind_address = {self.bind_address!r} is beyond loopback and web.login = \"none\": "
                'the console listens there only with a login; set web.login = "password" '
                '(with web.password_hash) or "token", or bind it to 127.0.0.1'
            )
        return self


class AuditSettings(Settings):
    """``[audit]``: where audit messages go (see :mod:`stegonode.node.audit`)."""

    repository: str = ""
    file: str = ""
    ca_certificates: str = ""
    source_id: str = ""

    @model_validator(mode="after")
    def _repository(self) -> AuditSettings:
        if self.repository:
            audit.Repository.parse(self.repository)
        return self


class DicomwebSettings(Settings):
    """``[dicomweb]``: QIDO-RS, WADO-RS, STOW-RS and the OHIF viewer on the console's port
    (docs/dicomweb.md); programs send ``token`` as a bearer token."""

    enabled: bool = True
    token: str = Field(default="", repr=False)
    viewer_dir: str = ""  # empty: build/ohif/<version>/dist, which scripts/setup.sh installs

    @field_validator("token")
    @classmethod
    def _token(cls, value: str) -> str:
        if 0 < len(value) < 24:
            raise ConfigError("dicomweb.token: at least 24 characters (e.g. python3 -c "
                              "'import secrets; print(secrets.token_urlsafe(32))'), or empty")
        return value


class Config(Settings):
    """The whole of node.toml, validated. ``handlers`` is the model of the registered handlers'
    tables (:func:`stegonode.handlers.settings.handlers_model`)."""

    node: NodeSettings = Field(default_factory=NodeSettings)
    orthanc: OrthancSettings = Field(default_factory=OrthancSettings)
    peers: Annotated[tuple[PeerSettings, ...], Field(strict=False)] = ()
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    handlers: Any = None
    storage: StorageSettings = Field(default_factory=StorageSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    dicomweb: DicomwebSettings = Field(default_factory=DicomwebSettings)

    @field_validator("peers")
    @classmethod
    def _peers(cls, peers: tuple[PeerSettings, ...]) -> tuple[PeerSettings, ...]:
        titles = [peer.ae_title for peer in peers]
        if len(set(titles)) != len(titles):
            raise ConfigError("peers: each ae_title may appear once")
        return peers

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # the model is made from the registry at run time: pickled (to worker processes) as its document
        return parse, (self.model_dump(mode="json"),)


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def config_model() -> type[Config]:
    """:class:`Config` with the ``[handlers]`` tables of the handlers registered now."""
    return _config_model(handlers_model())


@functools.cache
def _config_model(handlers: type[Settings]) -> type[Config]:
    return create_model("Config", __base__=Config, __module__=__name__,
                        handlers=(handlers, Field(default_factory=handlers)))


def parse(document: Mapping[str, Any], source: str = "node.toml") -> Config:
    """``document`` (node.toml's tables, any key left out at its default) validated; ConfigError
    naming ``source``, the key and the reason otherwise."""
    try:
        return config_model().model_validate(document)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {config_error(exc)}") from None
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def defaults() -> dict[str, Any]:
    """The embedded defaults, as node.toml's tables (``[handlers.*]`` from each registered
    handler, so a handler registered since import has its table too)."""
    return config_model()().model_dump(mode="json")


def load(path: Path | None) -> Config:
    """Defaults overlaid with ``path`` (if given), validated: the one validation of node.toml
    (everything but the keys, which the node checks before it listens)."""
    if path is None:
        return config_model()()
    try:
        document = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse(document, str(path))


DEFAULTS: dict[str, Any] = defaults()  # the built-in handlers' tables (what the shipped node.toml documents)
