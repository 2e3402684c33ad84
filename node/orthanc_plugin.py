"""stegonode inside Orthanc: a plugin for Orthanc's Python plugin, and its configuration.

Orthanc (Debian's 1.10 with orthanc-python 4.0) hands every received instance to
:meth:`Protector.received` before it stores anything. The instance is protected there, by the
pipeline node.toml describes, and Orthanc stores the protected bytes (MODIFY): Orthanc never
stores, indexes or serves the original. The C-STORE is answered once the protected object is
stored, so nothing acknowledged can be lost (Orthanc writes with ``SyncStorageArea``).

What the pipeline cannot protect is refused with a DICOM failure status, as the node refuses it
(:func:`stegonode.node.ingest.refusal`, and the error classes of :mod:`stegonode.errors`).
The received-instance callback cannot answer a status itself, so it replaces the refused object
by a marker, a data set holding nothing but a fresh random UID, and the incoming C-STORE filter,
which Orthanc calls next, answers the marker's status: nothing is stored, and the original goes
no further than the callback. The reason is logged in Orthanc's log with the instance's new
(pseudonymous) UID; Orthanc 1.10 sends no Error Comment.

An object that is already a stegonode stego object (from a node or another Orthanc with this
plugin) is stored as it is: protecting it again would overwrite the identity it carries.

That is callback mode (``[orthanc] mode = "callback"``, the default). Orthanc 1.10 runs the
callbacks one at a time, so protection there uses one core. In queue mode
(:mod:`stegonode.node.orthanc_queue`) the callback answers once the received bytes are durable
and worker processes protect them.

``stegonode orthanc-config`` writes Orthanc's configuration and the launcher script that
Orthanc's ``PythonScript`` names (:func:`write_config`).
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import site
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from stegonode.codecs import keys as keyfiles
from stegonode.dicom.dicomfile import configure_pydicom, read_dicom
from stegonode.dicom.pseudonyms import Pseudonymizer
from stegonode.errors import ConfigError, Failure, InputError, UnsupportedImageError
from stegonode.handlers.pipeline import Pipeline, pipeline_for, pixels_only_notice, pseudonymizer
from stegonode.handlers.protect import protect_object
from stegonode.handlers.protection import already_protected

from . import config as node_config
from .config import Config
from .ingest import CANNOT_UNDERSTAND, DATASET_DOES_NOT_MATCH_SOP_CLASS, OUT_OF_RESOURCES, job_key, refusal

log = logging.getLogger("stegonode.orthanc")

PYTHON_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancPython.so")  # Debian's orthanc-python
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")  # Debian's orthanc-dicomweb
LAUNCHER = "stegonode_plugin.py"

# Orthanc's "PythonScript": puts the virtual environment (and any PYTHONPATH the configuration
# was written with) before Debian's dist-packages, then registers the plugin. Should anything
# fail, it refuses every instance rather than let Orthanc store one unprotected.
_LAUNCHER_TEXT = '''\
# Written by `stegonode orthanc-config`: Orthanc's Python plugin runs it at start ("PythonScript").
import json
import os
import site
import sys

import orthanc

# One compute thread for numpy's BLAS and ONNX Runtime, as in the node's workers (set before
# they load: they read it once): Orthanc runs the callbacks one at a time, and queue mode's
# worker processes inherit it.
for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[variable] = "1"
# DCMTK (Orthanc's DICOM stack) waits on Nagle's algorithm unless TCP_NODELAY=1 is in the
# environment, read at each association: about 40 ms per C-STORE answer on loopback.
os.environ.setdefault("TCP_NODELAY", "1")
settings = json.loads(orthanc.GetConfiguration()).get("Stegonode", {})
try:
    count = len(sys.path)
    for folder in settings["SitePackages"]:
        site.addsitedir(folder)  # not sys.path.insert: the editable install is a .pth finder
    added = sys.path[count:]
    del sys.path[count:]
    sys.path[0:0] = settings["PythonPath"] + added
    from stegonode.node.native import load_charls_apart

    load_charls_apart()  # before pydicom loads pyjpegls: Orthanc's DCMTK exports CharLS's names
    from stegonode.node.orthanc_plugin import register

    register(orthanc, settings)
except BaseException as exc:
    orthanc.LogError("stegonode: the plugin did not start, every instance is refused: "
                     f"{type(exc).__name__}: {exc}")
    KEEP, DISCARD = orthanc.ReceivedInstanceAction.KEEP_AS_IS, orthanc.ReceivedInstanceAction.DISCARD
    orthanc.RegisterReceivedInstanceCallback(  # C-STORE: kept for the filter, which refuses it
        lambda data, origin: (KEEP if origin == orthanc.InstanceOrigin.DICOM_PROTOCOL else DISCARD, None))
    orthanc.RegisterIncomingCStoreInstanceFilter(lambda instance: 0xA700)
'''


@dataclass(frozen=True)
class Refusal:
    status: int
    reason: str


class Screened(NamedTuple):
    """A received object the pipeline is to protect, with its new (pseudonymous) UID."""

    ds: Dataset
    new_uid: str
    sop_class: UID


class Protector:
    """The received-instance callback and the incoming C-STORE filter, sharing refusals."""

    def __init__(self, orthanc: ModuleType, pipeline: Pipeline, pseudonyms: Pseudonymizer,
                 concurrency: int) -> None:
        self.orthanc = orthanc
        self.pipeline = pipeline
        self.pseudonyms = pseudonyms
        # Orthanc 1.10 runs received-instance callbacks one at a time: this bound only matters
        # for a later Orthanc that runs them concurrently.
        self._slots = threading.BoundedSemaphore(concurrency)
        self._lock = threading.Lock()
        self._refusals: dict[str, Refusal] = {}  # marker UID -> what the filter answers

    def screen(self, data: bytes, origin: Any) -> Screened | tuple[Any, bytes | None]:
        """What needs no pixel decoding: the callback's answer for an object refused or already
        protected (kept as it is), else the data set to protect."""
        try:
            ds = read_dicom(io.BytesIO(data))
        except InputError as exc:
            return self._refuse(Refusal(CANNOT_UNDERSTAND, str(exc)), "", "", origin)
        sop_class = UID(str(ds.get("SOPClassUID", "")))
        new_uid = job_key(self.pseudonyms, ds.get("SOPInstanceUID"))
        refused = refusal(ds, sop_class, self.pipeline.policy, self.pipeline.max_object_bytes)
        if refused is not None:
            return self._refuse(Refusal(*refused), new_uid, sop_class, origin)
        if already_protected(ds):
            log.info("%s is a stegonode stego object already: stored as it is", ds.SOPInstanceUID)
            return self.orthanc.ReceivedInstanceAction.KEEP_AS_IS, None
        return Screened(ds, new_uid, sop_class)

    def received(self, data: bytes, origin: Any) -> tuple[Any, bytes | None]:
        """Orthanc's received-instance callback: the protected bytes, or a refusal marker."""
        action = self.orthanc.ReceivedInstanceAction
        start = time.perf_counter()
        screened = self.screen(data, origin)
        if not isinstance(screened, Screened):
            return screened
        ds, new_uid, sop_class = screened
        try:
            with self._slots:
                protected = protect_object(ds, self.pipeline)
        except Exception as exc:
            return self._refuse(failure(exc), new_uid, sop_class, origin)
        if protected.kept:  # screened out above already; the one rule, should that change
            return action.KEEP_AS_IS, None
        steps = ", ".join(f"{name} {1000 * s:.0f}" for name, s in protected.timings.items())
        log.info("protected %s in %.0f ms (%s); identity residues removed: %d", new_uid,
                 1000 * (time.perf_counter() - start), steps, protected.report.get("identity_residues_removed", 0))
        return action.MODIFY, protected.data

    def cstore_filter(self, instance: Any) -> int:
        """Orthanc's incoming C-STORE filter: 0 stores; a marker gets its refusal status."""
        with self._lock:
            if not self._refusals:
                return 0
        uid = json.loads(instance.GetInstanceSimplifiedJson()).get("SOPInstanceUID", "")
        with self._lock:
            refused = self._refusals.pop(uid, None)
        return 0 if refused is None else refused.status

    def _refuse(self, refused: Refusal, new_uid: str, sop_class: str,
                origin: Any) -> tuple[Any, bytes | None]:
        name = UID(sop_class).name if sop_class else "object"
        log.warning("refused %s (new UID %s) with status 0x%04X: %s", name, new_uid or "unknown",
                    refused.status, refused.reason)
        action = self.orthanc.ReceivedInstanceAction
        if origin != self.orthanc.InstanceOrigin.DICOM_PROTOCOL:
            return action.DISCARD, None  # REST or plugin upload: no C-STORE status to answer
        token = generate_uid()
        with self._lock:
            self._refusals[token] = refused
        return action.MODIFY, _marker(token, sop_class)


