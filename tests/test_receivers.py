"""Several receiver processes on one port (node.receivers): they share the port, the index and
the association limits, and stop with the node. Real node processes, real associations."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections import Counter

import pytest
from pynetdicom import AE
from pynetdicom.sop_class import Verification

from stegonode.node.receivers import MAX_AUTO, receiver_count

from nodes import NodeProcess, scu, write_series


def established_by_pid(port: int) -> Counter:
    """Established connections to ``port``, by the process id that holds them (ss -tnp)."""
    out = subprocess.run(["ss", "-Htnp", "state", "established", f"( sport = :{port} )"],
                         capture_output=True, text=True, check=True).stdout
    return Counter(int(pid) for pid in re.findall(r"pid=(\d+)", out))


def receiver_pids(node: NodeProcess) -> set[int]:
    assert node.process is not None
    children = subprocess.run(["pgrep", "-P", str(node.process.pid)], capture_output=True, text=True).stdout
    return {node.process.pid, *map(int, children.split())}


def wait_until(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not so after {timeout} s: {what}")
        time.sleep(0.05)


def associate(port: int, ae_title: str = "HOLDER"):
    ae = AE(ae_title=ae_title)
    ae.add_requested_context(Verification)
    return ae.associate("127.0.0.1", port, ae_title="STEGONODE")


def test_the_default_is_one_receiver_per_core_at_most_four():
    assert receiver_count({"receivers": 0}) == max(1, min(len(os.sched_getaffinity(0)), MAX_AUTO))
    assert receiver_count({"receivers": 3}) == 3


def test_receivers_share_the_port_and_each_serves_and_queues(tmp_path):
    node = NodeProcess(tmp_path / "node", workers=0, receivers=2, max_associations=32).start()
    try:
        held = [associate(node.port) for _ in range(12)]
        assert all(assoc.is_established for assoc in held)
        holders = established_by_pid(node.port)
        assert sum(holders.values()) == 12
        assert set(holders) <= receiver_pids(node) and len(holders) == 2, holders  # both took callers
        # The less busy receiver takes each caller (left to the accept race: 9 and 3).
        assert max(holders.values()) - min(holders.values()) <= 2, holders
        for assoc in held:
            assoc.release()
        files = write_series(tmp_path / "series", 8)
        senders = [subprocess.Popen(
            ["/usr/bin/storescu", "-aec", "STEGONODE", "127.0.0.1", str(node.port), *map(str, files[i::4])],
            env={**os.environ, "TCP_NODELAY": "1"}) for i in range(4)]
        assert [sender.wait(timeout=120) for sender in senders] == [0, 0, 0, 0]
        ((queued, inbox),) = node.query("SELECT COUNT(*), COUNT(DISTINCT token) FROM jobs WHERE state = 'queued'")
        assert queued == inbox == 8
        assert sorted(path.stem for path in (node.data / "inbox").glob("*.dcm")) == \
            sorted(token for (token,) in node.query("SELECT token FROM jobs"))
        assert "2 receiver processes share the port" in node.log.read_text()
    finally:
        node.stop()


def test_association_limits_hold_for_the_node_across_receivers(tmp_path):
    # max_associations 4: at most 2 from one address, whichever receiver takes the connection.
    node = NodeProcess(tmp_path / "node", workers=0, receivers=2, max_associations=4).start()
    try:
        held = [associate(node.port) for _ in range(2)]
        assert all(assoc.is_established for assoc in held)
        for _ in range(4):  # a later caller from the address may land on either receiver
            extra = associate(node.port, "OTHER")
            assert extra.is_rejected
        assert "(max_associations_per_address)" in node.log.read_text()
        # A receiver that dies frees what it held: kill the child holding one, if any.
        child = next((pid for pid in established_by_pid(node.port) if pid != node.process.pid), None)
        if child is not None:
            os.kill(child, signal.SIGKILL)
            wait_until(lambda: child not in established_by_pid(node.port), "the killed receiver's connection closes")
        for assoc in held:
            assoc.release()
        again = [associate(node.port) for _ in range(2)]
        assert all(assoc.is_established for assoc in again)
        for assoc in again:
            assoc.release()
        assert scu("echoscu", node.port).returncode == 0
    finally:
        node.stop()


class Held:
    """An association as the ledger sees it: alive until ended."""

    def __init__(self) -> None:
        self.alive = True

    def is_alive(self) -> bool:
        return self.alive


def test_the_ledger_counts_the_open_associations_of_every_receiver():
    """What the worker pool reads to leave the busy receivers their cores: admitted and not
    released, the slots of a receiver that died not counted."""
    import multiprocessing

    from stegonode.node.admission import LocalLedger, SharedLedger

    limits = (4, 4, 4)
    local, shared = LocalLedger(), SharedLedger.create(multiprocessing.get_context("spawn"), 4)
    for ledger in (local, shared):
        first, second = Held(), Held()
        assert ledger.count() == 0
        assert ledger.admit(first, "127.0.0.1", "A", limits) is None
        assert ledger.admit(second, "127.0.0.1", "B", limits) is None
        assert ledger.count() == 2
        ledger.release(first)
        assert ledger.count() == 1
    dead = subprocess.Popen(["true"])
    dead.wait()
    shared.slots[3].pid = dead.pid  # a receiver process that held an association, then died
    assert shared.count() == 1


def test_a_receiver_busier_than_another_live_one_lets_it_accept_first():
    import multiprocessing

    from stegonode.node.admission import AcceptBalance

    main = AcceptBalance.create(multiprocessing.get_context("spawn"), 3)
    main.join()
    other = AcceptBalance(main.receivers, 1)
    other.join()  # in a receiver process it is that process's pid; here a live one all the same
    assert not main.busier() and not other.busier()  # 0 and 0 (number 2 has not started)
    main.opened()
    assert main.busier() and not other.busier()  # 1 against 0
    other.opened()
    other.opened()
    assert other.busier() and not main.busier()  # 2 against 1
    main.closed()
    dead = subprocess.Popen(["true"])
    dead.wait()
    main.receivers[1].pid = dead.pid  # that receiver died holding its connections
    other.closed()
    other.closed()
    main.opened()
    assert not main.busier()  # a dead receiver takes no caller, however few it holds


def test_a_receiver_stops_when_the_node_is_gone(tmp_path):
    node = NodeProcess(tmp_path / "node", workers=0, receivers=2).start()
    assert node.process is not None
    children = receiver_pids(node) - {node.process.pid}
    assert children
    # SIGKILL the main process alone (not its group): nothing tells the receiver but its parent
    # going away.
    node.process.send_signal(signal.SIGKILL)
    node.process.wait()
    wait_until(lambda: not any(os.path.exists(f"/proc/{pid}") and
                               open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] not in "ZX"
                               for pid in children), "the receivers exit", timeout=30)


@pytest.mark.parametrize("receivers", [1])
def test_one_receiver_is_the_single_process_node(tmp_path, receivers):
    node = NodeProcess(tmp_path / "node", workers=0, receivers=receivers).start()
    try:
        assert receiver_pids(node) == {node.process.pid}
        assert "share the port" not in node.log.read_text()
        assert scu("echoscu", node.port).returncode == 0
    finally:
        node.stop()
