"""The ``stegonode`` command line: serve, worker, status, fetch, orthanc-config, keygen, protect,
reveal, encrypt, decrypt, cipher-report, segment, train-segmenter, deep stego commands,
export-onnx, demo.

Training and export (train-segmenter, train-deepstego, deepstego-report, export-onnx) need the
``train`` extra (torch); every other command runs on numpy and ONNX Runtime alone."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pydicom
from tqdm import tqdm

from stegonode.codecs import cipher_stats
from stegonode.codecs import keys as keyfiles
from stegonode.errors import ConfigError, InputError, KeyFileError, StegonodeError
from stegonode.handlers.collect import described
from stegonode.handlers.dicomfile import configure_pydicom, dicom_bytes, read_dicom
from stegonode.handlers.encrypt import (
    CIPHERS, EncryptHandler, cipher_report, decrypt_dataset, encrypt_dataset, pixel_words,
)
from stegonode.handlers.pipeline import configured_pipeline, pixels_only_notice
from stegonode.handlers.pixels import PixelFormat, read_pixels
from stegonode.handlers.reveal import reveal, reveal_document

from . import config as node_config
from .index import existing_index
from .orthanc_plugin import write_config as write_orthanc_config
from .peer import NodeAddress, Peer, Selection, StudyResult
from .service import Node, WorkerHost
from .storage import NodePaths, Storage

if TYPE_CHECKING:  # the console imports Flask: only the commands that serve it load it
    from stegonode.web.server import Console


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    configure_pydicom()
    try:
        return args.run(args)
    except StegonodeError as exc:
        print(f"stegonode: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # never a traceback: its text may quote a value of the input
        print(f"stegonode: internal error ({type(exc).__name__})", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stegonode", description=__doc__)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    keygen = sub.add_parser("keygen", help="write DIR/node.keys and DIR/peer.keys (mode 0600)")
    keygen.add_argument("directory", type=Path, metavar="DIR")
    keygen.add_argument("--force", action="store_true", help="overwrite existing key files")
    keygen.add_argument("--certificate", type=Path, metavar="CERT",
                        help="the header carrier's recipient: this X.509 certificate (PEM or DER, RSA) "
                             "instead of a new self-signed one")
    keygen.add_argument("--private-key", type=Path, metavar="KEY",
                        help="with --certificate: its unencrypted private key, copied into peer.keys")
    keygen.set_defaults(run=_keygen)

    protect = sub.add_parser("protect", help="seal patient identity into the pixels, de-identify")
    protect.add_argument("inputs", nargs="+", type=Path, metavar="IN", help="DICOM files or folders")
    protect.add_argument("--out", type=Path, required=True, metavar="DIR")
    protect.add_argument("--keys", type=Path, required=True, help="node.keys")
    protect.add_argument("--config", type=Path, help="node.toml (embedded defaults otherwise)")
    protect.add_argument("--encrypt", choices=list(CIPHERS), metavar="CIPHER",
                         help=f"then encrypt the pixels ({' or '.join(CIPHERS)}), as handler 'encrypt' would")
    protect.add_argument("--segmenter", choices=node_config.SEGMENTER_CHOICES,
                         help="instead of handlers.segment.segmenter of the config")
    protect.set_defaults(run=_protect)

    reveal_ = sub.add_parser("reveal", help="recover the patient identity from protected files")
    reveal_.add_argument("inputs", nargs="+", type=Path, metavar="IN")
    reveal_.add_argument("--keys", type=Path, required=True, help="peer.keys")
    reveal_.add_argument("--json", action="store_true", help="one JSON object per file per line")
    reveal_.add_argument("--out", type=Path, metavar="DIR", help="write re-identified DICOM files")
    reveal_.set_defaults(run=_reveal)

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
                            "quarantined; the worker pools and their last heartbeat")
    status.add_argument("--config", type=Path, help="node.toml (embedded defaults otherwise)")
    status.add_argument("--json", action="store_true", help="one JSON object")
    status.set_defaults(run=_status)

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

    orthanc = sub.add_parser("orthanc-config", help="write an Orthanc configuration that runs stegonode as its plugin")
    orthanc.add_argument("--out", type=Path, required=True, metavar="DIR",
                         help="orthanc.json, the plugin launcher, storage, index (and keys/ if generated)")
    orthanc.add_argument("--config", type=Path, help="node.toml: AE title, port, [[peers]], pipeline, keys")
    orthanc.add_argument("--http-port", type=int, default=8042, help="Orthanc's REST/Explorer port, loopback only")
    orthanc.set_defaults(run=_orthanc_config)
    default_cipher = node_config.DEFAULTS["handlers"]["encrypt"]["cipher"]
    encrypt = sub.add_parser("encrypt", help="encrypt the pixels (pixel-cipher key of node.keys)")
    encrypt.add_argument("inputs", nargs="+", type=Path, metavar="IN")
    encrypt.add_argument("--out", type=Path, required=True, metavar="DIR")
    encrypt.add_argument("--keys", type=Path, required=True, help="node.keys")
    encrypt.add_argument("--cipher", choices=list(CIPHERS), default=default_cipher,
                         help=f"default {default_cipher}, the standard choice; chaos is seed 004's")
    encrypt.add_argument("--nonce", metavar="HEX", help="fixed nonce for every file: for analysis only")
    encrypt.set_defaults(run=_encrypt)

    decrypt = sub.add_parser("decrypt", help="decrypt encrypted pixels (pixel-cipher key of peer.keys)")
    decrypt.add_argument("inputs", nargs="+", type=Path, metavar="IN")
    decrypt.add_argument("--out", type=Path, required=True, metavar="DIR")
    decrypt.add_argument("--keys", type=Path, required=True, help="peer.keys")
    decrypt.set_defaults(run=_decrypt)

    report = sub.add_parser("cipher-report", help="security statistics of both pixel ciphers, side by side")
    report.add_argument("inputs", nargs="+", type=Path, metavar="IN")
    report.add_argument("--out", type=Path, metavar="DIR", help="write DIR/<file>-histogram.png")
    report.set_defaults(run=_cipher_report)

    segment = sub.add_parser("segment", help="write the foreground mask the segmenter finds, and an overlay")
    segment.add_argument("inputs", nargs="+", type=Path, metavar="IN", help="DICOM files or folders")
    segment.add_argument("--out", type=Path, required=True, metavar="DIR")
    segment.add_argument("--segmenter", choices=node_config.SEGMENTER_CHOICES,
                         default=node_config.DEFAULTS["handlers"]["segment"]["segmenter"],
                         help="default: the pipeline's default segmenter")
    segment.add_argument("--seg", action="store_true",
                         help="inputs are protected: write one DICOM SEG per series of the region kept bit-identical")
    segment.add_argument("--keys", type=Path, help="with --seg, for encrypted pixels: node.keys or peer.keys")
    segment.set_defaults(run=_segment)

    train = sub.add_parser("train-segmenter", help="train the Mask R-CNN segmenter (weights, model card, overlays)")
    train.add_argument("--out", type=Path, default=None, metavar="DIR",
                       help="weights, MODEL_CARD.md and overlays/ (default: the --work folder; the package's "
                       "models folder here replaces the shipped weights)")
    train.add_argument("--work", type=Path, default=Path("build/segmenter"), metavar="DIR",
                       help="checkpoint (resumed if present), training log, metrics.json")
    train.add_argument("--steps", type=int, help="optimizer steps (default 700)")
    train.add_argument("--batch", type=int, help="images per step (default 4)")
    train.add_argument("--seed", type=int, help="seed of every random choice (default 0)")
    train.add_argument("--learning-rate", type=float, help="peak learning rate (default 0.001)")
    train.add_argument("--warmup", type=int, help="warm-up steps (default 100)")
    train.add_argument("--init", type=Path, metavar="WEIGHTS",
                       help="fine-tune: start from these weights (ignored when resuming a checkpoint)")
    train.add_argument("--phantoms", type=int, default=600, help="training phantoms")
    train.add_argument("--held-out", type=int, default=60, help="held-out phantoms")
    train.add_argument("--real-repeat", type=int, default=20, help="copies of each labelled real training frame")
    train.add_argument("--threads", type=int, default=1, help="torch threads (the CPU is shared)")
    train.set_defaults(run=_train_segmenter)

    export = sub.add_parser("export-onnx", help="export the torch weights to the ONNX files the runtime runs")
    export.add_argument("--weights", type=Path, default=None, metavar="DIR",
                        help="folder of maskrcnn_foreground.pt and deepstego.pt (default: the package's models folder)")
    export.add_argument("--out", type=Path, default=Path("build/onnx"), metavar="DIR",
                        help="default: build/onnx (the package's models folder here replaces the shipped ONNX files)")
    export.set_defaults(run=_export_onnx)

    demo = sub.add_parser("demo", help="protect and reveal a bundled real CT (693_UNCR)")
    demo.add_argument("--workdir", type=Path, default=Path("stegonode-demo"))
    demo.set_defaults(run=_demo)

    hide = sub.add_parser("deep-hide", help="hide a secret image in a cover image (seed-000 networks)")
    hide.add_argument("cover", type=Path, metavar="COVER", help="PNG (grayscale or RGB) or DICOM")
    hide.add_argument("secret", type=Path, metavar="SECRET", help="PNG of the same size as COVER")
    hide.add_argument("--out", type=Path, required=True, metavar="STEGO", help="PNG, or DICOM for a DICOM cover")
    hide.set_defaults(run=_deep_hide)

    unhide = sub.add_parser("deep-reveal", help="recover the secret image from a stego image alone")
    unhide.add_argument("stego", type=Path, metavar="STEGO", help="PNG or DICOM written by deep-hide")
    unhide.add_argument("--out", type=Path, required=True, metavar="SECRET", help="PNG")
    unhide.set_defaults(run=_deep_reveal)

    train = sub.add_parser("train-deepstego", help="train the deep stego networks (resumable)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--steps", type=int, help="training steps (default: the shipped weights' count)")
    train.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    train.add_argument("--workdir", type=Path, default=Path("stegonode-data/deepstego"),
                       help="checkpoint folder: run again to resume")
    train.add_argument("--out", type=Path, help="where weights, model card and examples go (default: the "
                       "--workdir folder; the package's models folder here replaces the shipped weights)")
    train.set_defaults(run=_train_deepstego)

    evidence = sub.add_parser("report", help="the three seeds' tables on our images: report.md, report.html, plots")
    evidence.add_argument("--images", nargs="+", type=Path, metavar="PATH",
                          help="DICOM files or folders (default: the round-trip set and ../shared/realdata)")
    evidence.add_argument("--out", type=Path, required=True, metavar="DIR")
    evidence.add_argument("--trials", type=int, default=3, help="noise draws per attack and level (default 3)")
    evidence.add_argument("--phantoms", type=int, default=30,
                          help="held-out phantoms for the segmentation IoU (default 30; 0: real images only)")
    evidence.set_defaults(run=_report)

    report = sub.add_parser("deepstego-report", help="the seed-000 table on the held-out set")
    report.add_argument("--weights", type=Path, help="weights file (default: the shipped ones)")
    report.set_defaults(run=_deepstego_report)
    return parser


def _keygen(args: argparse.Namespace) -> int:
    node_path, peer_path = keyfiles.generate(args.directory, overwrite=args.force,
                                             certificate=args.certificate, private_key=args.private_key)
    print(f"wrote {node_path} (for the node) and {peer_path} (for peers that reveal); keep both secret")
    if args.certificate and not args.private_key:
        print(f"{peer_path} holds no private key for {args.certificate}: it reveals from the pixels only; "
              "the certificate's owner opens the header carrier with its own key")
    return 0


def _files(inputs: list[Path]) -> Iterator[tuple[Path, Path]]:
    """(file, output name relative to --out): a folder's files keep their relative paths."""
    for item in inputs:
        if item.is_dir():
            for path in sorted(p for p in item.rglob("*") if p.is_file()):
                yield path, path.relative_to(item)
        else:
            yield item, Path(item.name)