def failure(exc: Exception) -> Refusal:
    """The C-STORE status for an object the pipeline failed on, by the node's one rule
    (:class:`stegonode.errors.Failure`): a failure of the environment may succeed if sent
    again (Out of Resources); any other comes from the object and is final (unsupported image,
    else Cannot Understand)."""
    judged = Failure.of(exc)
    if judged.transient:
        return Refusal(OUT_OF_RESOURCES, judged.reason)
    if isinstance(exc, UnsupportedImageError):
        return Refusal(DATASET_DOES_NOT_MATCH_SOP_CLASS, judged.reason)
    return Refusal(CANNOT_UNDERSTAND, judged.reason)


def _marker(token: str, sop_class: str) -> bytes:
    """A data set with nothing of the refused object but its SOP class: what the filter sees."""
    ds = Dataset()
    ds.SOPClassUID = sop_class or SecondaryCaptureImageStorage
    ds.SOPInstanceUID = ds.StudyInstanceUID = ds.SeriesInstanceUID = token
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = UID(token)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


class _OrthancLog(logging.Handler):
    """stegonode's log lines into Orthanc's log."""

    def __init__(self, orthanc: ModuleType) -> None:
        super().__init__()
        self.writers: dict[int, Callable[[str], None]] = {
            logging.ERROR: orthanc.LogError, logging.WARNING: orthanc.LogWarning,
            logging.INFO: orthanc.LogInfo, logging.DEBUG: orthanc.LogInfo,
        }

    def emit(self, record: logging.LogRecord) -> None:
        level = max((lvl for lvl in self.writers if lvl <= record.levelno), default=logging.DEBUG)
        self.writers[level](f"{record.name}: {self.format(record)}")


