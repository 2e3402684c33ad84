"""Commands on DICOM files and keys: keygen, protect, reveal, and demo (both on a bundled CT)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import pydicom

from stegonode.codecs import keys as keyfiles
from stegonode.codecs.registry import CIPHERS
from stegonode.dicom.dicomfile import read_dicom
from stegonode.errors import KeyFileError
from stegonode.handlers.collect import described
from stegonode.handlers.pipeline import configured_pipeline
from stegonode.handlers.protect import protect_object
from stegonode.handlers.reveal import reveal, reveal_document
from stegonode.node import config as node_config
from stegonode.node.keyring import keys_for

from .common import carriers_text, failure_line, run_each, say_if_pixels_only, write_dataset, write_file


def add_commands(sub: Any) -> None:
    keygen = sub.add_parser("keygen", help="write DIR/node.keys and DIR/peer.keys (mode 0600)")
    keygen.add_argument("directory", type=Path, metavar="DIR")
    keygen.add_argument("--force", action="store_true", help="overwrite existing key files")
    keygen.add_argument("--certificate", type=Path, metavar="CERT",
                        help="the header carrier's recipient: this X.509 certificate (PEM or DER, RSA) "
                             "instead of a new self-signed one")
    keygen.add_argument("--private-key", type=Path, metavar="KEY",
                        help="with --certificate: its unencrypted private key, copied into peer.keys")
    keygen.add_argument("--recipient", metavar="NAME",
                        help="instead: a new recipient for the node of --node-keys: DIR/NAME.recipient (its "
                             "public keys, for [handlers.seal] recipients) and DIR/NAME.peer.keys (for it)")
    keygen.add_argument("--node-keys", type=Path, metavar="FILE", help="with --recipient: the node's node.keys")
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
    reveal_.add_argument("--keys", type=Path, required=True, action="append",
                         help="peer.keys; repeat to hold several (after key rotation): each file is "
                              "revealed with the one it was sealed for")
    reveal_.add_argument("--json", action="store_true", help="one JSON object per file per line")
    reveal_.add_argument("--out", type=Path, metavar="DIR", help="write re-identified DICOM files")
    reveal_.set_defaults(run=_reveal)

    demo = sub.add_parser("demo", help="protect and reveal a bundled real CT (693_UNCR)")
    demo.add_argument("--workdir", type=Path, default=Path("stegonode-demo"))
    demo.set_defaults(run=_demo)


def _keygen(args: argparse.Namespace) -> int:
    if args.recipient is not None:
        if args.node_keys is None:
            raise KeyFileError("--recipient needs --node-keys (the node.keys of the node that seals for it)")
        public_path, peer_path = keyfiles.generate_recipient(
            args.directory, args.recipient, args.node_keys, overwrite=args.force,
            certificate=args.certificate, private_key=args.private_key)
        recipient = keyfiles.load_recipient(public_path)
        print(f"wrote {public_path} (list it in [handlers.seal] recipients) and {peer_path} "
              f"(for the recipient; keep it secret); key ids {recipient.key_ids}")
        return 0
    node_path, peer_path = keyfiles.generate(args.directory, overwrite=args.force,
                                             certificate=args.certificate, private_key=args.private_key)
    print(f"wrote {node_path} (for the node) and {peer_path} (for peers that reveal); keep both secret")
    if args.certificate and not args.private_key:
        print(f"{peer_path} holds no private key for {args.certificate}: it reveals from the pixels only; "
              "the certificate's owner opens the header carrier with its own key")
    return 0


def _protect(args: argparse.Namespace) -> int:
    return protect_files(args.inputs, args.out, args.keys, args.config, args.encrypt, args.segmenter)


def protect_files(inputs: list[Path], out: Path, keys_path: Path, config_path: Path | None = None,
                  cipher: str | None = None, segmenter: str | None = None) -> int:
    """``stegonode protect``: every file of ``inputs`` protected into ``out``, one line each."""
    config = node_config.load(config_path)
    keys = keyfiles.load_node_keys(keys_path)
    say_if_pixels_only(config, keys)
    pipeline = configured_pipeline(config, keys, cipher, segmenter)

    def work(path: Path, relative: Path) -> str:
        start = time.perf_counter()
        protected = protect_object(path, pipeline)
        write_file(protected.data, out, relative)
        r = protected.report
        if protected.kept:
            return (f"OK {path}: already protected by stegonode, kept as it is (not protected again), "
                    f"{1000 * (time.perf_counter() - start):.0f} ms")
        if "pixel_obstacle" in r:  # pixels untouched: no payload, no distortion to report
            return (f"OK {path}: carriers {carriers_text(r)}, header {r.get('header_bytes', 0)} B, "
                    f"{1000 * (time.perf_counter() - start):.0f} ms")
        return (
            f"OK {path}: carriers {carriers_text(r)}, "
            f"payload {r.get('payload_bytes', 0)} B, PSNR {r.get('psnr_db', float('inf')):.1f} dB "
            f"(peak 2^BitsStored-1; {r.get('psnr_65535_db', float('inf')):.1f} dB at 65535), "
            f"{r.get('identity_residues_removed', 0)} identity residues removed, "
            f"{r.get('changed_pixels', 0)} pixels changed, "
            + (f"pixels encrypted ({r['cipher']}), " if "cipher" in r else "")
            + f"{1000 * (time.perf_counter() - start):.0f} ms"
        )

    return run_each(inputs, work)


def _reveal(args: argparse.Namespace) -> int:
    return reveal_files(args.inputs, args.keys, args.out, args.json)


def reveal_files(inputs: list[Path], keys_path: Path | list[Path], out: Path | None = None,
                 as_json: bool = False) -> int:
    """``stegonode reveal``: every file of ``inputs`` revealed (into ``out``, if given), one line
    (or one JSON object) each, with the peer.keys (of several) it was sealed for."""
    keyring = [keyfiles.load_peer_keys(path) for path in ([keys_path] if isinstance(keys_path, Path) else keys_path)]

    def work(path: Path, relative: Path) -> str:
        ds = read_dicom(path)
        revealed = reveal(ds, keys_for(ds, keyring))
        if out:
            write_dataset(revealed.dataset, out, relative)
        attributes = described(revealed.attributes)
        if as_json:
            return json.dumps(reveal_document(str(path), attributes, carrier=revealed.carrier,
                                              confirmed_by=revealed.confirmed_by, complete=revealed.complete),
                              ensure_ascii=False)
        confirmed = f", confirmed by the {revealed.confirmed_by[0]}" if revealed.confirmed_by else ""
        partial = "" if revealed.complete else " (the core ones only: the header carrier is gone)"
        return (f"OK {path}: {len(attributes)} identifying attributes recovered{partial} "
                f"from the {revealed.carrier}{confirmed}")

    def failure(path: Path, reason: str) -> str:
        if as_json:
            return json.dumps(reveal_document(str(path), None, reason))
        return failure_line(path, reason)

    return run_each(inputs, work, failure)


def _demo(args: argparse.Namespace) -> int:
    """Protect the bundled real CT 693_UNCR (pydicom-data), reveal it, compare with the original."""
    from pydicom.data import get_testdata_file

    source = Path(str(get_testdata_file("693_UNCR.dcm")))
    keys_dir, protected, revealed = (args.workdir / name for name in ("keys", "protected", "revealed"))
    if not (keys_dir / keyfiles.PEER_FILE).exists():
        keyfiles.generate(keys_dir)
    print(f"demo: protecting {source.name} (real CT from pydicom-data) into {protected}/")
    status = protect_files([source], protected, keys_dir / keyfiles.NODE_FILE)
    if status:
        return status
    stego = pydicom.dcmread(protected / source.name)
    print(f"demo: protected header shows PatientName={stego.PatientName}, PatientID={stego.PatientID}")
    print(f"demo: revealing with {keys_dir / keyfiles.PEER_FILE} into {revealed}/")
    status = reveal_files([protected / source.name], keys_dir / keyfiles.PEER_FILE, revealed)
    if status:
        return status
    original, restored = pydicom.dcmread(source), pydicom.dcmread(revealed / source.name)
    keywords = ("PatientName", "PatientID", "PatientBirthDate", "StudyInstanceUID", "SOPInstanceUID")
    same = all(original.get(k) == restored.get(k) for k in keywords)
    print(f"demo: re-identified header {'matches' if same else 'DOES NOT match'} the original "
          f"({', '.join(keywords)})")
    return 0 if same else 1
