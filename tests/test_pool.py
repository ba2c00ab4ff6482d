"""The workers forked from one loader: what it made is theirs, results come in order, and nothing is left running."""

from __future__ import annotations

import os
import pickle
import re
import signal
import struct
import time
from multiprocessing.connection import Connection

import pytest

from process_helpers import alive, descendants
from threelines.batch import pool as pool_module
from threelines.batch.pool import BROKEN, ForkedPool, WorkerError
from threelines.batch.results import Records

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the pool forks its workers")

#: What the loader made (set in the loader, read in the workers it forks).
MADE: dict = {}


def ended(pids) -> bool:
    """Whether the processes have all ended (within a few seconds: they may still be on their way out)."""
    deadline = time.monotonic() + 5
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.01)
    return not any(alive(p) for p in pids)


def started(jobs, ready, run) -> ForkedPool:
    pool = ForkedPool(jobs, ready, run)
    pool.start()
    return pool


def started_and_seen(jobs, ready, run, n: int = 3) -> tuple[ForkedPool, list[int]]:
    """A pool started, and its processes (see :func:`family`)."""
    before = set(descendants(os.getpid()))
    return started(jobs, ready, run), family(before, n)


def family(before: set[int], n: int = 3) -> list[int]:
    """The processes started since ``before`` was taken, once there are ``n`` (the loader and its workers).

    Others that this process started earlier (a test server, multiprocessing's resource tracker) are not theirs.
    """
    deadline = time.monotonic() + 30
    while len(found := [p for p in descendants(os.getpid()) if p not in before]) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    return found


def test_the_workers_share_what_the_loader_made_once_and_results_come_in_order(tmp_path):
    log = tmp_path / "ready.log"

    def ready():
        MADE["layers"] = f"read by {os.getpid()}"
        with log.open("a") as fh:
            fh.write(f"{os.getpid()}\n")

    def run(task):
        time.sleep(0.05 * (task % 3))  # finished out of order
        return task, MADE["layers"], os.getpid()

    pool = started(2, ready, run)
    try:
        numbers = [pool.submit(task) for task in range(8)]
        results = [pool.result(n) for n in numbers]
    finally:
        pool.close()
    loaders = log.read_text().split()
    assert len(loaders) == 1  # read once, not once per worker
    assert [task for task, _, _ in results] == list(range(8))
    assert {made for _, made, _ in results} == {f"read by {loaders[0]}"}
    workers = {pid for _, _, pid in results}
    assert len(workers) == 2
    assert not workers & {int(loaders[0]), os.getpid()}
    assert "layers" not in MADE  # made in the loader, not in this process
    assert ended(workers | {int(loaders[0])})


class Stubborn(Exception):
    """An exception that pickles, but cannot be made again from what it pickled."""

    def __init__(self, rule, position):
        super().__init__(f"{rule} at {position}")


def test_what_a_task_raises_is_raised_here_and_the_others_go_on():
    def run(task):
        if task == 1:
            raise KeyError(f"no rule {task}")
        if task == 2:
            return lambda: None  # a result that cannot be pickled
        if task == 3:
            raise Stubborn("R1", 7)
        return task * 10

    pool = started(2, lambda: None, run)
    try:
        numbers = [pool.submit(task) for task in range(5)]
        assert pool.result(numbers[0]) == 0
        with pytest.raises(KeyError, match="no rule 1"):
            pool.result(numbers[1])
        with pytest.raises(RuntimeError, match=r"^(PicklingError|AttributeError): .*local object"):
            pool.result(numbers[2])
        # Its words, or itself where tblib (which Dask installs) teaches pickle to make it again.
        with pytest.raises((RuntimeError, Stubborn), match=r"^(Stubborn: )?R1 at 7$"):
            pool.result(numbers[3])
        assert pool.result(numbers[4]) == 40
    finally:
        pool.close()


def test_a_loader_that_cannot_make_ready_still_forks_its_workers():
    def ready():
        raise OSError("a layer that cannot be read")

    pool = started(2, ready, lambda task: task + 1)
    try:
        assert pool.result(pool.submit(1)) == 2
    finally:
        pool.close()


def test_a_worker_killed_breaks_the_pool_keeping_the_results_before_and_leaves_nothing_running():
    def run(task):
        if task == 3:
            time.sleep(0.5)  # the tasks before it done
            os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's OOM killer would
        return task

    pool, everyone = started_and_seen(2, lambda: None, run)
    try:
        numbers = [pool.submit(task) for task in range(6)]
        assert [pool.result(n) for n in numbers[:3]] == [0, 1, 2]
        with pytest.raises(WorkerError, match=f"^{re.escape(BROKEN)}$"):
            pool.result(numbers[3])
    finally:
        pool.close()
    assert ended(everyone)


def test_closing_at_once_drops_the_tasks_queued_and_waits_for_nothing():
    pool, everyone = started_and_seen(2, lambda: None, lambda task: time.sleep(task[0]))
    for _ in range(6):
        pool.submit((30, b"x" * 2_000_000))  # more than the pipe holds: the queue's writer is still writing
    began = time.monotonic()
    pool.close(wait=False)
    assert time.monotonic() - began < 10
    assert len(everyone) == 3  # the loader and its two workers
    assert ended(everyone)


