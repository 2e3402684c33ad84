"""The ``stegonode`` command line: keygen, protect, reveal, demo, and the deep stego commands."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pydicom
from pydicom.errors import InvalidDicomError
from tqdm import tqdm

from stegonode.codecs import keys as keyfiles
from stegonode.codecs.errors import InputError, StegonodeError
from stegonode.handlers.collect import described
from stegonode.handlers.pipeline import Pipeline, build_pipeline
from stegonode.handlers.reveal import reveal

from . import config as node_config


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").setLevel(logging.ERROR)  # pydicom's value-length chatter
    try:
        return args.run(args)
    except StegonodeError as exc:
        print(f"stegonode: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stegonode", description=__doc__)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    keygen = sub.add_parser("keygen", help="write DIR/node.keys and DIR/peer.keys (mode 0600)")
    keygen.add_argument("directory", type=Path, metavar="DIR")
    keygen.add_argument("--force", action="store_true", help="overwrite existing key files")
    keygen.set_defaults(run=_keygen)

    protect = sub.add_parser("protect", help="seal patient identity into the pixels, de-identify")
    protect.add_argument("inputs", nargs="+", type=Path, metavar="IN", help="DICOM files or folders")
    protect.add_argument("--out", type=Path, required=True, metavar="DIR")
    protect.add_argument("--keys", type=Path, required=True, help="node.keys")
    protect.add_argument("--config", type=Path, help="node.toml (embedded defaults otherwise)")
    protect.set_defaults(run=_protect)

    reveal_ = sub.add_parser("reveal", help="recover the patient identity from protected files")
    reveal_.add_argument("inputs", nargs="+", type=Path, metavar="IN")
    reveal_.add_argument("--keys", type=Path, required=True, help="peer.keys")
    reveal_.add_argument("--json", action="store_true", help="one JSON object per file per line")
    reveal_.add_argument("--out", type=Path, metavar="DIR", help="write re-identified DICOM files")
    reveal_.set_defaults(run=_reveal)

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
    train.add_argument("--out", type=Path, help="where weights, model card and examples go "
                       "(default: the models package, replacing the shipped weights)")
    train.set_defaults(run=_train_deepstego)

    report = sub.add_parser("deepstego-report", help="the seed-000 table on the held-out set")
    report.add_argument("--weights", type=Path, help="weights file (default: the shipped ones)")
    report.set_defaults(run=_deepstego_report)
    return parser


def _keygen(args: argparse.Namespace) -> int:
    node_path, peer_path = keyfiles.generate(args.directory, overwrite=args.force)
    print(f"wrote {node_path} (for the node) and {peer_path} (for peers that reveal); keep both secret")
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
        except (StegonodeError, InvalidDicomError, OSError) as exc:
            failed += 1
            line = failure(path, _reason(exc))
        tqdm.write(line, file=sys.stdout)
    return 1 if failed else 0


def _reason(exc: Exception) -> str:
    if isinstance(exc, InvalidDicomError):
        return "not a DICOM file (no DICM preamble or unreadable header)"
    if isinstance(exc, OSError):
        return f"cannot read or write the file ({exc.strerror or type(exc).__name__})"
    return str(exc)


def read_dicom(path: Path) -> pydicom.Dataset:
    """Read a whole DICOM file; truncated or malformed files raise InputError."""
    try:
        return pydicom.dcmread(path)
    except (EOFError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"truncated or malformed DICOM file ({type(exc).__name__})") from None


def _write(ds: pydicom.Dataset, out: Path, relative: Path) -> None:
    target = out / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(target, enforce_file_format=True)


def _pipeline(config_path: Path | None, keys_path: Path) -> Pipeline:
    config = node_config.load(config_path)
    keys = keyfiles.load_node_keys(keys_path)
    return build_pipeline(config["pipeline"]["handlers"], config["handlers"], keys)


def _protect(args: argparse.Namespace) -> int:
    pipeline = _pipeline(args.config, args.keys)

    def work(path: Path, relative: Path) -> str:
        start = time.perf_counter()
        ds = read_dicom(path)
        instance = pipeline.protect(ds)
        _write(ds, args.out, relative)
        r = instance.report
        return (
            f"OK {path}: payload {r.get('payload_bytes', 0)} B, PSNR {r.get('psnr_db', float('inf')):.1f} dB "
            f"(peak 2^BitsStored-1; {r.get('psnr_65535_db', float('inf')):.1f} dB at 65535), "
            f"{r.get('changed_pixels', 0)} pixels changed, {1000 * (time.perf_counter() - start):.0f} ms"
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
            document = {"file": str(path), "ok": True, "error": None, "attributes": attributes}
            return json.dumps(document, ensure_ascii=False)
        return f"OK {path}: {len(attributes)} identifying attributes recovered"

    def failure(path: Path, reason: str) -> str:
        if args.json:
            return json.dumps({"file": str(path), "ok": False, "error": reason, "attributes": {}})
        return _failure_line(path, reason)

    return _run_each(args.inputs, work, failure)


def _demo(args: argparse.Namespace) -> int:
    """Protect the bundled real CT 693_UNCR (pydicom-data), reveal it, compare with the original."""
    from pydicom.data import get_testdata_file

    source = Path(get_testdata_file("693_UNCR.dcm"))
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
    except (OSError, InvalidDicomError) as exc:
        raise InputError(_reason(exc)) from None
    return 0


def _deep_reveal(args: argparse.Namespace) -> int:
    """Exit status 1 when the recovery is blank: nothing was hidden in the image."""
    from . import deepstego

    try:
        line, blank = deepstego.reveal_file(args.stego, args.out)
    except (OSError, InvalidDicomError) as exc:
        raise InputError(_reason(exc)) from None
    print(line)
    return 1 if blank else 0


def _train_deepstego(args: argparse.Namespace) -> int:
    import torch

    from stegonode import models
    from stegonode.models.training import TrainConfig

    from . import deepstego

    torch.set_num_threads(args.threads)
    config = TrainConfig(seed=args.seed, **({"steps": args.steps} if args.steps else {}))
    out = args.out or Path(models.__file__).parent
    print(deepstego.train_deepstego(config, args.workdir, out))
    print(f"wrote {out}: weights, {deepstego.CARD}, {deepstego.EXAMPLES}/")
    return 0


def _deepstego_report(args: argparse.Namespace) -> int:
    from stegonode.models import deepstego as networks

    from . import deepstego

    print(deepstego.report(networks.load(args.weights), deepstego.sources()))
    return 0
