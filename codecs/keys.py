"""Key material: generation, key files, and public key identifiers.

``node.keys`` holds what the node needs to protect: the recipient's X25519 *public* key (pixel
carrier), the recipient's X.509 certificate (header carrier, RSA), the embedding key, the
pixel-cipher key and the pseudonym key. ``peer.keys`` holds what a peer needs to reveal: the
recipient's X25519 *private* key, the certificate and its RSA *private* key, the embedding key
and the pixel-cipher key. The node never holds a key that opens a sealed payload.

Key files of version 1 (written before the header carrier) have no certificate: they keep
working, and the node then writes the pixel carrier only.

Several recipients: a ``.recipient`` file holds one recipient's *public* keys (X25519 public key
and certificate), what node.toml's ``[handlers.seal] recipients`` lists; :func:`generate_recipient`
writes it with the recipient's own ``peer.keys`` (sharing the node's embedding and pixel-cipher
keys). A recipient is named by its key ids (:attr:`Recipient.key_ids`), never by key material.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from dataclasses import dataclass, fields
from functools import cached_property
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from stegonode.errors import KeyFileError

from . import cms
from .seal import recipient_key_id

FORMAT = "stegonode-keys"
VERSION = 2
READABLE_VERSIONS = (1, 2)  # version 1: no certificate, no RSA key
NODE_FILE = "node.keys"
PEER_FILE = "peer.keys"
RECIPIENT_SUFFIX = ".recipient"


def key_id(key: bytes, purpose: str) -> str:
    """A short, non-secret identifier of a key: 8 hex digits of a domain-separated hash."""
    return hashlib.sha256(b"stegonode key id\0" + purpose.encode() + b"\0" + key).hexdigest()[:8]


@dataclass(frozen=True)
class Recipient:
    """One recipient's public keys: X25519 (pixel carrier) and, optionally, an RSA certificate
    (header carrier)."""

    public_key: bytes
    certificate_der: bytes = b""

    @cached_property
    def certificate(self) -> x509.Certificate | None:
        return _certificate(self.certificate_der)

    @property
    def key_id(self) -> str:
        """The pixel carrier's recipient key id (as protection blocks record it)."""
        return recipient_key_id(self.public_key)

    @property
    def certificate_id(self) -> str:
        return cms.certificate_id(self.certificate) if self.certificate is not None else ""

    @property
    def key_ids(self) -> str:
        """Both ids, as commands print them: ``KEYID`` or ``KEYID/CERTID``."""
        return self.key_id + (f"/{self.certificate_id}" if self.certificate_id else "")


@dataclass(frozen=True)
class NodeKeys:
    """What the node holds (no key here opens a sealed payload)."""

    recipient_public_key: bytes
    embedding_key: bytes
    pixel_cipher_key: bytes
    pseudonym_key: bytes
    recipient_certificate: bytes = b""  # DER X.509 (RSA) for the header carrier; empty: none

    @cached_property
    def certificate(self) -> x509.Certificate | None:
        return _certificate(self.recipient_certificate)

    @property
    def recipient(self) -> Recipient:
        """The recipient node.keys itself names (the peer.keys keygen wrote beside it)."""
        return Recipient(self.recipient_public_key, self.recipient_certificate)


@dataclass(frozen=True)
class PeerKeys:
    """What an authorized peer holds to reveal."""

    recipient_private_key: bytes
    embedding_key: bytes
    pixel_cipher_key: bytes
    recipient_certificate: bytes = b""  # DER X.509 of the header carrier's recipient
    recipient_rsa_private_key: bytes = b""  # PKCS#8 DER of its RSA key; empty: none

    @property
    def recipient_public_key(self) -> bytes:
        private = X25519PrivateKey.from_private_bytes(self.recipient_private_key)
        return private.public_key().public_bytes_raw()

    @cached_property
    def certificate(self) -> x509.Certificate | None:
        return _certificate(self.recipient_certificate)

    @property
    def recipient(self) -> Recipient:
        return Recipient(self.recipient_public_key, self.recipient_certificate)

    @cached_property
    def rsa_private_key(self) -> rsa.RSAPrivateKey | None:
        certificate = self.certificate
        if certificate is None or not self.recipient_rsa_private_key:
            return None
        return cms.read_private_key(self.recipient_rsa_private_key, PEER_FILE, certificate)