def test_after_the_last_task_the_workers_end_on_their_own_and_a_killed_one_is_still_told():
    def run(task):
        if task == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        return task

    pool, everyone = started_and_seen(2, lambda: None, run)
    try:
        numbers = [pool.submit(task) for task in range(4)]
        pool.no_more()  # the workers end as the queue empties: their ending is no longer a failure by itself ...
        results = {}
        for n in numbers:
            try:
                results[n] = pool.result(n)
            except WorkerError as exc:
                results[n] = str(exc)
        assert ended(everyone)  # ... before close() is called
    finally:
        pool.close()
    assert results[numbers[2]] == BROKEN  # ... but the task that never came back is still an error
    assert results[numbers[0]] == 0


def test_a_task_that_cannot_be_pickled_is_refused_when_submitted_and_the_pool_goes_on():
    pool = started(2, lambda: None, lambda task: task)
    try:
        with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
            pool.submit(lambda: None)
        assert pool.result(pool.submit("after")) == "after"
    finally:
        pool.close()


def test_a_worker_ended_halfway_through_a_result_breaks_the_pool_at_once(monkeypatch):
    real = Connection.send_bytes

    def cut_short(self, buf, offset=0, size=None):
        """In the workers (forked after this patch): half of a large result written, then killed."""
        data = bytes(buf)
        if len(data) > 1_000_000:
            self._send(struct.pack("!i", len(data)) + data[: len(data) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
        return real(self, buf, offset, size)

    monkeypatch.setattr(Connection, "send_bytes", cut_short)
    pool, everyone = started_and_seen(2, lambda: None, lambda task: b"x" * task)
    try:
        assert pool.result(pool.submit(10)) == b"x" * 10
        began = time.monotonic()
        with pytest.raises(WorkerError, match=f"^{re.escape(BROKEN)}$"):
            pool.result(pool.submit(5_000_000))  # more than a pipe holds: written in many pieces
        assert time.monotonic() - began < 20
    finally:
        pool.close(wait=False)
    assert ended(everyone)


def records_of(n: int) -> Records:
    return Records.of((b'{"n":%d,"pad":"%s"}\n' % (i, b"y" * 300), ("p", i)) for i in range(n))


def test_a_results_text_travels_beside_its_pickle_and_comes_back_the_same():
    pool = started(2, lambda: None, records_of)
    try:
        got = [pool.result(pool.submit(n)) for n in (0, 3, 20_000)]  # 20,000 lines: 6.5 MB, many pipefuls
    finally:
        pool.close()
    for n, records in zip((0, 3, 20_000), got, strict=True):
        sent = records_of(n)
        assert (bytes(records.text), records.ends, records.rows) == (sent.text, sent.ends, sent.rows)
        assert records.lines([n - 1] if n else []) == ([b'{"n":%d,"pad":"%s"}\n' % (n - 1, b"y" * 300)] if n else [])
    assert isinstance(got[2].text, memoryview)
    assert got[2].text.readonly
    again = pickle.loads(pickle.dumps(got[2]))  # pickled in band (the Dask engine, a test) it is bytes again
    assert type(again.text) is bytes
    assert again.text == records_of(20_000).text


def test_a_worker_ended_halfway_through_a_results_text_breaks_the_pool_at_once(monkeypatch):
    real = pool_module._send

    def cut_short(sender, data, buffers):
        """In the workers (forked after this patch): the pickle and half of a large text written, then killed."""
        if buffers and buffers[0].raw().nbytes > 1_000_000:
            view = buffers[0].raw()
            sender.send_bytes(struct.pack("<QQ", 1, view.nbytes) + data)
            os.write(sender.fileno(), view[: view.nbytes // 2])
            os.kill(os.getpid(), signal.SIGKILL)
        return real(sender, data, buffers)

    monkeypatch.setattr(pool_module, "_send", cut_short)
    pool, everyone = started_and_seen(2, lambda: None, records_of)
    try:
        assert len(pool.result(pool.submit(10))) == 10
        began = time.monotonic()
        with pytest.raises(WorkerError, match=f"^{re.escape(BROKEN)}$"):
            pool.result(pool.submit(20_000))
        assert time.monotonic() - began < 20
    finally:
        pool.close(wait=False)
    assert ended(everyone)


def test_systemexit_in_a_task_is_that_tasks_error_not_a_dead_worker():
    def run(task):
        if task == 1:
            raise SystemExit(3)
        return task

    pool = started(2, lambda: None, run)
    try:
        with pytest.raises(RuntimeError, match=r"^SystemExit: 3$"):
            pool.result(pool.submit(1))
        assert pool.result(pool.submit(2)) == 2
    finally:
        pool.close()


def test_a_loader_stopped_while_it_reads_is_interrupted_as_by_ctrl_c_and_ends_quietly(tmp_path, capfd):
    note = tmp_path / "interrupted"

    def ready():
        try:
            time.sleep(30)  # a long PostGIS query, say
        except KeyboardInterrupt:  # where psycopg sends the server its cancel request
            note.write_text("cancelled")
            raise

    pool, everyone = started_and_seen(2, ready, lambda task: task, 1)
    time.sleep(0.3)  # the loader inside ready()
    began = time.monotonic()
    pool.close(wait=False)
    assert ended(everyone)
    assert time.monotonic() - began < 10
    assert note.read_text() == "cancelled"
    assert "Traceback" not in capfd.readouterr().err
