"""The adapter to pynetdicom's private parts: the only module that touches them.

pynetdicom has no public setting for what the node needs here; each use names what it relies
on, and tests/test_dicomnet.py fails loudly when a pynetdicom upgrade changes any of it
(pyproject.toml pins pynetdicom to the series these were checked against):

- ``Association.dul._run_loop_delay``: the DUL's socket polling interval (:func:`poll_fast`);
- ``Association.dul.socket.socket``: the connection's socket (:func:`connection_socket`);
- ``pynetdicom._config.STORE_SEND_CHUNKED_DATASET``: send a file's data set bytes as they are
  (:func:`send_files_as_stored`);
- ``Association.send_c_store``, replaced on one association (:func:`send_files_as_stored`);
- ``AE._servers``: the servers ``AE.shutdown`` stops (:func:`register_server`);
- ``Association.dul.socket.recv``, replaced on one connection (:func:`bound_reads`): the DUL
  reads each PDU with it, in a loop that a peer trickling bytes would otherwise hold forever;
- ``Association.dul.state_machine.do_action``, wrapped on one connection
  (:func:`contain_protocol_errors`): an exception there otherwise ends the DUL thread and
  leaves the connection open;
- the ``pynetdicom`` logger's records with tracebacks (:class:`OneLineErrors`);
- ``pynetdicom.association.time``, the clock the association reactor sleeps 1 ms on between
  looks at ``Association.dimse.msg_queue`` (a :class:`queue.Queue`), replaced process-wide by
  :class:`_ReactorClock` (:func:`wake_reactors`);
- ``pynetdicom.dul.time``, the clock the DUL sleeps ``_run_loop_delay`` on between looks at its
  socket and at ``DULServiceProvider.to_provider_queue`` (whose ``put`` is wrapped on one
  connection), replaced process-wide by :class:`_DulClock` (:func:`poll_fast`).
"""

from __future__ import annotations

import logging
import queue
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

from pydicom import Dataset, dcmread
from pynetdicom import AE, _config, evt
from pynetdicom.association import Association
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dul import DULServiceProvider

from stegonode.handlers.compression import decompressed

PINNED_SERIES = "3.0."  # the pynetdicom versions this adapter was checked against
POLL_DELAY_S = 0.0001
# PS3.8 9.2: idle (the DUL reads a first PDU before it handles the connection event), and
# transport connection open, awaiting A-ASSOCIATE-RQ
AWAITING_REQUEST = ("Sta1", "Sta2")
log = logging.getLogger("stegonode.associations")


class SlowPeerError(TimeoutError):
    """A peer did not send its PDU in time (see :func:`bound_reads`)."""


def connection_socket(assoc: Association) -> socket.socket | None:
    """The association's TCP (or TLS) socket, None once closed."""
    wrapper = getattr(assoc.dul, "socket", None)
    return getattr(wrapper, "socket", None)


def set_nodelay(event: evt.Event) -> None:
    """Answer without waiting on Nagle's algorithm (pynetdicom leaves it on: 6x slower)."""
    sock = connection_socket(event.assoc)
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def close_connection(assoc: Association) -> None:
    """Shut the connection's socket: its DUL sees the close and ends the association thread."""
    sock = connection_socket(assoc)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed


def poll_fast(event: evt.Event) -> None:
    """Have the association's DUL act on a PDU or a primitive to send as soon as it is there.

    pynetdicom's DUL sleeps ``_run_loop_delay`` (1 ms) whenever it found nothing to do, so a
    C-STORE, request or response, waits half of that on average each time: 16% of a 512x512
    CT C-MOVE sub-operation, 4-13% of a received C-STORE (measured). Polling every 0.1 ms
    instead costs idle CPU (about 8 points of a core per open association) and, with several
    associations, the GIL the association threads need. Here the DUL's sleep is a wait on its
    socket and on a wake-up socket that the queue of primitives to send signals
    (:class:`_DulClock`): no latency, no polling; 0.1 ms polling where that cannot be set up.
    """
    dul = event.assoc.dul
    dul._run_loop_delay = POLL_DELAY_S
    if _DUL_WAKE in vars(dul):
        return
    _install_dul_clock()
    reader, writer = socket.socketpair()  # closed when the DUL is collected: no reuse of its fds
    reader.setblocking(False)
    writer.setblocking(False)
    outgoing = dul.to_provider_queue
    put = outgoing.put

    def put_and_wake(item: Any, block: bool = True, timeout: float | None = None) -> None:
        put(item, block, timeout)
        try:
            writer.send(b"\0")
        except OSError:
            pass  # full (a wake-up is pending anyway) or closed

    outgoing.put = put_and_wake  # type: ignore[method-assign]
    setattr(dul, _DUL_WAKE, (reader, writer))


