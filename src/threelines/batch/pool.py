"""Worker processes that share one reading of the layers: forked from a process that has read them.

Every worker of a batch needs every layer read whole. Read by each worker,
the layers cost a reading per worker, all of it at the start of the run,
when the batch process is also reading its first projects: three processes
on two cores, and the first chunk waits for the slowest (0.8 s on the hard
benchmark set). Read in the batch process itself, before forking, the
reading is not shared with anything: threads do not help, since building
the geometries holds the GIL.

So the batch process forks one process, the *loader*, as soon as it knows
that several chunks are coming. The loader reads the layers and makes what
every chunk shares (``ready``), on the core the batch process does not use
while it reads its projects, and then forks the workers. They inherit
everything it read, copy-on-write: a page is copied only when a worker
writes to it, and the geometries are only read. On the province benchmark
this took 0.2-0.3 s of CPU and 0.1-0.15 s of wall time off a 10,000-project
batch (see ``docs/benchmarks.md``).

The workers take tasks from one queue, whichever is free first, and send
their results back through one pipe, which a thread of the batch process
reads as they come, so that a worker never waits for the batch to be ready
for its result. Each worker holds the write end of a pipe of its own: when a
worker ends (killed, out of memory, crashed), that pipe closes and the pool
is broken (:class:`WorkerError`), keeping the results that came before.
Each process ends with its parent (see :func:`die_with_parent`): the loader
with the batch process, the workers with the loader.

This needs ``fork`` (Linux and the other POSIX systems); so does the batch's
output lock (``fcntl``).
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import pickle
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import wait
from typing import Any

from threelines.errors import ThreelinesError

log = logging.getLogger(__name__)


class WorkerError(ThreelinesError, RuntimeError):
    """A worker process ended abruptly (killed, out of memory, crashed) while screening."""


#: What a broken pool says (the run's results so far are kept).
BROKEN = (
    "a worker process ended abruptly (killed, out of memory or crashed); the results so far are kept: "
    "run again to resume (with --jobs 1 to see which project it was)"
)


class ForkedPool:
    """``jobs`` worker processes running ``run`` on tasks, forked from a loader process that has run ``ready``.

    Parameters
    ----------
    jobs : int
        Worker processes.
    ready : callable
        Run once in the loader before it forks the workers (reading the layers, say); what it makes, they inherit.
        It must not raise: what it cannot make is left for the tasks to make and report.
    run : callable
        Run in a worker on each task; what it returns (or raises) is the task's result.
    """

    def __init__(self, jobs: int, ready: Callable[[], None], run: Callable[[Any], Any]) -> None:
        context = multiprocessing.get_context("fork")
        self.jobs = jobs
        self._tasks = context.Queue()  # pickled and written by a feeder thread: a put never waits for a worker
        results, self._sender = context.Pipe(duplex=False)
        self._lock = context.Lock()  # one result written at a time
        ends = [os.pipe() for _ in range(jobs)]  # a worker's write end closes when it ends, however it ends
        self._loader = context.Process(
            target=_load_and_fork,
            args=(os.getpid(), ready, run, self._tasks, self._sender, self._lock, [end for _, end in ends]),
            name="threelines-loader",
        )
        self._loader.start()
        for _, end in ends:
            os.close(end)
        self._watched = [watch for watch, _ in ends]
        self._sent = 0
        self._done: dict[int, tuple[bool, Any]] = {}
        self._broken = self._closing = self._queued_all = self._all_ended = False
        self._arrived = threading.Condition()
        self._reader = threading.Thread(target=self._collect, args=(results,), name="threelines-results", daemon=True)
        self._reader.start()

    def submit(self, task: Any) -> int:
        """Queue a task; returns its number, for :meth:`result`."""
        number = self._sent
        self._tasks.put((number, task))
        self._sent += 1
        return number

    def no_more(self) -> None:
        """Say that no task follows: each worker ends once the queue is empty, so that :meth:`close` waits less."""
        if not self._queued_all:
            self._queued_all = True
            for _ in range(self.jobs):
                self._tasks.put(None)

    def result(self, number: int) -> Any:
        """A task's result (waiting for it), or what it raised, raised here.

        Raises
        ------
        WorkerError
            If a worker (or the loader) ended before the result came.
        """
        with self._arrived:
            self._arrived.wait_for(lambda: number in self._done or self._broken or self._all_ended)
            if number not in self._done:
                raise WorkerError(BROKEN)
            ok, value = self._done.pop(number)
        if not ok:
            raise value
        return value

    def close(self, wait: bool = True) -> None:
        """End the workers and the loader: once they finish the queued tasks, or (``wait`` False) at once.

        It does not wait for them to be gone: a process of a few hundred
        megabytes takes some tens of milliseconds to end, which the batch
        spends writing its tables. :mod:`multiprocessing` collects the
        loader when it has ended (at the latest, when this process exits).
        """
        self._closing = True
        if wait and not self._broken:
            self.no_more()
        else:  # the loader's end ends the workers (they end with their parent)
            self._loader.terminate()
            self._tasks.cancel_join_thread()  # tasks left in the queue's pipe are dropped, not waited for
        self._tasks.close()
        self._tasks.join_thread()
        self._sender.close()  # once the workers and the loader have ended too, the reader sees the pipe's end

    def _collect(self, results) -> None:
        """Read the results as they come (in a thread), until every worker has ended."""
        watched = list(self._watched)
        with results:
            while watched:
                ready = wait([results, *watched])
                if results in ready:
                    try:
                        number, ok, value = pickle.loads(results.recv_bytes())
                    except EOFError:  # every process that could write has ended, and close() is done
                        break
                    except Exception:  # a result cut short (its worker killed while writing it)
                        log.debug("a result could not be read", exc_info=True)
                        self._break()
                        continue
                    with self._arrived:
                        self._done[number] = (ok, value)
                        self._arrived.notify_all()
                    continue
                watched = [watch for watch in watched if watch not in ready]
                if not (self._closing or self._queued_all):  # a worker ended before it was asked to
                    log.debug("a worker process ended; %d left", len(watched))
                    self._break()
        for watch in self._watched:
            os.close(watch)
        with self._arrived:  # every worker has ended: a result not in by now never comes (one was killed)
            self._all_ended = True
            self._arrived.notify_all()

    def _break(self) -> None:
        """Mark the pool broken (what waits for a result is told) and end the workers left."""
        with self._arrived:
            self._broken = True
            self._arrived.notify_all()
        if not self._closing:
            self._closing = True
            self._loader.terminate()  # the workers end with it


def _load_and_fork(parent: int, ready, run, tasks, sender, lock, ends: list[int]) -> None:
    """The loader: run ``ready``, fork a worker per end, wait for them."""
    die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the batch process's to handle (it ends these)
    try:
        ready()
    except Exception:  # the workers make it again on their first task, and report what fails
        log.debug("the loader could not make ready", exc_info=True)
    context = multiprocessing.get_context("fork")
    loader = os.getpid()
    workers = [
        context.Process(target=_work, args=(loader, run, tasks, sender, lock, end, ends), name=f"threelines-worker-{i}")
        for i, end in enumerate(ends)
    ]
    for worker in workers:
        worker.start()
    for end in ends:
        os.close(end)
    for worker in workers:
        worker.join()


def _work(loader: int, run, tasks, sender, lock, mine: int, ends: list[int]) -> None:
    """A worker: run each task it takes from the queue and send its result back, until it takes None."""
    die_with_parent(loader)
    for end in ends:
        if end != mine:
            os.close(end)  # only its own: the batch process sees it close when this process ends
    while (item := tasks.get()) is not None:
        number, task = item
        try:
            message = (number, True, run(task))
        except Exception as exc:  # raised again in the batch process
            message = (number, False, exc)
        try:
            data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
            if not message[1]:
                pickle.loads(data)  # an exception that pickles but cannot be made again from it
        except Exception as exc:  # what cannot be sent as it is: its words go
            failed = exc if message[1] else message[2]
            data = pickle.dumps((number, False, RuntimeError(f"{type(failed).__name__}: {failed}")))
        with lock:
            sender.send_bytes(data)


def die_with_parent(parent: int) -> None:
    """End this process when ``parent`` dies (even by ``kill -9``), instead of living on as an orphan.

    Linux delivers SIGTERM on the parent's death (``PR_SET_PDEATHSIG``);
    elsewhere a daemon thread watches the parent process id.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a worker ends on it, whatever handler its parent set
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        armed = libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) == 0
    except (OSError, AttributeError):
        armed = False
    if os.getppid() != parent:  # it died before the signal was armed
        os._exit(1)
    if not armed:
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="watch-parent").start()


_PR_SET_PDEATHSIG = 1


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)
