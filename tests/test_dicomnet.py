"""pynetdicom's private parts, as node/dicomnet.py uses them: this fails loudly (and says what
changed) when a pynetdicom upgrade moves any of them; then adapt node/dicomnet.py, rerun the
node tests (test_node, test_query, test_node_robustness) and move the pin in pyproject.toml."""

from __future__ import annotations

import inspect
import socket

import pynetdicom
from pynetdicom import AE, _config, evt
from pynetdicom.association import Association
from pynetdicom.sop_class import Verification

from stegonode.node import dicomnet


def test_the_pinned_pynetdicom_is_installed():
    assert pynetdicom.__version__.startswith(dicomnet.PINNED_SERIES), (
        f"pynetdicom {pynetdicom.__version__}: node/dicomnet.py was checked against "
        f"{dicomnet.PINNED_SERIES}x; check its private parts (this module) before moving the pin")


def test_the_private_parts_the_adapter_uses_exist():
    assert isinstance(_config.STORE_SEND_CHUNKED_DATASET, bool), "_config.STORE_SEND_CHUNKED_DATASET"
    assert isinstance(AE()._servers, list), "AE._servers"
    parameters = list(inspect.signature(Association.send_c_store).parameters)
    assert parameters[:2] == ["self", "dataset"], f"Association.send_c_store{parameters}"
    assert "_run_loop_delay" in inspect.getsource(pynetdicom.dul.DULServiceProvider), "DUL._run_loop_delay"
    reactor = inspect.getsource(Association._run_reactor)
    assert f"time.sleep({dicomnet.REACTOR_SLEEP_S})" in reactor and "self.dimse.get_msg(block=False)" in reactor, \
        "Association._run_reactor: sleeps 1 ms, then looks at dimse.msg_queue"
    assert "msg_queue" in inspect.getsource(pynetdicom.dimse.DIMSEServiceProvider), "DIMSE msg_queue"
    dul = inspect.getsource(pynetdicom.dul.DULServiceProvider)
    assert "time.sleep(self._run_loop_delay)" in dul and "self.to_provider_queue.put(primitive)" in dul, \
        "DUL: sleeps _run_loop_delay when idle; primitives to send go through to_provider_queue.put"


def test_the_reactor_waits_on_its_message_queue_not_on_the_clock(monkeypatch):
    """In an Association thread the reactor's 1 ms sleep is a wait on the DIMSE message queue
    (woken by a message); anywhere else, and for any other sleep, time.sleep."""
    import threading
    import types

    import pynetdicom.association

    dicomnet.wake_reactors()
    clock = pynetdicom.association.time
    assert isinstance(clock, dicomnet._ReactorClock)
    slept: list[float] = []
    monkeypatch.setattr(dicomnet, "time", types.SimpleNamespace(sleep=slept.append))
    assoc = Association(AE(), "acceptor")
    waits: list[float | None] = []
    condition = assoc.dimse.msg_queue.not_empty
    original_wait = condition.wait
    monkeypatch.setattr(condition, "wait", lambda timeout=None: waits.append(timeout) or original_wait(timeout))

    def reactor_turns():
        clock.sleep(dicomnet.REACTOR_SLEEP_S)  # empty queue: waits on it
        assoc.dimse.msg_queue.put((1, "message"))
        clock.sleep(dicomnet.REACTOR_SLEEP_S)  # a message waiting: returns at once
        clock.sleep(0.01)  # another of pynetdicom's sleeps

    assoc.run = threading.Thread(target=reactor_turns).run  # type: ignore[method-assign]
    assoc.start()
    assoc.join(timeout=10)
    assert waits == [dicomnet.REACTOR_SLEEP_S]
    assert slept == [0.01]
    clock.sleep(dicomnet.REACTOR_SLEEP_S)  # outside an association thread
    assert slept == [0.01, dicomnet.REACTOR_SLEEP_S]