def _certificate(der: bytes) -> x509.Certificate | None:
    return cms.read_certificate(der, "the key file's certificate") if der else None


def generate(
    directory: Path,
    overwrite: bool = False,
    certificate: Path | None = None,
    private_key: Path | None = None,
) -> tuple[Path, Path]:
    """Create ``node.keys`` and ``peer.keys`` (mode 0600) in ``directory``; return their paths.

    The header carrier's recipient is a new RSA key with a self-signed certificate, or the
    given ``certificate`` (PEM or DER; a hospital's PKI) with, if given, its ``private_key``
    (without it, peer.keys cannot open the header carrier: the certificate's owner can, with
    openssl or a peer.keys that holds the key).
    """
    node_path, peer_path = directory / NODE_FILE, directory / PEER_FILE
    for path in (node_path, peer_path):
        if path.exists() and not overwrite:
            raise KeyFileError(f"{path} already exists; refusing to overwrite keys (use --force)")
    cert_der, key_der = _recipient(certificate, private_key)
    directory.mkdir(parents=True, exist_ok=True)
    private = X25519PrivateKey.generate()
    embedding_key = secrets.token_bytes(32)
    pixel_cipher_key = secrets.token_bytes(32)
    node = NodeKeys(
        recipient_public_key=private.public_key().public_bytes_raw(),
        embedding_key=embedding_key,
        pixel_cipher_key=pixel_cipher_key,
        pseudonym_key=secrets.token_bytes(32),
        recipient_certificate=cert_der,
    )
    peer = PeerKeys(
        recipient_private_key=private.private_bytes_raw(),
        embedding_key=embedding_key,
        pixel_cipher_key=pixel_cipher_key,
        recipient_certificate=cert_der,
        recipient_rsa_private_key=key_der,
    )
    _write(node_path, "node", node)
    _write(peer_path, "peer", peer)
    return node_path, peer_path


def generate_recipient(
    directory: Path,
    name: str,
    node_keys: Path,
    overwrite: bool = False,
    certificate: Path | None = None,
    private_key: Path | None = None,
) -> tuple[Path, Path]:
    """A new recipient for the node of ``node_keys``: ``NAME.recipient`` (its public keys, for
    node.toml's ``[handlers.seal] recipients``) and ``NAME.peer.keys`` (what that recipient
    reveals with: its own private keys and the node's shared embedding and pixel-cipher keys),
    both mode 0600 in ``directory``."""
    if not name or not all(c.isalnum() or c in "-_." for c in name) or name.startswith("."):
        raise KeyFileError(f"recipient name {name!r}: use letters, digits, '-', '_' and '.'")
    node = load_node_keys(node_keys)
    public_path = directory / f"{name}{RECIPIENT_SUFFIX}"
    peer_path = directory / f"{name}.{PEER_FILE}"
    for path in (public_path, peer_path):
        if path.exists() and not overwrite:
            raise KeyFileError(f"{path} already exists; refusing to overwrite keys (use --force)")
    cert_der, key_der = _recipient(certificate, private_key, f"stegonode recipient {name}")
    directory.mkdir(parents=True, exist_ok=True)
    private = X25519PrivateKey.generate()
    recipient = Recipient(private.public_key().public_bytes_raw(), cert_der)
    peer = PeerKeys(
        recipient_private_key=private.private_bytes_raw(),
        embedding_key=node.embedding_key,
        pixel_cipher_key=node.pixel_cipher_key,
        recipient_certificate=cert_der,
        recipient_rsa_private_key=key_der,
    )
    _write_document(public_path, "recipient", {"recipient_public_key": recipient.public_key,
                                               "recipient_certificate": recipient.certificate_der})
    _write(peer_path, "peer", peer)
    return public_path, peer_path


def load_recipient(path: Path) -> Recipient:
    """A recipient's public keys from a ``.recipient`` file or a ``node.keys`` (its own recipient).

    A ``peer.keys`` is refused: it holds private keys, which the node must never hold."""
    role = _role(path)
    if role == "node":
        return load_node_keys(path).recipient
    if role == "peer":
        raise KeyFileError(f"{path} is a peer.keys (private keys): list the recipient's "
                           f"{RECIPIENT_SUFFIX} file instead")
    values = _read(path, "recipient")
    try:
        recipient = Recipient(values["recipient_public_key"], values.get("recipient_certificate", b""))
    except KeyError:
        raise KeyFileError(f"{path} lacks the recipient's public key") from None
    if len(recipient.public_key) != 32:
        raise KeyFileError(f"{path} holds a malformed recipient key")
    _ = recipient.certificate  # a malformed certificate shows now
    return recipient


