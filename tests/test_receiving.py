"""The receive path's shortcuts keep its promises: directory fsyncs shared between callers
(group commit) still make each caller's rename durable before it returns; the durable write
beside the checks leaves nothing of a refused object. Real files, a real node, DCMTK."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from stegonode.node import storage

from images import image_path
from nodes import NodeProcess, storescu


def wait_until(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not so after {timeout} s: {what}")
        time.sleep(0.01)


class SlowFsync:
    """Records each directory fsync (the real one runs); the first waits until released."""

    def __init__(self, fail_first: bool = False) -> None:
        self.calls: list[int] = []  # tickets handed out when each fsync began
        self.release = threading.Event()
        self.fail_first = fail_first
        self.group: storage.GroupSync | None = None
        self._real = storage._fsync_directory

    def __call__(self, directory: Path) -> None:
        assert self.group is not None
        self.calls.append(self.group._requested)
        if len(self.calls) == 1:
            self.release.wait(timeout=30)
            if self.fail_first:
                raise OSError(5, "Input/output error")
        self._real(directory)


@pytest.mark.parametrize("fail_first", [False, True])
def test_callers_arriving_during_an_fsync_share_the_next_one(tmp_path, monkeypatch, fail_first):
    slow = SlowFsync(fail_first)
    monkeypatch.setattr(storage, "_fsync_directory", slow)
    group = slow.group = storage.GroupSync(tmp_path)
    finished: dict[int, int] = {}  # caller -> fsyncs begun when it returned
    errors: dict[int, str] = {}

    def caller(number: int) -> None:
        (tmp_path / f"{number}.part").write_bytes(b"x")
        (tmp_path / f"{number}.part").rename(tmp_path / f"{number}.dcm")
        try:
            group.sync()
            finished[number] = len(slow.calls)
        except OSError as exc:
            errors[number] = exc.strerror or ""

    first = threading.Thread(target=caller, args=(0,))
    first.start()
    wait_until(lambda: slow.calls == [1], "the first caller's fsync began")
    others = [threading.Thread(target=caller, args=(n,)) for n in range(1, 8)]
    for thread in others:
        thread.start()
    wait_until(lambda: group._requested == 8, "seven callers wait")
    assert not finished  # nobody returns before an fsync that began after its rename
    slow.release.set()
    for thread in [first, *others]:
        thread.join(timeout=30)
    # One fsync for the first caller, one more for the seven that came while it ran.
    assert slow.calls == [1, 8]
    if fail_first:
        assert errors == {0: "Input/output error"}  # its caller hears of it; the others retried
        assert finished == {n: 2 for n in range(1, 8)}
    else:
        assert errors == {} and {n: finished[n] for n in range(1, 8)} == {n: 2 for n in range(1, 8)}
        assert finished[0] in (1, 2)  # the second may have begun by the time it looks


def test_sync_directory_keeps_one_group_per_directory(tmp_path):
    (tmp_path / "a").mkdir()
    storage.sync_directory(tmp_path / "a")
    storage.sync_directory(tmp_path)
    assert storage._group_syncs[tmp_path / "a"] is not storage._group_syncs[tmp_path]
    assert storage._group_syncs[tmp_path]._covered == 1


def test_a_refused_object_leaves_nothing_behind_and_an_accepted_one_is_queued(tmp_path):
    burned = pydicom.dcmread(image_path("693_UNCR.dcm"))
    burned.BurnedInAnnotation = "YES"
    burned.SOPInstanceUID = burned.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    burned.save_as(tmp_path / "burned.dcm")
    clean = pydicom.dcmread(image_path("693_UNCR.dcm"))
    clean.SOPInstanceUID = clean.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    clean.save_as(tmp_path / "clean.dcm")
    node = NodeProcess(tmp_path / "node", workers=0, receivers=1).start()
    try:
        refused = storescu(node.port, [tmp_path / "burned.dcm"])
        assert "Received Store Response" in refused.stderr, refused.stderr
        assert "Received Store Response (Success)" not in refused.stderr
        # Its bytes were written to tmp/ beside the checks: removed once written.
        wait_until(lambda: not any((node.data / "tmp").iterdir()), "tmp/ is empty")
        assert not any((node.data / "inbox").iterdir())
        accepted = storescu(node.port, [tmp_path / "clean.dcm"])
        assert "Received Store Response (Success)" in accepted.stderr, accepted.stderr
        (inbox,) = (node.data / "inbox").iterdir()
        assert inbox.read_bytes().endswith(pydicom.dcmread(tmp_path / "clean.dcm").PixelData)
        assert node.query("SELECT token, state FROM jobs") == [(inbox.stem, "queued")]
        assert not any((node.data / "tmp").iterdir())
    finally:
        node.stop()


class Clock:
    """The workers module's monotonic clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_while_a_burst_arrives_jobs_use_only_the_cores_no_receiver_is_busy_on(tmp_path, monkeypatch):
    """Protection slows a busy receiver even at a lower CPU priority: while C-STOREs arrive,
    jobs run only on the cores the receivers leave (a receiver per open association, up to the
    receivers there are), for RECEIVING_FIRST_S at most (then at least one at a time, so they
    never starve), and every worker is fed once the C-STOREs stop."""
    from stegonode.node import config as node_config
    from stegonode.node import workers as workers_module
    from stegonode.node.index import Index

    clock = Clock()
    monkeypatch.setattr(workers_module, "time", clock)
    index = Index(f"sqlite:///{tmp_path / 'index.sqlite'}")
    try:
        pool = workers_module.Workers(index, storage.Storage.create(tmp_path / "data"),
                                      node_config.load(None), tmp_path / "node.keys", tmp_path / "data")
        pool.processes, pool.cores, pool.receivers = 2, 2, 2  # the 2-core node's defaults
        open_associations = [0]
        pool.associations = lambda: open_associations[0]
        everyone = 2 * pool.processes
        assert pool._capacity() == everyone  # nothing received yet
        pool.wake()
        open_associations[0] = 1  # one sender: one receiver busy, one core free
        assert pool._capacity() == 1
        open_associations[0] = 4  # as many busy receivers as cores: no job starts
        assert pool._capacity() == 0
        pool.receivers = 1  # node.receivers = 1: four associations keep one process busy
        assert pool._capacity() == 1
        pool.receivers = 2
        quiet, first = workers_module.INGEST_QUIET_S, workers_module.RECEIVING_FIRST_S
        while clock.now < 1000.0 + first:  # C-STOREs keep arriving, each before the burst is over
            clock.now += quiet / 2
            pool.wake()
            assert pool._capacity() == (1 if clock.now - 1000.0 >= first else 0)
        assert pool._capacity() == 1  # a burst that does not end: one job at a time
        open_associations[0] = 1
        assert pool._capacity() == 1
        clock.now += quiet  # it ends
        assert pool._capacity() == everyone
        pool.wake()  # the next burst starts its own count
        open_associations[0] = 4
        assert pool._capacity() == 0
        pool.cores = 4  # more cores than busy receivers: the rest protect, up to the workers
        assert pool._capacity() == 2
    finally:
        index.close()


