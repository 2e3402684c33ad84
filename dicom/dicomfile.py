"""Reading DICOM objects whatever they contain: one reader for the command line, the node and
its workers, and the pydicom settings every process shares.

:func:`read_dicom` either returns a data set whose every element decodes, with consistent file
meta, or raises :class:`~stegonode.errors.InputError` with a reason that names tags and
VRs, never values. :func:`configure_pydicom` makes pydicom keep values as received (no
validation) and reduces whatever pydicom still warns or logs to the tag and the VR: its
messages quote the offending value, which may identify a patient.
"""

from __future__ import annotations

import io
import logging
import os
import re
import warnings
import zlib
from typing import BinaryIO

import pydicom
from pydicom import Dataset
from pydicom import config as pydicom_config
from pydicom.errors import BytesLengthException, InvalidDicomError
from pydicom.tag import Tag
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian

from stegonode.errors import InconsistentFileMetaError, InputError

from .deflated import deflated_file

log = logging.getLogger(__name__)

# Deeper than any image IOD nests (enhanced multi-frame objects use 4-5 levels); deeper nesting
# is refused before any recursive code (copying, de-identifying) walks it.
MAX_SEQUENCE_DEPTH = 16
_TAG = re.compile(r"\(([0-9A-Fa-f]{4}), ?([0-9A-Fa-f]{4})\)")
_VR = re.compile(r"\bVR '?([A-Z]{2})\b")
_TRACEBACK = "Traceback (most recent call last)"
THIRD_PARTY = ("pydicom", "pynetdicom", "py")  # py: py.warnings