def _failure_line(path: Path, reason: str) -> str:
    return f"FAIL {path}: {reason}"


def _run_each(
    inputs: list[Path],
    work: Callable[[Path, Path], str],
    failure: Callable[[Path, str], str] = _failure_line,
) -> int:
    """Apply ``work`` to every file, one line each; exit status 1 if any failed."""
    files = list(_files(inputs))
    failed = 0
    bar = tqdm(files, unit="file", disable=len(files) < 2, file=sys.stderr, leave=False)
    for path, relative in bar:
        try:
            line = work(path, relative)
        except Exception as exc:  # one bad file never stops the batch, whatever it raises
            failed += 1
            line = failure(path, _reason(exc))
        tqdm.write(line, file=sys.stdout)
    return 1 if failed else 0


def _reason(exc: Exception) -> str:
    """A one-line reason; only stegonode's own messages are quoted (others may hold values)."""
    if isinstance(exc, OSError):
        return f"cannot read or write the file ({exc.strerror or type(exc).__name__})"
    if isinstance(exc, StegonodeError):
        return str(exc)
    return f"internal error while processing the file ({type(exc).__name__})"


def _write(ds: pydicom.Dataset, out: Path, relative: Path) -> None:
    data = dicom_bytes(ds)  # encoded first: a data set that does not encode leaves no partial file
    target = out / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


