"""Pixel encryption on files: encrypt, decrypt, cipher-report."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from stegonode.codecs import cipher_stats
from stegonode.codecs import keys as keyfiles
from stegonode.dicom.dicomfile import read_dicom
from stegonode.dicom.pixels import PixelFormat, read_pixels
from stegonode.errors import ConfigError, InputError
from stegonode.handlers.encrypt import (
    CIPHERS,
    EncryptHandler,
    cipher_report,
    decrypt_dataset,
    encrypt_dataset,
    pixel_words,
)
from stegonode.node import config as node_config

from .common import (
    run_each,
    write_dataset,
)


def add_commands(sub: Any) -> None:
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
        write_dataset(ds, args.out, relative)
        return f"OK {path}: pixels encrypted ({args.cipher}), {1000 * (time.perf_counter() - start):.0f} ms"

    return run_each(args.inputs, work)


def _decrypt(args: argparse.Namespace) -> int:
    keys = keyfiles.load_peer_keys(args.keys)

    def work(path: Path, relative: Path) -> str:
        ds = read_dicom(path)
        block = decrypt_dataset(ds, keys.pixel_cipher_key)
        if block is None:
            raise InputError("pixels are not encrypted (no stegonode cipher block)")
        write_dataset(ds, args.out, relative)
        return f"OK {path}: pixels decrypted ({block.cipher}), authentication verified"

    return run_each(args.inputs, work)


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

    status = run_each(args.inputs, work)
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