def _recipient(certificate: Path | None, private_key: Path | None,
               name: str = "stegonode recipient") -> tuple[bytes, bytes]:
    """DER certificate and PKCS#8 key (empty when not given) of the header carrier's recipient."""
    if certificate is None:
        if private_key is not None:
            raise KeyFileError("--private-key needs --certificate (the certificate it belongs to)")
        key, cert = cms.new_recipient(name)
        return cms.certificate_der(cert), cms.private_key_der(key)
    cert = cms.read_certificate(_read_bytes(certificate), str(certificate))
    if private_key is None:
        return cms.certificate_der(cert), b""
    key = cms.read_private_key(_read_bytes(private_key), str(private_key), cert)
    return cms.certificate_der(cert), cms.private_key_der(key)


def _read_bytes(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read {path} ({exc.strerror or type(exc).__name__})") from None


def _write(path: Path, role: str, keys: NodeKeys | PeerKeys) -> None:
    _write_document(path, role, {f.name: getattr(keys, f.name) for f in fields(keys)})


def _write_document(path: Path, role: str, values: dict[str, bytes]) -> None:
    encoded = {name: base64.b64encode(value).decode() for name, value in values.items()}
    document = {"format": FORMAT, "version": VERSION, "role": role, **encoded}
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(document, handle, indent=2)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _read(path: Path, role: str) -> dict[str, bytes]:
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise KeyFileError(f"key file {path} not found; create one with 'stegonode keygen DIR'") from None
    except (OSError, ValueError) as exc:
        raise KeyFileError(f"key file {path} is unreadable: {type(exc).__name__}") from None
    return _parse(text, path, role)


def _parse(text: str | bytes, path: Path | str, role: str) -> dict[str, bytes]:
    """The key values of a key file's ``text``; ``path`` names it in messages."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise KeyFileError(f"key file {path} is unreadable: {type(exc).__name__}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise KeyFileError(f"{path} is not a stegonode key file")
    if document.get("version") not in READABLE_VERSIONS:
        raise KeyFileError(
            f"{path} has key file version {document.get('version')}, "
            f"expected one of {', '.join(map(str, READABLE_VERSIONS))}"
        )
    if document.get("role") != role:
        wanted = {"node": NODE_FILE, "peer": PEER_FILE}.get(role, f"a {RECIPIENT_SUFFIX} file")
        raise KeyFileError(
            f"{path} holds {document.get('role')} keys; this command needs {role} keys ({wanted})"
        )
    try:
        return {
            name: base64.b64decode(value, validate=True)
            for name, value in document.items()
            if name not in ("format", "version", "role")
        }
    except (TypeError, ValueError):
        raise KeyFileError(f"{path} holds a malformed key value") from None


def _role(path: Path) -> str | None:
    """The role a key file names (None when it cannot be read: :func:`_read` then says why)."""
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return document.get("role") if isinstance(document, dict) else None


def load_node_keys(path: Path) -> NodeKeys:
    """Read ``node.keys``."""
    try:
        keys = NodeKeys(**_read(path, "node"))
    except TypeError:
        raise KeyFileError(f"{path} lacks a required node key") from None
    _ = keys.certificate  # a malformed certificate shows now, not in the middle of a job
    return keys


def load_peer_keys(path: Path) -> PeerKeys:
    """Read ``peer.keys``."""
    return _peer_keys(_read(path, "peer"), path)


def parse_peer_keys(data: bytes, source: str) -> PeerKeys:
    """``peer.keys`` from its bytes (an upload, kept in memory); ``source`` names it in messages."""
    return _peer_keys(_parse(data, source, "peer"), source)


def _peer_keys(values: dict[str, bytes], path: Path | str) -> PeerKeys:
    try:
        keys = PeerKeys(**values)
    except TypeError:
        raise KeyFileError(f"{path} lacks a required peer key") from None
    _ = keys.rsa_private_key  # a malformed or mismatched key shows now, not per file
    return keys