_CARRIER_NOTES = {
    "core": " (core attributes in the pixels, all in the header)",
    "none": " (background too small for the pixel carrier)",
    "off": " (pixel carrier off)",
}


def _carriers_text(report: dict) -> str:
    """Which carriers protect writes said it wrote, and why the pixels carry less if they do."""
    return str(report.get("carriers", "")) + _CARRIER_NOTES.get(str(report.get("pixel_attributes")), "")


def _say_if_pixels_only(config: dict, keys: keyfiles.NodeKeys) -> None:
    notice = pixels_only_notice(config["pipeline"]["carriers"], keys)
    if notice:
        print(f"stegonode: {notice}", file=sys.stderr)


def _protect(args: argparse.Namespace) -> int:
    config = node_config.load(args.config)
    keys = keyfiles.load_node_keys(args.keys)
    _say_if_pixels_only(config, keys)
    pipeline = configured_pipeline(config, keys, args.encrypt, args.segmenter)

    def work(path: Path, relative: Path) -> str:
        start = time.perf_counter()
        ds = read_dicom(path)
        instance = pipeline.protect(ds)
        _write(ds, args.out, relative)
        r = instance.report
        return (
            f"OK {path}: carriers {_carriers_text(r)}, "
            f"payload {r.get('payload_bytes', 0)} B, PSNR {r.get('psnr_db', float('inf')):.1f} dB "
            f"(peak 2^BitsStored-1; {r.get('psnr_65535_db', float('inf')):.1f} dB at 65535), "
            f"{r.get('changed_pixels', 0)} pixels changed, "
            + (f"pixels encrypted ({r['cipher']}), " if "cipher" in r else "")
            + f"{1000 * (time.perf_counter() - start):.0f} ms"
        )

    return _run_each(args.inputs, work)


