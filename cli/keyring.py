"""Commands on recipients and rotation: ``keys objects`` (stored objects per key id) and
``keys reseal`` (the header carrier of stored objects for a new recipient set)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pydicom

from stegonode.codecs import keys as keyfiles
from stegonode.errors import ConfigError, KeyFileError
from stegonode.handlers.protection import read_protection
from stegonode.handlers.seal import recipient_files
from stegonode.node import audit
from stegonode.node import config as node_config
from stegonode.node.config import Config
from stegonode.node.index import existing_index
from stegonode.node.keyring import key_ids_of, reseal_files, stored_by_key
from stegonode.node.storage import NodePaths


def add_commands(sub: Any) -> None:
    keys = sub.add_parser("keys", help="recipients and key rotation: objects per key id, re-seal")
    commands = keys.add_subparsers(required=True, metavar="ACTION")
    objects = commands.add_parser("objects", help="stored objects per recipient key id; the current recipients")
    objects.add_argument("--config", type=Path, help="node.toml (embedded defaults otherwise)")
    objects.add_argument("--folder", type=Path, metavar="DIR",
                         help="count the protected files of DIR (their protection blocks) instead of the node's index")
    objects.add_argument("--json", action="store_true")
    objects.set_defaults(run=_objects)
    reseal = commands.add_parser(
        "reseal", help="re-seal the header carrier of stored objects for new recipients (pixels untouched)")
    reseal.add_argument("files", nargs="*", type=Path, metavar="FILE",
                        help="protected files (default: every stored object of the node)")
    reseal.add_argument("--config", type=Path, help="node.toml (embedded defaults otherwise)")
    reseal.add_argument("--keys", type=Path, required=True,
                        help="peer.keys of a recipient the objects are sealed for now")
    reseal.add_argument("--recipient", type=Path, action="append", required=True, metavar="FILE",
                        help="a recipient of the new set (.recipient file or node.keys); repeat for each")
    reseal.set_defaults(run=_reseal)


def current_recipients(config: Config) -> list[keyfiles.Recipient]:
    """The recipients the node seals new objects for (node.toml, or node.keys's own)."""
    listed = recipient_files(config["handlers"]["seal"])
    if listed:
        try:
            return [keyfiles.load_recipient(path) for path in listed]
        except KeyFileError as exc:
            raise ConfigError(f"handlers.seal.recipients: {exc}") from None
    keys = NodePaths.of(config["node"]).keys
    return [keyfiles.load_node_keys(keys).recipient] if keys.is_file() else []


def _objects(args: argparse.Namespace) -> int:
    config = node_config.load(args.config)
    if args.folder is not None:
        counts = dict(stored_by_key(args.folder))
    else:
        index = existing_index(NodePaths.of(config["node"]).database)
        counts = index.key_ids()
        index.close()
    current = current_recipients(config)
    if args.json:
        print(json.dumps({"stored_by_key": dict(counts), "current": [r.key_ids for r in current]}))
        return 0
    print("current recipients: " + ", ".join(r.key_ids for r in current) + " (pixel key id/certificate id)")
    for key, count in sorted(counts.items()):
        print(f"{key}: {count} object(s)")
    return 0


def _reseal(args: argparse.Namespace) -> int:
    config = node_config.load(args.config)
    paths = NodePaths.of(config["node"])
    files = args.files or sorted((paths.data_dir / "stored").rglob("*.dcm"))
    results = reseal_files(files, args.keys, args.recipient)
    index = existing_index(paths.database) if not args.files else None
    failed = 0
    for path, outcome in results:
        print(f"{'FAIL' if outcome.startswith('failed') else 'OK'} {path}: {outcome}")
        failed += outcome.startswith("failed")
        if index is not None and outcome == "resealed":  # the node's own stored objects
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            index.set_key_ids(str(ds.SOPInstanceUID), " ".join(sorted(key_ids_of(read_protection(ds)))))
    resealed = sum(outcome == "resealed" for _, outcome in results)
    trail = audit.from_config(config)
    if index is not None:
        trail.add_sink(lambda event: index.record_audit(audit.index_record(event)))
    trail.record(audit.Event(
        "reseal", outcome="failure" if failed else "success", user="stegonode keys reseal",
        detail=f"{resealed} resealed, {failed} failed, for {', '.join(key_ids(args.recipient))}"))
    trail.close()  # written and sent before the command exits
    if index is not None:
        index.close()
    return 1 if failed else 0


def key_ids(paths: list[Path]) -> list[str]:
    return [keyfiles.load_recipient(path).key_ids for path in paths]
