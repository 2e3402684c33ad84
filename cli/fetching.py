"""fetch: studies from a node, every instance revealed (the peer side)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from stegonode.cli.common import on_terminal
from stegonode.codecs import keys as keyfiles
from stegonode.node.peer import NodeAddress, Peer, Selection, StudyResult


def add_commands(sub: Any) -> None:
    fetch = sub.add_parser("fetch", help="retrieve studies from a node and reveal every instance")
    fetch.add_argument("--node", required=True, metavar="AET@HOST:PORT")
    which = fetch.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every study on the node")
    which.add_argument("--study", metavar="UID", help="one study (the node's Study Instance UID)")
    which.add_argument("--patient", metavar="ID", help="one patient (the node's pseudonymous Patient ID)")
    fetch.add_argument("--keys", type=Path, required=True, help="peer.keys")
    fetch.add_argument("--out", type=Path, required=True, metavar="DIR")
    fetch.add_argument("--aet", default="STEGOPEER", help="this peer's AE title (default STEGOPEER)")
    fetch.add_argument("--move-to", metavar="AET", help="retrieve by C-MOVE to a temporary SCP with this AE title")
    fetch.add_argument("--port", type=int, default=11113, help="the temporary SCP's port (with --move-to)")
    fetch.set_defaults(run=_fetch)


def _fetch(args: argparse.Namespace) -> int:
    peer = Peer(NodeAddress.parse(args.node), keyfiles.load_peer_keys(args.keys), args.aet)
    selection = Selection(study=args.study or "", patient=args.patient or "")
    move_to = (args.move_to, args.port) if args.move_to else None
    with tqdm(unit="instance", file=sys.stderr, leave=False, desc="revealing",
              disable=not on_terminal()) as bar:

        def report(result: StudyResult) -> None:
            extra = f", {len(result.not_retrieved)} not retrieved" if result.not_retrieved else ""
            extra += f", {len(result.failed)} failed" if result.failed else ""
            if result.segmentations:
                extra += f", {len(result.segmentations)} segmentation(s) saved"
            counts = ", ".join(f"{n} from the {carrier}" for carrier, n in sorted(result.carrier_counts().items()))
            tqdm.write(f"study {result.study} (patient {result.patient}): "
                       f"{len(result.revealed)}/{result.expected} instances revealed"
                       f"{f' ({counts})' if counts else ''}{extra} "
                       f"-> {args.out / result.study}", file=sys.stdout)

        results = peer.fetch(selection, args.out, move_to, progress=bar.update, on_study=report)
    if not results:
        print("no matching study on the node")
        return 1
    complete = all(not r.failed and not r.not_retrieved and len(r.revealed) + len(r.segmentations) == r.expected
                   for r in results)
    return 0 if complete else 1
