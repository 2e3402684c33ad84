"""The node as a service: serve, worker, web, status, orthanc-config."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stegonode.errors import InputError
from stegonode.node import config as node_config
from stegonode.node.config import Config
from stegonode.node.index import existing_index, quarantine_location
from stegonode.node.orthanc_plugin import write_config as write_orthanc_config
from stegonode.node.service import Node, WorkerHost
from stegonode.node.storage import NodePaths, open_store

if TYPE_CHECKING:  # the console imports Flask: only the commands that serve it load it
    from stegonode.web.server import Console



def add_commands(sub: Any) -> None:
    serve = sub.add_parser("serve", help="run the DICOM node (storage, query/retrieve, workers)")
    serve.add_argument("--config", type=Path, help="node.toml (embedded defaults otherwise)")
    serve.set_defaults(run=_serve)

    worker = sub.add_parser("worker", help="run a worker pool alone (no DICOM listener): a worker "
                            "host sharing the receivers' database and storage")
    worker.add_argument("--config", type=Path, help="node.toml (embedded defaults otherwise)")
    worker.set_defaults(run=_worker)

    web = sub.add_parser("web", help="serve the web console alone ([web] of node.toml), without the DICOM node")
    web.add_argument("--config", type=Path, help="node.toml (embedded defaults otherwise)")
    web.add_argument("--hash-password", action="store_true",
                     help="print a web.password_hash line for a password read from the terminal or stdin")
    web.set_defaults(run=_web)

    status = sub.add_parser("status", help="counts of received, queued, processed, failed, "
                            "quarantined; stored objects by carriers; identity residues removed; "
                            "the worker pools and their "
                            "last heartbeat")
    status.add_argument("--config", type=Path, help="node.toml (embedded defaults otherwise)")
    status.add_argument("--json", action="store_true", help="one JSON object")
    status.set_defaults(run=_status)

    orthanc = sub.add_parser("orthanc-config", help="write an Orthanc configuration that runs stegonode as its plugin")
    orthanc.add_argument("--out", type=Path, required=True, metavar="DIR",
                         help="orthanc.json, the plugin launcher, storage, index (and keys/ if generated)")
    orthanc.add_argument("--config", type=Path, help="node.toml: AE title, port, [[peers]], pipeline, keys")
    orthanc.add_argument("--http-port", type=int, default=8042, help="Orthanc's REST/Explorer port, loopback only")
    orthanc.add_argument("--dicomweb", action="store_true",
                         help="also load Debian's orthanc-dicomweb plugin: Orthanc serves its (protected) "
                              "studies over DICOMweb at /dicom-web/")
    orthanc.set_defaults(run=_orthanc_config)


def _serve(args: argparse.Namespace) -> int:
    config = _service_config(args.config)
    node = Node(config)
    console = _console(config) if config["web"]["enabled"] else None  # refused before the node listens
    return _run_until_signalled(node, console)


def _worker(args: argparse.Namespace) -> int:
    config = _service_config(args.config)
    return _run_until_signalled(WorkerHost(config))


def _service_config(path: Path | None) -> Config:
    """node.toml, with the log level and format of a long-running service."""
    config = node_config.load(path)
    level = getattr(logging, config["node"]["log_level"])
    logging.getLogger().setLevel(level)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("pynetdicom").setLevel(max(level, logging.WARNING))
    return config


def _run_until_signalled(service: Node | WorkerHost, console: Console | None = None) -> int:
    """Start the service (and the web console, if given); stop both on SIGINT or SIGTERM."""
    stop = _stop_event()
    service.start()
    if console:
        console.start()
    stop.wait()
    logging.getLogger("stegonode.node").info("stopping: finishing the jobs in progress")
    if console:
        console.stop()
    service.stop()
    return 0


def _stop_event() -> threading.Event:
    """Set by SIGINT or SIGTERM."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def _console(config: Config):
    from stegonode.web.server import Console

    logging.getLogger("waitress").setLevel(logging.ERROR)  # its queue warnings name no request
    return Console(config)


def _web(args: argparse.Namespace) -> int:
    if args.hash_password:
        from werkzeug.security import generate_password_hash

        password = getpass.getpass("console password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
        if len(password) < 12:
            raise InputError("choose a password of at least 12 characters")
        print(f'password_hash = "{generate_password_hash(password)}"')
        return 0
    config = node_config.load(args.config)
    logging.getLogger().setLevel(logging.INFO)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    console = _console(config)
    stop = _stop_event()
    console.start()
    stop.wait()
    console.stop()
    return 0


def _status(args: argparse.Namespace) -> int:
    config = node_config.load(args.config)
    paths = NodePaths.of(config["node"])
    index = existing_index(paths.database)
    counts = index.counts()
    carriers = index.carriers()
    by_key = index.key_ids()
    residues = index.identity_residues()
    pools = index.pools(float(config["node"]["lease_seconds"]))
    quarantined = index.quarantined_jobs()
    storage = open_store(config, paths.data_dir, create=False) if quarantined else None
    if args.json:
        quarantine = [{"sop_instance_uid": job["sop_instance_uid"], "file": quarantine_location(storage, job),
                       "reason": job["reason"]} for job in quarantined]
        print(json.dumps({**counts, "stored_by_carriers": carriers, "stored_by_key": by_key,
                          "identity_residues_removed": residues, "worker_pools": pools,
                          "quarantined_objects": quarantine}))
        return 0
    rate = counts.pop("instances_per_second_last_minute")
    print(", ".join(f"{n} {what}" for what, n in counts.items()) + f"; {rate:.2f} instances/s over the last minute")
    if carriers:
        print("stored objects by carriers: " + ", ".join(f"{n} {what}" for what, n in sorted(carriers.items())))
    if by_key:
        print("stored objects by key id: " + ", ".join(f"{n} {key}" for key, n in sorted(by_key.items())))
        print(f"identity residues removed: {residues['removed']} in {residues['objects']} object(s)")
    for pool in pools:
        print(f"worker pool {pool['host']} pid {pool['pid']}: {pool['state']}, "
              f"{pool['processes']} process(es), {pool['processing']} job(s) in progress, "
              f"{pool['done']} done, last heartbeat {pool['last_heartbeat_s_ago']:.1f} s ago")
    for job in quarantined:
        print(f"quarantined: {quarantine_location(storage, job)}: {job['reason']}")
    return 0


def _orthanc_config(args: argparse.Namespace) -> int:
    setup = write_orthanc_config(args.out, args.config, args.http_port, args.dicomweb)
    print(f"wrote {setup.config}")
    if setup.generated_peer_keys is not None:
        print(f"generated a new key pair; give {setup.generated_peer_keys} to the peer that reveals, "
              "then delete it here")
    print("start Orthanc with:\n  " + " ".join(setup.command))
    return 0