def _reveal(args: argparse.Namespace) -> int:
    keys = keyfiles.load_peer_keys(args.keys)

    def work(path: Path, relative: Path) -> str:
        revealed = reveal(read_dicom(path), keys)
        if args.out:
            _write(revealed.dataset, args.out, relative)
        attributes = described(revealed.attributes)
        if args.json:
            return json.dumps(reveal_document(str(path), attributes, carrier=revealed.carrier,
                                              confirmed_by=revealed.confirmed_by, complete=revealed.complete),
                              ensure_ascii=False)
        confirmed = f", confirmed by the {revealed.confirmed_by[0]}" if revealed.confirmed_by else ""
        partial = "" if revealed.complete else " (the core ones only: the header carrier is gone)"
        return (f"OK {path}: {len(attributes)} identifying attributes recovered{partial} "
                f"from the {revealed.carrier}{confirmed}")

    def failure(path: Path, reason: str) -> str:
        if args.json:
            return json.dumps(reveal_document(str(path), None, reason))
        return _failure_line(path, reason)

    return _run_each(args.inputs, work, failure)


def _serve(args: argparse.Namespace) -> int:
    config = _service_config(args.config)
    node = Node(config)
    console = _console(config) if config["web"]["enabled"] else None  # refused before the node listens
    return _run_until_signalled(node, console)