def test_the_adapter_works_on_a_live_association():
    """One association to a real pynetdicom SCP: socket, polling interval, send_c_store."""
    seen = {}

    def established(event):
        sock = dicomnet.connection_socket(event.assoc)
        seen["socket"] = sock
        seen["nodelay"] = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) if sock else None
        dicomnet.poll_fast(event)
        seen["delay"] = event.assoc.dul._run_loop_delay
        seen["wake"] = vars(event.assoc.dul).get(dicomnet._DUL_WAKE)
        dicomnet.send_files_as_stored(event.assoc, lambda ds: None)
        seen["wrapped"] = event.assoc.send_c_store.__name__ == "send_c_store"

    scp = AE(ae_title="SCP")
    scp.add_supported_context(Verification)
    server = scp.start_server(("127.0.0.1", 0), block=False,
                              evt_handlers=[(evt.EVT_CONN_OPEN, dicomnet.set_nodelay),
                                            (evt.EVT_ESTABLISHED, established)])
    try:
        scu = AE(ae_title="SCU")
        scu.add_requested_context(Verification)
        assoc = scu.associate("127.0.0.1", server.server_address[1], ae_title="SCP")
        assert assoc.is_established
        assert assoc.send_c_echo().Status == 0
        assoc.release()
    finally:
        server.shutdown()
    assert isinstance(seen["socket"], socket.socket), "Association.dul.socket.socket"
    assert seen["nodelay"], "TCP_NODELAY on the association's socket"
    assert seen["delay"] == dicomnet.POLL_DELAY_S
    # The DUL waits on its socket and a wake-up socket (the C-ECHO answer above went through it).
    assert isinstance(pynetdicom.dul.time, dicomnet._DulClock)
    assert seen["wake"] is not None and all(isinstance(s, socket.socket) for s in seen["wake"])
    assert seen["wrapped"]
    assert _config.STORE_SEND_CHUNKED_DATASET is True


def test_the_reactor_takes_no_message_while_a_send_call_has_paused_it():
    """pynetdicom #875: a send_* call clears the reactor checkpoint, sees the reactor's
    ``_is_paused`` (which the reactor sets on every turn) and sends; the response must then go
    to the call, not to a reactor still finishing its turn. The reactor's non-blocking read
    gives nothing while the checkpoint is cleared, and the queued message stays for the call."""
    dicomnet.wake_reactors()
    assoc = Association(AE(), "requestor")
    response = (1, "C-STORE-RSP")
    assoc.dimse.msg_queue.put(response)
    assoc._reactor_checkpoint.clear()  # a send_* call in progress
    assert assoc.dimse.get_msg(block=False) == (None, None)
    assert assoc.dimse.get_msg(block=True) == response  # the call gets it
    assoc._reactor_checkpoint.set()  # the call returned: the reactor reads again
    assoc.dimse.msg_queue.put(response)
    assert assoc.dimse.get_msg(block=False) == response
    assert assoc.dimse.get_msg(block=False) == (None, None)  # empty queue


def test_a_response_reaches_the_send_call_when_the_reactor_waits_on_the_queue_too():
    """The reactor waits on its message queue (``wait_for_message``) while a send_* call waits in
    ``Queue.get`` for its response (the reactor had seen ``_is_paused`` of its previous turn).
    ``Queue.put`` wakes one waiter, the one that waited first: the reactor. It must pass the
    wake-up on, or the call sleeps its whole DIMSE timeout with the response queued (seen as a
    C-MOVE stalled 30 s between two sub-operations)."""
    import queue
    import threading
    import time

    messages: queue.Queue = queue.Queue()
    waiters = messages.not_empty._waiters  # type: ignore[attr-defined]
    reactor = threading.Thread(target=dicomnet.wait_for_message, args=(messages, 120.0))
    got: list = []
    call = threading.Thread(target=lambda: got.append(messages.get(timeout=120.0)))

    def until(condition) -> None:
        deadline = time.monotonic() + 30
        while not condition():
            assert time.monotonic() < deadline
            time.sleep(0.001)

    reactor.start()
    until(lambda: len(waiters) == 1)  # the reactor waits first, so put() wakes it
    call.start()
    until(lambda: len(waiters) == 2)
    messages.put("C-STORE-RSP")
    reactor.join(timeout=30)
    call.join(timeout=30)  # without the hand-on: still waiting here, for its 120 s
    assert got == ["C-STORE-RSP"]
    assert not reactor.is_alive()