def test_stage_beside_returns_once_the_fsync_has_begun_and_gives_the_path_once_durable(tmp_path, monkeypatch):
    """The received bytes' fsync runs in a pool thread while the association's thread checks
    the object: the call returns only once that fsync has begun (a pool thread otherwise waits
    for the GIL until the checks end), and the path comes only once it has returned."""
    from concurrent.futures import ThreadPoolExecutor

    store = storage.Storage.create(tmp_path / "data")
    began, release = threading.Event(), threading.Event()
    real_fsync = storage.os.fsync

    def slow_fsync(fd: int) -> None:
        began.set()
        release.wait(timeout=30)
        real_fsync(fd)

    monkeypatch.setattr(storage.os, "fsync", slow_fsync)
    with ThreadPoolExecutor(2) as pool:
        staged = store.stage_beside(b"received bytes", pool)
        assert began.is_set() and not staged.done()
        release.set()
        path = Path(staged.result(timeout=30))
        assert path.parent == tmp_path / "data" / "tmp" and path.read_bytes() == b"received bytes"
        store.move(path, "inbox", "token")
        assert (tmp_path / "data" / "inbox" / "token.dcm").read_bytes() == b"received bytes"
        # A write that cannot happen (here: tmp/ gone) is the future's OSError, as the fsync's would be.
        (tmp_path / "data" / "tmp").rmdir()
        with pytest.raises(FileNotFoundError):
            store.stage_beside(b"more", pool).result(timeout=30)
