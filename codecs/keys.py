"""Key material: generation, key files, and public key identifiers.

``node.keys`` holds what the node needs to protect: the recipient's X25519 *public* key, the
embedding key, the pixel-cipher key and the pseudonym key. ``peer.keys`` holds what a peer needs
to reveal: the recipient's X25519 *private* key, the embedding key and the pixel-cipher key.
The node never holds a key that opens a sealed payload.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from .errors import KeyFileError

FORMAT = "stegonode-keys"
VERSION = 1
NODE_FILE = "node.keys"
PEER_FILE = "peer.keys"


def key_id(key: bytes, purpose: str) -> str:
    """A short, non-secret identifier of a key: 8 hex digits of a domain-separated hash."""
    return hashlib.sha256(b"stegonode key id\0" + purpose.encode() + b"\0" + key).hexdigest()[:8]


@dataclass(frozen=True)
class NodeKeys:
    """What the node holds (no key here opens a sealed payload)."""

    recipient_public_key: bytes
    embedding_key: bytes
    pixel_cipher_key: bytes
    pseudonym_key: bytes


@dataclass(frozen=True)
class PeerKeys:
    """What an authorized peer holds to reveal."""

    recipient_private_key: bytes
    embedding_key: bytes
    pixel_cipher_key: bytes

    @property
    def recipient_public_key(self) -> bytes:
        private = X25519PrivateKey.from_private_bytes(self.recipient_private_key)
        return private.public_key().public_bytes_raw()


def generate(directory: Path, overwrite: bool = False) -> tuple[Path, Path]:
    """Create ``node.keys`` and ``peer.keys`` (mode 0600) in ``directory``; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    private = X25519PrivateKey.generate()
    embedding_key = secrets.token_bytes(32)
    pixel_cipher_key = secrets.token_bytes(32)
    node = NodeKeys(
        recipient_public_key=private.public_key().public_bytes_raw(),
        embedding_key=embedding_key,
        pixel_cipher_key=pixel_cipher_key,
        pseudonym_key=secrets.token_bytes(32),
    )
    peer = PeerKeys(
        recipient_private_key=private.private_bytes_raw(),
        embedding_key=embedding_key,
        pixel_cipher_key=pixel_cipher_key,
    )
    node_path, peer_path = directory / NODE_FILE, directory / PEER_FILE
    for path in (node_path, peer_path):
        if path.exists() and not overwrite:
            raise KeyFileError(f"{path} already exists; refusing to overwrite keys (use --force)")
    _write(node_path, "node", node)
    _write(peer_path, "peer", peer)
    return node_path, peer_path


def _write(path: Path, role: str, keys: NodeKeys | PeerKeys) -> None:
    fields = {name: base64.b64encode(value).decode() for name, value in vars(keys).items()}
    document = {"format": FORMAT, "version": VERSION, "role": role, **fields}
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
    if document.get("version") != VERSION:
        raise KeyFileError(f"{path} has key file version {document.get('version')}, expected {VERSION}")
    if document.get("role") != role:
        wanted = NODE_FILE if role == "node" else PEER_FILE
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


def load_node_keys(path: Path) -> NodeKeys:
    """Read ``node.keys``."""
    try:
        return NodeKeys(**_read(path, "node"))
    except TypeError:
        raise KeyFileError(f"{path} lacks a required node key") from None


def load_peer_keys(path: Path) -> PeerKeys:
    """Read ``peer.keys``."""
    return _peer_keys(_read(path, "peer"), path)


def parse_peer_keys(data: bytes, source: str) -> PeerKeys:
    """``peer.keys`` from its bytes (an upload, kept in memory); ``source`` names it in messages."""
    return _peer_keys(_parse(data, source, "peer"), source)


def _peer_keys(values: dict[str, bytes], path: Path | str) -> PeerKeys:
    try:
        return PeerKeys(**values)
    except TypeError:
        raise KeyFileError(f"{path} lacks a required peer key") from None