def register(orthanc: ModuleType, settings: dict[str, Any]) -> Protector:
    """Build the pipeline from node.toml and the key file, then register both callbacks."""
    config = node_config.load(Path(settings["Config"]) if settings.get("Config") else None)
    logger = logging.getLogger("stegonode")
    logger.addHandler(_OrthancLog(orthanc))
    logger.setLevel(config["node"]["log_level"])
    configure_pydicom()  # as the node's processes: no value validation, value-free warnings
    keys = keyfiles.load_node_keys(Path(settings["Keys"]))
    pipeline = pipeline_for(config, keys)
    notice = pixels_only_notice(config["pipeline"]["carriers"], keys)
    if notice:
        log.warning(notice)
    protector = Protector(orthanc, pipeline, pseudonymizer(config["handlers"], keys),
                          int(config["node"]["workers"]))
    log.warning("numeric threads: %s", thread_settings(config))
    callback: Callable[[bytes, Any], tuple[Any, bytes | None]] = protector.received
    if config["orthanc"]["mode"] == "queue":
        from .orthanc_queue import OrthancQueue

        queue = OrthancQueue(orthanc, protector, config, Path(settings["Keys"]), Path(settings["Queue"]),
                             settings["Python"], settings["PythonPath"], rest_url(orthanc))
        queue.start()
        callback = queue.received
    orthanc.RegisterReceivedInstanceCallback(callback)
    orthanc.RegisterIncomingCStoreInstanceFilter(protector.cstore_filter)
    log.warning("stegonode protects every received instance (mode: %s; pipeline: %s; code: %s)",
                config["orthanc"]["mode"], ", ".join(config["pipeline"]["handlers"]), Path(__file__).parent)
    return protector


def rest_url(orthanc: ModuleType) -> str:
    """Orthanc's own REST API on loopback (``orthanc-config`` sets no HTTP users or TLS)."""
    port = int(json.loads(orthanc.GetConfiguration()).get("HttpPort", 8042))
    return f"http://127.0.0.1:{port}"


