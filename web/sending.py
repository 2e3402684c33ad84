"""Sending stored objects to a ``[[peers]]`` destination from the console: one background
thread, one association per send, C-STORE of each stored file as it is (pynetdicom sends a
file's data set unchanged when the peer accepts its transfer syntax, decompressed when it
accepts only uncompressed ones, as a C-MOVE does), progress per object."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pynetdicom import AE

from stegonode.node.dicomnet import send_files_as_stored, wake_reactors
from stegonode.node.query import Instance
from stegonode.node.retrieve import StoredObject, move_contexts
from stegonode.node.storage import ObjectStore

log = logging.getLogger("stegonode.web")
MAX_SENDS = 20


@dataclass
class Send:
    id: str
    peer: str
    study: str
    total: int
    sent: int = 0
    failed: int = 0
    done: bool = False
    error: str = ""
    created: float = field(default_factory=time.time)

    @property
    def finished(self) -> int:
        return self.sent + self.failed


class Sends:
    """Sends by random id, run one after another."""

    def __init__(self) -> None:
        self._sends: OrderedDict[str, Send] = OrderedDict()
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stegonode-web-send")

    def submit(self, own_ae_title: str, peer: dict[str, Any], study: str, objects: list[tuple[Instance, str]],
               storage: ObjectStore, done: Callable[[Send], None]) -> Send:
        """Send ``objects`` (each with its storage key) to ``peer``; each is read from ``storage``
        as it is sent (a local file as is, an object store's object through a spool file)."""
        send = Send(secrets.token_urlsafe(16), peer["ae_title"], study, len(objects))
        with self._lock:
            self._sends[send.id] = send
            while len(self._sends) > MAX_SENDS and next(iter(self._sends.values())).done:
                self._sends.popitem(last=False)
        self._executor.submit(self._run, send, own_ae_title, peer, objects, storage, done)
        return send

    def get(self, send_id: str) -> Send | None:
        with self._lock:
            return self._sends.get(send_id)

    @staticmethod
    def _run(send: Send, own_ae_title: str, peer: dict[str, Any], objects: list[tuple[Instance, str]],
             storage: ObjectStore, done: Callable[[Send], None]) -> None:
        try:
            wake_reactors()  # no response taken by a reactor (pynetdicom #875), none left waiting
            ae = AE(ae_title=own_ae_title)
            ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
            association = ae.associate(peer["host"], int(peer["port"]), move_contexts([i for i, _ in objects]),
                                       ae_title=peer["ae_title"])
            if not association.is_established:
                send.error = f"{peer['ae_title']} at {peer['host']}:{peer['port']} did not accept an association"
                send.failed = send.total
                return
            send_files_as_stored(association, lambda ds: ds.path if isinstance(ds, StoredObject) else None)
            try:
                for instance, key in objects:
                    try:
                        with storage.local_copy(key) as path:
                            status = association.send_c_store(StoredObject(instance, path))
                        ok = status is not None and "Status" in status and status.Status in (0, 0xB000, 0xB007, 0xB006)
                    except Exception as exc:  # a file gone meanwhile, a context the peer refused
                        log.warning("send to %s: one object failed (%s)", peer["ae_title"], type(exc).__name__)
                        ok = False
                    if ok:
                        send.sent += 1
                    else:
                        send.failed += 1
                    if not association.is_established:
                        send.error = "the peer ended the association"
                        send.failed = send.total - send.sent
                        break
            finally:
                if association.is_established:
                    association.release()
        except Exception as exc:
            send.error = f"sending failed ({type(exc).__name__})"
            send.failed = send.total - send.sent
        finally:
            send.done = True
            done(send)