def _worker(args: argparse.Namespace) -> int:
    config = _service_config(args.config)
    return _run_until_signalled(WorkerHost(config))


def _service_config(path: Path | None) -> dict:
    """node.toml, with the log level and format of a long-running service."""
    config = node_config.load(path)
    level = getattr(logging, config["node"]["log_level"])
    logging.getLogger().setLevel(level)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("pynetdicom").setLevel(max(level, logging.WARNING))
    return config


def _run_until_signalled(service: Node | WorkerHost, console: "Console | None" = None) -> int:
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


def _console(config: dict):
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
    pools = index.pools(float(config["node"]["lease_seconds"]))
    if args.json:
        print(json.dumps({**counts, "stored_by_carriers": carriers, "worker_pools": pools}))
        return 0
    rate = counts.pop("instances_per_second_last_minute")
    print(", ".join(f"{n} {what}" for what, n in counts.items()) + f"; {rate:.2f} instances/s over the last minute")
    if carriers:
        print("stored objects by carriers: " + ", ".join(f"{n} {what}" for what, n in sorted(carriers.items())))
    for pool in pools:
        print(f"worker pool {pool['host']} pid {pool['pid']}: {pool['state']}, "
              f"{pool['processes']} process(es), {pool['processing']} job(s) in progress, "
              f"{pool['done']} done, last heartbeat {pool['last_heartbeat_s_ago']:.1f} s ago")
    for token, reason in index.quarantined():
        print(f"quarantined: {Storage(paths.data_dir).path('quarantine', token)}: {reason}")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    peer = Peer(NodeAddress.parse(args.node), keyfiles.load_peer_keys(args.keys), args.aet)
    selection = Selection(study=args.study or "", patient=args.patient or "")
    move_to = (args.move_to, args.port) if args.move_to else None
    with tqdm(unit="instance", file=sys.stderr, leave=False, desc="revealing") as bar:

        def report(result: StudyResult) -> None:
            extra = f", {len(result.failed)} failed" if result.failed else ""
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
    complete = all(not r.failed and len(r.revealed) + len(r.segmentations) == r.expected for r in results)
    return 0 if complete else 1
def _orthanc_config(args: argparse.Namespace) -> int:
    setup = write_orthanc_config(args.out, args.config, args.http_port)
    print(f"wrote {setup.config}")
    if setup.generated_peer_keys is not None:
        print(f"generated a new key pair; give {setup.generated_peer_keys} to the peer that reveals, "
              "then delete it here")
    print("start Orthanc with:\n  " + " ".join(setup.command))
    return 0


def _nonce(text: str | None) -> bytes | None:
    """``--nonce HEX`` as bytes, announced on stderr: a fixed nonce is for analysis only."""
    if text is None:
        return None
    try:
        nonce = bytes.fromhex(text)
    except ValueError:
        raise ConfigError("--nonce must be hexadecimal") from None
    print("stegonode: --nonce fixes the nonce of every file: for analysis only; never encrypt two "
          "different images under one key and nonce (that leaks how they differ)", file=sys.stderr)
    return nonce


def _encrypt(args: argparse.Namespace) -> int:
    keys = keyfiles.load_node_keys(args.keys)
    encryptor = EncryptHandler(args.cipher, keys.pixel_cipher_key, _nonce(args.nonce))

    def work(path: Path, relative: Path) -> str:
        start = time.perf_counter()
        ds = read_dicom(path)
        encrypt_dataset(ds, encryptor)
        _write(ds, args.out, relative)
        return f"OK {path}: pixels encrypted ({args.cipher}), {1000 * (time.perf_counter() - start):.0f} ms"

    return _run_each(args.inputs, work)


