"""What the file commands share: every file of the inputs, one line each, the exit status."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pydicom
from tqdm import tqdm

from stegonode.codecs import keys as keyfiles
from stegonode.dicom.dicomfile import dicom_bytes
from stegonode.errors import KeyFileError, public_message
from stegonode.handlers.pipeline import pixels_only_notice
from stegonode.node.config import Config


def input_files(inputs: list[Path]) -> Iterator[tuple[Path, Path]]:
    """(file, output name relative to --out): a folder's files keep their relative paths."""
    for item in inputs:
        if item.is_dir():
            for path in sorted(p for p in item.rglob("*") if p.is_file()):
                yield path, path.relative_to(item)
        else:
            yield item, Path(item.name)


def failure_line(path: Path, reason: str) -> str:
    return f"FAIL {path}: {reason}"


def run_each(
    inputs: list[Path],
    work: Callable[[Path, Path], str],
    failure: Callable[[Path, str], str] = failure_line,
) -> int:
    """Apply ``work`` to every file, one line each; exit status 1 if any failed."""
    files = list(input_files(inputs))
    failed = 0
    bar = tqdm(files, unit="file", disable=len(files) < 2 or not on_terminal(), file=sys.stderr, leave=False)
    for path, relative in bar:
        try:
            line = work(path, relative)
        except Exception as exc:  # one bad file never stops the batch, whatever it raises
            failed += 1
            line = failure(path, failure_reason(exc))
        tqdm.write(line, file=sys.stdout)
    return 1 if failed else 0


def on_terminal() -> bool:
    """Progress bars are for a person at a terminal: never drawn into a pipe or a log."""
    return sys.stderr.isatty()


def failure_reason(exc: Exception) -> str:
    """A one-line reason for a file (:func:`stegonode.errors.public_message`)."""
    return public_message(exc, "processing the file")


def write_dataset(ds: pydicom.Dataset, out: Path, relative: Path) -> None:
    # encoded first: a data set that does not encode leaves no partial file
    write_file(dicom_bytes(ds), out, relative)


def write_file(data: bytes, out: Path, relative: Path) -> None:
    target = out / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


CARRIER_NOTES = {
    "core": " (core attributes in the pixels, all in the header)",
    "none": " (background too small for the pixel carrier)",
    "off": " (pixel carrier off)",
}


def carriers_text(report: dict) -> str:
    """Which carriers protect writes said it wrote, and why the pixels carry less if they do."""
    if "pixel_obstacle" in report:
        return f"{report.get('carriers', '')} (no pixel carrier: {report['pixel_obstacle']})"
    return str(report.get("carriers", "")) + CARRIER_NOTES.get(str(report.get("pixel_attributes")), "")


def say_if_pixels_only(config: Config, keys: keyfiles.NodeKeys) -> None:
    notice = pixels_only_notice(config["pipeline"]["carriers"], keys)
    if notice:
        print(f"stegonode: {notice}", file=sys.stderr)


def pixel_cipher_key(path: Path) -> bytes:
    """The pixel-cipher key of a node.keys or a peer.keys file."""
    try:
        return keyfiles.load_peer_keys(path).pixel_cipher_key
    except KeyFileError:
        return keyfiles.load_node_keys(path).pixel_cipher_key
