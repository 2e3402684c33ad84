"""The ``stegonode`` command line, one module per command group:

- objects: keygen, protect, reveal, demo
- keyring: keys objects, keys reseal
- ciphers: encrypt, decrypt, cipher-report
- segmentation: segment
- serving: serve, worker, web, status, orthanc-config
- fetching: fetch
- deep: deep-hide, deep-reveal
- training: train-segmenter, train-deepstego, deepstego-report, export-onnx, report

Training, export and the report need the ``train`` extra (torch); every other command runs on
numpy and ONNX Runtime alone. A module adds its commands (``add_commands``); each command's
``run`` gets the parsed arguments and returns the exit status.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from stegonode.errors import StegonodeError, public_message

# The groups are imported when the parser is built, not with this package: the console script
# imports it, and so does every worker process the node spawns (multiprocessing re-runs the
# parent's main script), which needs none of them.
GROUPS = ("objects", "keyring", "serving", "fetching", "ciphers", "segmentation", "training", "deep")


def main(argv: list[str] | None = None) -> int:
    from stegonode.dicom.dicomfile import configure_pydicom

    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    configure_pydicom()
    try:
        return int(args.run(args))
    except Exception as exc:  # never a traceback: its text may quote a value of the input
        print(f"stegonode: {public_message(exc, 'running the command')}", file=sys.stderr)
        return 2 if isinstance(exc, StegonodeError) else 1


def parser() -> argparse.ArgumentParser:
    """Every group's commands under one ``stegonode`` parser."""
    result = argparse.ArgumentParser(prog="stegonode", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = result.add_subparsers(required=True, metavar="COMMAND")
    for group in GROUPS:
        importlib.import_module(f"{__name__}.{group}").add_commands(sub)
    return result