_DUL_WAKE = "_stegonode_wake"
DUL_WAIT_S = 0.005  # the longest a woken DUL waits: its ARTIM and kill checks keep this pace


class _DulClock:
    """``time`` for pynetdicom's DUL module: in a DUL thread that :func:`poll_fast` set up, the
    reactor's idle sleep waits until its socket has data or a primitive is queued to send (at
    most :data:`DUL_WAIT_S`); every other use is :mod:`time` itself."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    def sleep(self, seconds: float) -> None:
        thread = threading.current_thread()
        wake = vars(thread).get(_DUL_WAKE) if isinstance(thread, DULServiceProvider) else None
        sock = getattr(getattr(thread, "socket", None), "socket", None)
        if wake is None or sock is None:
            time.sleep(seconds)
            return
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return  # decrypted bytes waiting: select cannot see them
        reader = wake[0]
        try:
            select.select([sock, reader], [], [], DUL_WAIT_S)
            while reader.recv(4096):
                pass
        except BlockingIOError:
            pass  # drained
        except (OSError, ValueError):  # the connection closed meanwhile
            time.sleep(seconds)


def _install_dul_clock() -> None:
    import pynetdicom.dul as dul_module

    if not isinstance(dul_module.time, _DulClock):
        dul_module.time = _DulClock()  # type: ignore[assignment]


REACTOR_SLEEP_S = 0.001  # pynetdicom's Association._run_reactor: time.sleep(0.001) per turn


class _ReactorClock:
    """``time`` for pynetdicom's association module: the reactor's 1 ms sleep ends as soon as
    a DIMSE message is queued for it (at most the same 1 ms otherwise); every other use is
    :mod:`time` itself. A received C-STORE otherwise waits half a millisecond on average
    before its handler runs: 5-8 % of a C-STORE at 150 a second."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    def sleep(self, seconds: float) -> None:
        thread = threading.current_thread()
        messages = getattr(getattr(thread, "dimse", None), "msg_queue", None)
        if seconds != REACTOR_SLEEP_S or not isinstance(thread, Association) or messages is None:
            time.sleep(seconds)
            return
        wait_for_message(messages, seconds)


def wait_for_message(messages: queue.Queue, seconds: float) -> None:
    """Wait at most ``seconds`` until ``messages`` holds an item, without taking it; a wake-up
    meant for another waiter is passed on.

    ``Queue.put`` wakes one waiter of ``not_empty``. While a ``send_*`` call waits in
    ``Queue.get`` for its response, the reactor may be sleeping here as well (it saw the
    ``_is_paused`` flag of its previous turn, see :func:`_reactor_get_msg`); if the response's
    wake-up went to the reactor and stopped there, the call would sleep out its whole DIMSE
    timeout (30 s) with the response in the queue. So whenever an item is there on waking, every
    waiter is woken: ``Queue.get`` rechecks the queue, and the reactor does not take a message
    while a call is in progress.
    """
    with messages.not_empty:
        if not messages.queue:
            messages.not_empty.wait(seconds)
        if messages.queue:
            messages.not_empty.notify_all()


def wake_reactors() -> None:
    """Process-wide: association reactors wake when a DIMSE message arrives (:class:`_ReactorClock`),
    and never take a message meant for a ``send_*`` call in progress (:func:`_reactor_get_msg`)."""
    import pynetdicom.association as association

    if not isinstance(association.time, _ReactorClock):
        association.time = _ReactorClock()  # type: ignore[assignment]
    if DIMSEServiceProvider.get_msg is not _reactor_get_msg:
        DIMSEServiceProvider.get_msg = _reactor_get_msg  # type: ignore[method-assign]


