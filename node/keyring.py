"""Key rotation: which keys stored objects are sealed for, and re-sealing the header carrier.

Every protected object names, in its protection block, the key ids of the recipients its pixel
carrier and header carrier were sealed for (never key material). :func:`stored_by_key` counts
stored objects per key id; :func:`reseal_files` re-seals the header carrier of stored objects for
a new recipient set without touching their pixels (opening it needs the key of one recipient it
was sealed for: the node itself never holds one).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

import pydicom
from pydicom import Dataset

from stegonode.codecs import keys as keyfiles
from stegonode.codecs.keys import PeerKeys, Recipient, key_id
from stegonode.dicom.dicomfile import dicom_bytes, read_dicom
from stegonode.errors import (
    ConfigError,
    KeyFileError,
    NotProtectedError,
    StegonodeError,
    WrongEmbeddingKeyError,
    WrongRecipientKeyError,
)
from stegonode.handlers.header import (
    find_header_carrier,
    mac,
    mac_key,
    open_header,
    remove_header_carrier,
    seal_header,
    write_header_carrier,
)
from stegonode.handlers.protection import Protection, read_protection, write_protection
from stegonode.handlers.seal import series_binding


def key_ids_of(protection: Protection) -> set[str]:
    """Every recipient key id and certificate id an object is sealed for."""
    pixels = set(protection.recipients) if protection.has_pixels else set()
    header = set(protection.certificates) if "header" in protection.carriers else set()
    return pixels | header


def stored_by_key(stored: Path) -> Counter[str]:
    """Stored objects per key id (pixel recipient key ids and header certificate ids), read from
    the protection blocks of the files under ``stored`` (headers only)."""
    counts: Counter[str] = Counter()
    for path in sorted(p for p in stored.rglob("*.dcm") if p.is_file()):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            counts.update(key_ids_of(read_protection(ds)))
        except (StegonodeError, OSError, ValueError, EOFError, pydicom.errors.InvalidDicomError):
            counts["unreadable"] += 1
    return counts


def keys_for(ds: Dataset, keyring: Sequence[PeerKeys]) -> PeerKeys:
    """The peer.keys of ``keyring`` (several, after rotation) that ``ds`` was sealed for: one whose
    pixel recipient key is among the object's, else one whose certificate is; else the first
    (reveal then names the keys the object wants)."""
    if len(keyring) == 1:
        return keyring[0]
    try:
        protection = read_protection(ds)
    except NotProtectedError:
        return keyring[0]
    for keys in keyring:
        if protection.has_pixels and keys.recipient.key_id in protection.recipients:
            return keys
    for keys in keyring:
        if keys.recipient.certificate_id and keys.recipient.certificate_id in protection.certificates:
            return keys
    return keyring[0]


def reseal_header(ds: Dataset, peer: PeerKeys, recipients: Sequence[Recipient]) -> None:
    """Replace ``ds``'s header carrier by one sealed for ``recipients`` (same attributes, new
    envelope and MAC, the protection block's certificate ids updated); the pixels are untouched.

    ``peer`` holds the key of one recipient the header carrier is sealed for now."""
    if not recipients or any(recipient.certificate is None for recipient in recipients):
        raise KeyFileError("re-sealing the header carrier needs a certificate for every new recipient")
    protection = read_protection(ds)
    if "header" not in protection.carriers:
        raise NotProtectedError("the object has no header carrier")
    if protection.embedding_key_id != key_id(peer.embedding_key, "embedding"):
        raise WrongEmbeddingKeyError(
            f"object was protected with embedding key {protection.embedding_key_id}, "
            f"peer.keys holds {key_id(peer.embedding_key, 'embedding')}")
    key, bound = mac_key(peer.embedding_key), series_binding(ds)
    envelope = find_header_carrier(ds, key, bound, protection.header_mac)
    attributes = open_header(envelope, peer.certificate, peer.rsa_private_key, protection.certificates)
    certificates = [recipient.certificate for recipient in recipients if recipient.certificate is not None]
    new_envelope = seal_header(attributes, certificates)
    ids = [recipient.certificate_id for recipient in recipients]
    remove_header_carrier(ds, envelope)
    write_header_carrier(ds, new_envelope)
    write_protection(ds, replace(protection, header_certificate_id=ids[0], header_certificate_ids=ids,
                                 header_mac=mac(key, bound, new_envelope)))


def reseal_files(files: Iterable[Path], peer_path: Path, recipient_paths: Sequence[Path]) -> list[tuple[Path, str]]:
    """Re-seal the header carrier of each file in place (written whole, then renamed over it):
    one ``(file, outcome)`` each: "resealed", "skipped: REASON" or "failed: REASON"."""
    peer = keyfiles.load_peer_keys(peer_path)
    try:
        recipients = [keyfiles.load_recipient(path) for path in recipient_paths]
    except KeyFileError as exc:
        raise ConfigError(f"--recipient: {exc}") from None
    wanted = [recipient.certificate_id for recipient in recipients]
    mine = peer.recipient.certificate_id
    results = []
    for path in files:
        try:
            ds = read_dicom(path)
            protection = read_protection(ds)
            if protection.certificates == wanted:
                results.append((path, "skipped: already sealed for these recipients"))
                continue
            if "header" not in protection.carriers:
                results.append((path, "skipped: no header carrier"))
                continue
            if mine not in protection.certificates:
                results.append((path, "skipped: not sealed for this key"))
                continue
            reseal_header(ds, peer, recipients)
            _replace(path, dicom_bytes(ds))
            results.append((path, "resealed"))
        except (StegonodeError, WrongRecipientKeyError) as exc:
            results.append((path, f"failed: {exc}"))
        except OSError as exc:
            results.append((path, f"failed: cannot read or write the file ({exc.strerror or type(exc).__name__})"))
    return results


def _replace(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".reseal.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