class WithoutValues(logging.Filter):
    """Reduces a third-party log record to one line that cannot carry a value.

    pydicom quotes the value it warns about; pynetdicom logs tracebacks whose last line may hold
    an element's value. What is kept: the tag and VR a pydicom message names, at log level DEBUG
    only (a malformed object makes hundreds of them); the first line of a pynetdicom message,
    minus quoted text; never exception text or a traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.split(".")[0] not in THIRD_PARTY:
            return True  # stegonode's own messages carry no values by contract
        text = record.getMessage()
        if _TRACEBACK in text:
            return False  # pynetdicom's hand-formatted traceback: the line before says what failed
        if record.name.startswith("pydicom") or record.name == "py.warnings":
            if not logging.getLogger("stegonode").isEnabledFor(logging.DEBUG):
                return False  # one hostile object makes hundreds; the reader's refusal says why
            record.msg = _where(text) + " (value withheld: it may identify a patient)"
        else:
            first = next((line for line in text.splitlines() if line.strip()), "")
            record.msg = re.sub(r"'[^']*'|\"[^\"]*\"", "'...'", first.strip())
        record.args = ()
        record.exc_info = record.exc_text = record.stack_info = None
        return True


def _where(text: str) -> str:
    tag, vr = _TAG.search(text), _VR.search(text)
    parts = [f"element ({tag[1]},{tag[2]})" if tag else "", f"VR {vr[1]}" if vr else ""]
    return "warning on " + (" ".join(part for part in parts if part) or "an element")


def configure_pydicom() -> None:
    """The pydicom settings of every stegonode process (command line, node, worker).

    Values are kept as received: validating them could only warn, quoting the value, and
    costs about 5 % of a C-STORE. Python warnings go to logging, and every record of pydicom,
    pynetdicom and the warnings module passes :class:`WithoutValues` on the root handlers (call
    this after configuring logging).
    """
    pydicom_config.settings.reading_validation_mode = pydicom_config.IGNORE
    pydicom_config.settings.writing_validation_mode = pydicom_config.IGNORE
    logging.captureWarnings(True)
    # pydicom logs each warning too (pydicom.misc.warn_and_log); its log record is the one kept.
    warnings.filterwarnings("ignore", module=r"pydicom(\.|$)")
    # On the handlers: a logger's own filters do not see its children's records (pynetdicom.dul).
    for handler in [*logging.getLogger().handlers, logging.lastResort]:  # lastResort: no logging set up
        if handler is not None and not any(isinstance(f, WithoutValues) for f in handler.filters):
            handler.addFilter(WithoutValues())
    logging.getLogger("py.warnings").setLevel(logging.ERROR)  # value-length chatter


def read_dicom(source: str | os.PathLike | BinaryIO | bytes, *, meta_binds: bool = False) -> Dataset:
    """Read a whole DICOM object; every element decoded, file meta repaired or refused.

    ``meta_binds``: the file meta states what the object must be (over the network it holds the
    C-STORE request's Affected SOP Class/Instance UIDs), so meta and data set naming different
    instances is refused with InconsistentFileMetaError. Otherwise (a file on disk) the data
    set's own UIDs are the object's identity and the meta is repaired from them.

    Raises InputError naming what is wrong: not DICOM, truncated, a Deflated transfer syntax
    over a body that is not deflated, a malformed file-meta element, an element whose VR is
    unknown or whose length does not fit its VR, sequences nested too deep, or file meta that
    contradicts the data set.
    """
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    try:
        ds = pydicom.dcmread(source)
    except InvalidDicomError:
        raise InputError("not a DICOM file (no DICM preamble or unreadable header)") from None
    except zlib.error:
        raise InputError("transfer syntax says deflate-compressed, but the body does not inflate") from None
    except RecursionError:
        raise InputError(f"sequences nested more than {MAX_SEQUENCE_DEPTH} levels deep") from None
    except OSError:
        raise
    except Exception as exc:  # pydicom raises many types for a malformed or cut stream
        raise InputError(f"truncated or malformed DICOM file ({type(exc).__name__})") from None
    _check_transfer_syntax(ds)
    _decode_every_element(ds)
    repair_file_meta(ds, meta_binds)
    return ds


def dicom_bytes(ds: Dataset) -> bytes:
    """``ds`` as a DICOM file (preamble and file meta), as the node stores it."""
    if ds.file_meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian:
        return deflated_file(ds)  # level 9, a deflate block per kind of bytes
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _check_transfer_syntax(ds: Dataset) -> None:
    syntax = ds.file_meta.get("TransferSyntaxUID")
    if syntax is None:
        raise InputError("file meta has no Transfer Syntax UID")
    if not (UID(str(syntax)).is_valid and UID(str(syntax)).is_transfer_syntax):
        raise InputError("file meta: Transfer Syntax UID is malformed or not a transfer syntax")


def _decode_every_element(ds: Dataset) -> None:
    """Convert every element (pydicom decodes lazily), iteratively and depth-limited."""
    stack = [(ds, 0)]
    while stack:
        dataset, depth = stack.pop()
        for tag in list(dataset.keys()):
            try:
                element = dataset[tag]
            except RecursionError:
                raise InputError(f"sequences nested more than {MAX_SEQUENCE_DEPTH} levels deep") from None
            except Exception as exc:
                raise InputError(f"element {Tag(tag)}: {_element_problem(exc)}") from None
            if element.VR == "SQ" and element.value:
                if depth >= MAX_SEQUENCE_DEPTH:
                    raise InputError(f"sequences nested more than {MAX_SEQUENCE_DEPTH} levels deep "
                                     f"(at {Tag(tag)})")
                stack.extend((item, depth + 1) for item in element.value)


def _element_problem(exc: Exception) -> str:
    """What is wrong with an element, from pydicom's exception, without its value."""
    if isinstance(exc, BytesLengthException):
        vr = _VR.search(str(exc)) or re.search(r"VR '([A-Z]{2})'", str(exc))
        return f"value length does not fit its VR{' ' + vr[1] if vr else ''}"
    if isinstance(exc, NotImplementedError) and "Value Representation" in str(exc):
        return "unknown VR"
    return f"value does not decode ({type(exc).__name__})"


def _named(uid: object) -> object:
    """A UID element's value, None where it is empty (padding only)."""
    return uid if uid is not None and str(uid).strip("\0 ") else None


def repair_file_meta(ds: Dataset, meta_binds: bool = False) -> None:
    """Media Storage SOP Class/Instance UID made to agree with the data set's SOP Class/Instance
    UID: a side that lacks one (or has it empty) takes the other's; when both have one and they
    differ, the data set's wins, unless ``meta_binds``. An object that names neither is refused:
    every object without its own instance UID would otherwise become the same instance."""
    meta = ds.file_meta
    for meta_keyword, keyword, name in (
        ("MediaStorageSOPInstanceUID", "SOPInstanceUID", "SOP Instance UID"),
        ("MediaStorageSOPClassUID", "SOPClassUID", "SOP Class UID"),
    ):
        in_meta, in_data = _named(meta.get(meta_keyword)), _named(ds.get(keyword))
        if in_data is None and in_meta is None:
            raise InputError(f"no {name} in the data set or its file meta")
        if in_data is None:
            setattr(ds, keyword, in_meta)
            log.info("data set lacked %s: taken from the file meta", name)
        elif in_meta is None or str(in_meta).strip("\0 ") != str(in_data).strip("\0 "):
            if in_meta is not None and meta_binds:
                raise InconsistentFileMetaError(name)
            setattr(meta, meta_keyword, in_data)
            log.info("file meta %s Media Storage %s: taken from the data set",
                     "lacked" if in_meta is None else "contradicted", name)