# pynetdicom's own (a reload of this module must not take the patched one for it)
_queue_get_msg = getattr(DIMSEServiceProvider.get_msg, "original", DIMSEServiceProvider.get_msg)


def _reactor_get_msg(self: DIMSEServiceProvider, block: bool = False) -> Any:
    """``DIMSEServiceProvider.get_msg``; its non-blocking form (only the reactor uses it) gives
    nothing while the association's reactor checkpoint is cleared, checked and taken under the
    queue's lock.

    A ``send_*`` call clears the checkpoint and then waits for the reactor's ``_is_paused``; but
    the reactor sets that flag on every turn, also when it does not pause, so the call may see
    it, send its request, and the reactor of the same turn take the response off the queue
    ("Received unexpected C-STORE service message"), while the call waits out its DIMSE timeout
    (pynetdicom #875; a C-MOVE sub-operation answered fast over loopback hit it). The response
    is queued only after the request went out, which is after the checkpoint was cleared, so a
    reactor that sees the checkpoint set under the lock cannot find that response queued.
    """
    if block:
        return _queue_get_msg(self, block)
    messages = self.msg_queue
    with messages.mutex:
        if not self._assoc._reactor_checkpoint.is_set() or not messages.queue:
            return None, None
        item = messages.queue.popleft()
        messages.not_full.notify()
        return item


_reactor_get_msg.original = _queue_get_msg  # type: ignore[attr-defined]


def send_chunked_datasets() -> None:
    """Process-wide: C-STORE requests given a file path send its data set bytes unchanged."""
    _config.STORE_SEND_CHUNKED_DATASET = True


def send_files_as_stored(assoc: Association, path_of: Callable[[Dataset], str | None]) -> None:
    """Have ``assoc``'s C-STORE sub-operations send a data set for which ``path_of`` gives a
    file path from that file as it is; when the peer accepted no context with the file's
    transfer syntax, the file is decoded, its pixels decompressed, and pynetdicom converts it
    to the uncompressed transfer syntax the peer accepted."""
    send_chunked_datasets()
    send = assoc.send_c_store

    def send_c_store(dataset: Dataset, *args: Any, **kwargs: Any) -> Dataset:
        path = path_of(dataset)
        if path is not None:
            try:
                return send(path, *args, **kwargs)
            except ValueError:  # no accepted context with the file's transfer syntax
                dataset = decompressed(dcmread(path))
        return send(dataset, *args, **kwargs)

    assoc.send_c_store = send_c_store  # type: ignore[method-assign,assignment]


def c_store_request(event: evt.Event) -> C_STORE:
    """The C-STORE request of an ``EVT_C_STORE`` event (pynetdicom types ``event.request`` as
    any DIMSE primitive)."""
    request = event.request
    assert isinstance(request, C_STORE), "not a C-STORE event"
    return request


def register_server(ae: AE, server: Any) -> None:
    """Let ``ae.shutdown()`` stop ``server``, as ``AE.start_server`` does for its own."""
    ae._servers.append(server)


