"""Seed 000 image-in-image steganography on files: deep-hide, deep-reveal."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from stegonode.errors import InputError

from .common import (
    failure_reason,
)


def add_commands(sub: Any) -> None:
    hide = sub.add_parser("deep-hide", help="hide a secret image in a cover image (seed-000 networks)")
    hide.add_argument("cover", type=Path, metavar="COVER", help="PNG (grayscale or RGB) or DICOM")
    hide.add_argument("secret", type=Path, metavar="SECRET", help="PNG of the same size as COVER")
    hide.add_argument("--out", type=Path, required=True, metavar="STEGO", help="PNG, or DICOM for a DICOM cover")
    hide.set_defaults(run=_deep_hide)

    unhide = sub.add_parser("deep-reveal", help="recover the secret image from a stego image alone")
    unhide.add_argument("stego", type=Path, metavar="STEGO", help="PNG or DICOM written by deep-hide")
    unhide.add_argument("--out", type=Path, required=True, metavar="SECRET", help="PNG")
    unhide.set_defaults(run=_deep_reveal)


def _deep_hide(args: argparse.Namespace) -> int:
    from stegonode.node import deepstego

    try:
        print(deepstego.hide_files(args.cover, args.secret, args.out))
    except OSError as exc:
        raise InputError(failure_reason(exc)) from None
    return 0


def _deep_reveal(args: argparse.Namespace) -> int:
    """Exit status 1 when the recovery is blank: nothing was hidden in the image."""
    from stegonode.node import deepstego

    try:
        line, blank = deepstego.reveal_file(args.stego, args.out)
    except OSError as exc:
        raise InputError(failure_reason(exc)) from None
    print(line)
    return 1 if blank else 0