def _decrypt(args: argparse.Namespace) -> int:
    keys = keyfiles.load_peer_keys(args.keys)

    def work(path: Path, relative: Path) -> str:
        ds = read_dicom(path)
        block = decrypt_dataset(ds, keys.pixel_cipher_key)
        if block is None:
            raise InputError("pixels are not encrypted (no stegonode cipher block)")
        _write(ds, args.out, relative)
        return f"OK {path}: pixels decrypted ({block.cipher}), authentication verified"

    return _run_each(args.inputs, work)


def _cipher_report(args: argparse.Namespace) -> int:
    """Both ciphers on each file's pixels under a fresh random key and fixed random nonces."""

    def work(path: Path, relative: Path) -> str:
        ds = read_dicom(path)
        words = pixel_words(read_pixels(ds))
        bits = words.dtype.itemsize * 8
        rows, images = cipher_report(words)
        frames, height, width = words.shape
        lines = [f"{path}: {height} x {width} x {frames} frame(s), BitsStored {PixelFormat.of(ds).bits_stored}, "
                 f"encrypted as {bits}-bit words; fresh random key, one random nonce per cipher"]
        lines += _report_table(rows, list(CIPHERS))
        if args.out:
            target = args.out / relative.with_name(relative.name + "-histogram.png")
            target.parent.mkdir(parents=True, exist_ok=True)
            cipher_stats.histogram_png(target, {"plain": words, **images}, bits)
            lines.append(f"histograms: {target}")
        return "\n".join(lines)

    status = _run_each(args.inputs, work)
    print("Each pass/fail is a test at alpha 0.05 (a truly random image fails one in twenty). AES-GCM is "
          "a stream mode: with the nonce fixed a changed pixel changes only itself, so the one-pixel "
          "rows fail by design; a fresh nonce per image (nonce sensitivity) is what it relies on. "
          "Passing every row is necessary, not sufficient: it does not show a cipher is secure.")
    return status


def _report_table(rows: list[cipher_stats.Row], ciphers: list[str]) -> list[str]:
    """The report as aligned text: test, criterion, plain value, then value and verdict per cipher."""
    header = f"  {'test':<38}{'criterion':<44}{'plain':>12}" + "".join(f"{name:>18}" for name in ciphers)
    lines = [header]
    for row in rows:
        plain = "-" if row.plain is None else f"{row.plain:.6g}"
        cells = "".join(
            f"{f'{value:.6g} ' + ('PASS' if passed else 'FAIL'):>18}" for value, passed in row.results.values()
        )
        lines.append(f"  {row.test:<38}{row.criterion:<44}{plain:>12}{cells}")
    return lines


def _segment(args: argparse.Namespace) -> int:
    if args.seg:
        return _kept_segmentations(args)
    from stegonode.handlers.overlay import write_mask, write_overlay
    from stegonode.handlers.segment import make_segmenter, windowed

    segmenter = make_segmenter(args.segmenter)
    args.out.mkdir(parents=True, exist_ok=True)

    def work(path: Path, relative: Path) -> str:
        start = time.perf_counter()
        ds = read_dicom(path)
        pixels = read_pixels(ds)
        masks = segmenter.foreground(ds, pixels)
        images = windowed(ds, pixels)
        stem = relative.with_suffix("").as_posix().replace("/", "_")
        for index, mask in enumerate(masks):
            name = stem if len(masks) == 1 else f"{stem}_f{index}"
            write_mask(args.out / f"{name}.png", mask)
            write_overlay(args.out / f"{name}-overlay.png", images[index], mask)
        share = 100 * float(masks.mean())
        return f"OK {path}: {len(masks)} frame(s), foreground {share:.1f} %, {1000 * (time.perf_counter() - start):.0f} ms"

    return _run_each(args.inputs, work)