def thread_settings(config: Config) -> str:
    """The compute threads this process uses, as loaded: ONNX Runtime's session options of the
    Mask R-CNN network (when that is the segmenter) and the thread variables numpy read."""
    parts = []
    if config["handlers"].get("segment", {}).get("segmenter") == "maskrcnn":
        from stegonode.models import foreground

        network = foreground.load(foreground.WEIGHTS)  # the pipeline's, loaded once per process
        session = getattr(network, "session", None)
        if session is not None:
            options = session.get_session_options()
            parts.append(f"ONNX Runtime intra-op {options.intra_op_num_threads}, "
                         f"inter-op {options.inter_op_num_threads}")
    parts += [f"{name} {os.environ.get(name, 'unset')}"
              for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")]
    return "; ".join(parts)


# -- stegonode orthanc-config ----------------------------------------------------------------


@dataclass(frozen=True)
class OrthancSetup:
    """What ``orthanc-config`` wrote, and the command that starts Orthanc with it."""

    config: Path
    command: list[str]
    generated_peer_keys: Path | None


def write_config(out: Path, config_path: Path | None, http_port: int, dicomweb: bool = False) -> OrthancSetup:
    """Write ``out/orthanc.json`` and ``out/stegonode_plugin.py`` for node.toml at ``config_path``.

    Orthanc takes the node's AE title and port; HTTP (REST, Explorer) answers on loopback only;
    storage and index live under ``out``; ``[[peers]]`` become Orthanc's DICOM modalities.
    Without ``node.keys`` in node.toml a key pair is generated under ``out/keys``. ``dicomweb``:
    Debian's DICOMweb plugin as well, serving the stored (protected) studies at ``/dicom-web/``.
    """
    if dicomweb and not DICOMWEB_PLUGIN.exists():
        raise ConfigError(f"--dicomweb needs Debian's orthanc-dicomweb ({DICOMWEB_PLUGIN}): "
                          "apt-get install orthanc-dicomweb (scripts/setup.sh --orthanc does)")
    if not PYTHON_PLUGIN.exists() or shutil.which("Orthanc") is None:
        raise ConfigError(f"Orthanc or its Python plugin ({PYTHON_PLUGIN}) is missing: "
                          "apt-get install orthanc orthanc-python (scripts/setup.sh does)")
    config = node_config.load(config_path)
    node = config["node"]
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    keys, generated = _keys(node, out)
    callers_any = node["allowed_callers"] == "any"
    document = {
        "Name": node["ae_title"],
        "DicomAet": node["ae_title"],
        "DicomPort": int(node["port"]),
        "DicomCheckCalledAet": False,
        "HttpPort": http_port,
        "RemoteAccessAllowed": False,  # REST and Explorer: this machine only
        "StorageDirectory": str(out / "storage"),
        "IndexDirectory": str(out / "index"),
        "SyncStorageArea": True,  # a C-STORE success means the object is on disk
        "DicomModalities": {p["ae_title"]: [p["ae_title"], p["host"], p["port"]] for p in config["peers"]},
        "DicomCheckModalityHost": not callers_any,
        # Anyone may store (that is how modalities send); query and retrieve only the listed
        # peers, unless node.allowed_callers = "any".
        "DicomAlwaysAllowStore": True,
        "DicomAlwaysAllowFind": callers_any,
        "DicomAlwaysAllowGet": callers_any,
        "DicomAlwaysAllowMove": callers_any,
        "Plugins": [str(PYTHON_PLUGIN)],
        "PythonScript": str(out / LAUNCHER),
        "PythonVerbose": False,
        "Stegonode": {
            "Config": str(config_path.resolve()) if config_path else "",
            "Keys": str(keys),
            "SitePackages": site.getsitepackages(),
            # The environment's PYTHONPATH first, as in the shell this was written from.
            "PythonPath": [str(Path(p).resolve()) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p],
            # Queue mode: the interpreter its worker processes run (inside Orthanc,
            # sys.executable is Orthanc itself), and its directory.
            "Python": sys.executable,
            "Queue": str(Path(config["orthanc"]["queue_dir"]).resolve() if config["orthanc"]["queue_dir"]
                         else out / "queue"),
        },
    }
    if dicomweb:
        document["Plugins"].append(str(DICOMWEB_PLUGIN))
        document["DicomWeb"] = {"Enable": True, "Root": "/dicom-web/"}
    (out / LAUNCHER).write_text(_LAUNCHER_TEXT)
    target = out / "orthanc.json"
    target.write_text(json.dumps(document, indent=2) + "\n")
    return OrthancSetup(target, [str(shutil.which("Orthanc")), str(target)], generated)


def _keys(node: dict[str, Any], out: Path) -> tuple[Path, Path | None]:
    """node.keys from node.toml, or a new pair under ``out/keys`` (peer.keys to hand over)."""
    if node["keys"]:
        path = Path(node["keys"]).resolve()
        if not path.is_file():
            raise ConfigError(f"node.keys = {node['keys']!r}: no such key file")
        return path, None
    path = out / "keys" / keyfiles.NODE_FILE
    if path.exists():
        return path, None
    _, peer = keyfiles.generate(path.parent)
    return path, peer