def bound_reads(assoc: Association, acse_timeout: float, pdu_timeout: float, min_rate: float) -> None:
    """Bound the time the peer of ``assoc`` may take to send each PDU, whatever it does.

    pynetdicom reads a PDU with blocking ``recv`` calls until it has the length the PDU header
    announced; its socket timeout bounds each call, not the PDU, so a peer trickling one byte a
    second holds the thread, the socket and the association slot forever, and its ARTIM and
    network timers never run (the reader does not return to them). Here:

    - until the association is established, the whole A-ASSOCIATE-RQ must arrive within
      ``acse_timeout`` seconds of the connection (the ARTIM timeout of PS3.8 9.1.5);
    - after that, a PDU has ``pdu_timeout`` seconds plus one second per ``min_rate`` bytes of
      it: a sender that falls behind that pace is cut off (a sender at network speed never is).

    A read past its deadline raises :class:`SlowPeerError`; pynetdicom treats it as a closed
    connection (Evt17), the connection closes and its slot is freed. One log line says so.
    """
    wrapper = assoc.dul.socket
    if wrapper is None:
        return
    opened = time.monotonic()
    address = assoc.requestor.address

    def recv(nr_bytes: int) -> bytearray:
        sock = wrapper.socket
        data = bytearray()
        if sock is None:
            return data
        start = time.monotonic()
        previous = sock.gettimeout()
        requesting = assoc.dul.state_machine.current_state in AWAITING_REQUEST
        try:
            while len(data) < nr_bytes:
                if requesting:
                    deadline = opened + acse_timeout
                else:
                    deadline = start + pdu_timeout + len(data) / min_rate
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    what = "its association request" if requesting else "its PDU"
                    log.warning("closed the connection from %s: %s did not arrive in time "
                                "(%d of %d bytes)", address, what, len(data), nr_bytes)
                    raise SlowPeerError(what)
                sock.settimeout(remaining)
                try:
                    chunk = sock.recv(min(nr_bytes - len(data), 1 << 20))
                except TimeoutError:
                    continue  # the deadline check above decides
                if not chunk:
                    return data  # closed by the peer: pynetdicom sees a short PDU
                data += chunk
        finally:
            try:
                sock.settimeout(previous)
            except OSError:
                pass
        return data

    wrapper.recv = recv  # type: ignore[method-assign]


def contain_protocol_errors(assoc: Association) -> None:
    """A PDU that makes pynetdicom's state machine raise (a malformed P-DATA-TF on an
    established association: seen as AttributeError, TypeError) aborts that association and
    closes its connection, with one log line; pynetdicom would end the reading thread and leave
    the connection open, with no one to close it."""
    machine = assoc.dul.state_machine
    do_action = machine.do_action
    address = assoc.requestor.address

    def guarded(event: str) -> None:
        try:
            do_action(event)
        except Exception as exc:
            log.warning("aborted the association from %s: its PDUs broke the protocol (%s)",
                        address, type(exc).__name__)
            _abort_and_close(assoc)

    machine.do_action = guarded  # type: ignore[method-assign]


def _abort_and_close(assoc: Association) -> None:
    """Send an A-ABORT (service provider) if the connection still takes it, then close it."""
    from pynetdicom.pdu import A_ABORT_RQ

    wrapper = assoc.dul.socket
    sock = getattr(wrapper, "socket", None)
    if sock is not None:
        abort = A_ABORT_RQ()
        abort.source, abort.reason_diagnostic = 0x02, 0x00
        try:
            sock.sendall(abort.encode())
        except OSError:
            pass
    assoc.dul.kill_dul()
    assoc.is_aborted, assoc.is_established = True, False
    if wrapper is not None:
        wrapper.close()
    evt.trigger(assoc, evt.EVT_ABORTED, {})
    evt.trigger(assoc, evt.EVT_CONN_CLOSE, {})


class OneLineErrors(logging.Filter):
    """pynetdicom logs the exceptions of malformed or cut-off PDUs with their tracebacks and
    messages (which may quote the peer's bytes). Keep the line, drop the traceback and the
    message: the exception's type is enough to act on, and carries no data."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info:
            kind = record.exc_info[0].__name__ if record.exc_info[0] else "error"
            record.msg, record.args = f"({kind})", None
            record.exc_info, record.exc_text = None, None
        return True


def quiet_pynetdicom_tracebacks() -> None:
    """Install :class:`OneLineErrors` on pynetdicom's loggers (once per process; a filter
    applies only to the logger it is on, not to its children), and log an exception that ends
    a thread as one line instead of Python's traceback on stderr."""
    import pynetdicom  # noqa: F401  (its modules create their loggers on import)

    names = ["pynetdicom"] + [name for name in logging.root.manager.loggerDict if name.startswith("pynetdicom.")]
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, OneLineErrors) for f in logger.filters):
            logger.addFilter(OneLineErrors())
    threading.excepthook = _log_thread_exception


def _log_thread_exception(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "a thread"
    log.error("%s ended with an unexpected error (%s)", name, args.exc_type.__name__)