def _kept_segmentations(args: argparse.Namespace) -> int:
    """``segment --seg``: one SEG per series of the protected inputs, ``DIR/<SEG series UID>.dcm``."""
    from stegonode.handlers import dicomseg

    key = _pixel_cipher_key(args.keys) if args.keys else None
    series: dict[str, list[dicomseg.Source]] = {}

    def work(path: Path, relative: Path) -> str:
        ds = read_dicom(path)
        mask = dicomseg.kept_region(ds, key)
        series.setdefault(str(ds.SeriesInstanceUID), []).append(dicomseg.Source(ds, mask))
        return f"OK {path}: {100 * float(mask.mean()):.1f} % of the pixels kept bit-identical"

    status = _run_each(args.inputs, work)
    args.out.mkdir(parents=True, exist_ok=True)
    for uid, sources in series.items():
        try:
            seg = dicomseg.kept_segmentation(sources, dicomseg.software_version())
        except StegonodeError as exc:
            print(f"FAIL series {uid}: {exc}")
            status = 1
            continue
        target = args.out / f"{seg.SeriesInstanceUID}.dcm"
        seg.save_as(target, enforce_file_format=True)
        print(f"wrote {target}: SEG of {len(sources)} instance(s), {seg.NumberOfFrames} frame(s)")
    return status


def _pixel_cipher_key(path: Path) -> bytes:
    """The pixel-cipher key of a node.keys or a peer.keys file."""
    try:
        return keyfiles.load_peer_keys(path).pixel_cipher_key
    except KeyFileError:
        return keyfiles.load_node_keys(path).pixel_cipher_key


def _train_segmenter(args: argparse.Namespace) -> int:
    from stegonode.models import require_training_extra

    require_training_extra("train-segmenter")
    import torch

    from stegonode.training.segmenter import train_segmenter
    from stegonode.training.maskrcnn_fit import Schedule

    torch.set_num_threads(args.threads)
    given = {"steps": args.steps, "batch": args.batch, "seed": args.seed,
             "learning_rate": args.learning_rate, "warmup": args.warmup}
    schedule = Schedule(**{key: value for key, value in given.items() if value is not None})
    metrics = train_segmenter(args.out or args.work, args.work, schedule, args.phantoms,
                              args.held_out, args.real_repeat, init=args.init)
    for name in ("phantoms_held_out", "real"):
        m = metrics[name]
        if m["count"]:
            print(f"{name}: {m['count']} images, Mask R-CNN IoU mean {m['maskrcnn_mean_iou']:.4f} "
                  f"min {m['maskrcnn_min_iou']:.4f}; classical mean {m['classical_mean_iou']:.4f}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    """Protect the bundled real CT 693_UNCR (pydicom-data), reveal it, compare with the original."""
    from pydicom.data import get_testdata_file

    source = Path(str(get_testdata_file("693_UNCR.dcm")))
    keys_dir, protected, revealed = (args.workdir / name for name in ("keys", "protected", "revealed"))
    if not (keys_dir / keyfiles.PEER_FILE).exists():
        keyfiles.generate(keys_dir)
    print(f"demo: protecting {source.name} (real CT from pydicom-data) into {protected}/")
    status = main(["protect", str(source), "--out", str(protected), "--keys", str(keys_dir / keyfiles.NODE_FILE)])
    if status:
        return status
    stego = pydicom.dcmread(protected / source.name)
    print(f"demo: protected header shows PatientName={stego.PatientName}, PatientID={stego.PatientID}")
    print(f"demo: revealing with {keys_dir / keyfiles.PEER_FILE} into {revealed}/")
    status = main(["reveal", str(protected / source.name), "--keys", str(keys_dir / keyfiles.PEER_FILE), "--out", str(revealed)])
    if status:
        return status
    original, restored = pydicom.dcmread(source), pydicom.dcmread(revealed / source.name)
    keywords = ("PatientName", "PatientID", "PatientBirthDate", "StudyInstanceUID", "SOPInstanceUID")
    same = all(original.get(k) == restored.get(k) for k in keywords)
    print(f"demo: re-identified header {'matches' if same else 'DOES NOT match'} the original "
          f"({', '.join(keywords)})")
    return 0 if same else 1


def _deep_hide(args: argparse.Namespace) -> int:
    from . import deepstego

    try:
        print(deepstego.hide_files(args.cover, args.secret, args.out))
    except OSError as exc:
        raise InputError(_reason(exc)) from None
    return 0


def _deep_reveal(args: argparse.Namespace) -> int:
    """Exit status 1 when the recovery is blank: nothing was hidden in the image."""
    from . import deepstego

    try:
        line, blank = deepstego.reveal_file(args.stego, args.out)
    except OSError as exc:
        raise InputError(_reason(exc)) from None
    print(line)
    return 1 if blank else 0


def _train_deepstego(args: argparse.Namespace) -> int:
    from stegonode import models

    models.require_training_extra("train-deepstego")
    import torch

    from stegonode.training.deepstego_fit import TrainConfig

    from stegonode.training import deepstego as deeptrain

    torch.set_num_threads(args.threads)
    config = TrainConfig(seed=args.seed, **({"steps": args.steps} if args.steps else {}))
    out = args.out or args.workdir
    print(deeptrain.train_deepstego(config, args.workdir, out))
    print(f"wrote {out}: weights and their ONNX export, {deeptrain.CARD}, {deeptrain.EXAMPLES}/")
    return 0


def _report(args: argparse.Namespace) -> int:
    import importlib.util

    from stegonode.errors import MissingExtraError
    from stegonode.models import require_training_extra

    require_training_extra("report")
    missing = [name for name in ("matplotlib", "markdown") if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtraError("report", missing, extra="report")
    from stegonode.training import report

    if args.trials < 1 or args.phantoms < 0:
        raise ConfigError("--trials must be >= 1 and --phantoms >= 0")
    images = report.image_files(args.images) if args.images else report.default_images()
    if not images:
        raise InputError("no image files found in --images")
    settings = report.Settings(images=images, out=args.out, trials=args.trials, phantoms=args.phantoms)
    with tqdm(total=report.stages(settings), unit="step", file=sys.stderr) as bar:

        def progress(stage: str) -> None:
            bar.set_description(stage[:40])
            bar.update(1)

        md, html = report.build(settings, progress)
        bar.update(bar.total - bar.n)  # fewer cipher images than planned: close the bar    print(f"wrote {md}, {html} and the plots beside them")
    return 0


def _deepstego_report(args: argparse.Namespace) -> int:
    from stegonode.models import require_training_extra

    require_training_extra("deepstego-report")
    from stegonode.models import deepnet

    from stegonode.training import deepstego as deeptrain

    print(deeptrain.report(deepnet.load(args.weights), deeptrain.sources()))
    return 0


def _export_onnx(args: argparse.Namespace) -> int:
    """The ONNX files of the runtime from the torch weights: reproducible, see tests/test_lean_runtime.py."""
    from stegonode import models

    models.require_training_extra("export-onnx")
    from stegonode.models import deepnet, deepstego, foreground, maskrcnn

    source = args.weights or Path(models.__file__).parent
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    for name in (maskrcnn.WEIGHTS.name, deepnet.WEIGHTS.name):
        if not (source / name).is_file():
            raise InputError(f"{source / name} not found: export-onnx reads {maskrcnn.WEIGHTS.name} and "
                             f"{deepnet.WEIGHTS.name} from the --weights folder")
    maskrcnn.export_onnx(source / maskrcnn.WEIGHTS.name, out / foreground.WEIGHTS.name)
    deepnet.export_onnx(source / deepnet.WEIGHTS.name, out / deepstego.HIDE.name, out / deepstego.REVEAL.name)
    for path in (foreground.WEIGHTS, deepstego.HIDE, deepstego.REVEAL):
        print(f"wrote {out / path.name} ({(out / path.name).stat().st_size / 2**20:.1f} MiB)")
    return 0
