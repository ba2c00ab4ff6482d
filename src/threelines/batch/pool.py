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
everything it read, copy-on-write: the coordinates and GEOS's geometries
are only read, and only the pages of the Python objects whose reference
counts a worker changes are copied. On the province benchmark this took
0.2-0.3 s of CPU and 0.1-0.15 s of wall time off a 10,000-project batch
(see ``docs/benchmarks.md``).

The workers take tasks from one queue, whichever is free first (each task
pickled as it is submitted, so that one that cannot be is refused there).
Each worker sends its results back through a pipe of its own, whose write
end only it holds, and a thread of the batch process reads them as they
come, so that a worker never waits for the batch to be ready for its
result. A result's large buffers (a chunk's text: see
:class:`~threelines.batch.results.Records`) travel out of band (pickle's
protocol 5): a header before the pickle gives their number and sizes, and
each is written after it as it is and read into memory of its own,
instead of being copied into the pickle, then out of the pipe through the
pipe reader's own buffers, then out of the pickle again (on the hard
benchmark set, 45 MB a run, which made some 20,000 fresh pages for the
kernel to fault in). The end of a worker's pipe is the end of the
worker: a worker that ends before it is asked to (killed, out of memory,
crashed, even halfway through a result) breaks the pool
(:class:`WorkerError`), keeping the results that came before. Each
process ends with its parent (see :func:`die_with_parent`): the loader
with the thread of the batch process that started it, the workers with
the loader.

This needs ``fork``, and is tested on Linux; so does the batch's output
lock (``fcntl``).
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import pickle
import signal
import struct
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import wait
from typing import Any

from threelines.errors import ThreelinesError
from threelines.rawio import read_into, write_all

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

    Nothing is started until :meth:`start`; once it is, :meth:`close` must
    be called (:class:`~threelines.batch.workers.Screener` does, on leaving its ``with`` block).

    Parameters
    ----------
    jobs : int
        Worker processes.
    ready : callable
        Run once in the loader before it forks the workers (reading the layers, say); what it makes, they inherit.
        What it cannot make is left for the tasks to make and report (an exception is only logged at -v).
    run : callable
        Run in a worker on each task; what it returns (or raises) is the task's result.
    """

    def __init__(self, jobs: int, ready: Callable[[], None], run: Callable[[Any], Any]) -> None:
        self.jobs, self._ready, self._run = jobs, ready, run
        self._loader = None
        self._sent = 0
        self._done: dict[int, tuple[bool, Any]] = {}
        self._broken = self._closing = self._queued_all = self._all_ended = False
        self._arrived = threading.Condition()

    def start(self) -> None:
        """Fork the loader (which forks the workers once ``ready`` is done)."""
        context = multiprocessing.get_context("fork")
        self._tasks = context.Queue()  # written by a feeder thread: a put never waits for a worker
        pipes = [context.Pipe(duplex=False) for _ in range(self.jobs)]  # (read, write): one per worker
        loader = context.Process(
            target=_load_and_fork,
            args=(os.getpid(), self._ready, self._run, self._tasks, [sender for _, sender in pipes]),
            name="threelines-loader",
        )
        try:
            loader.start()
        finally:
            for _, sender in pipes:
                sender.close()  # held by its worker alone: the pipe's end is the worker's
        self._loader = loader  # (only once it runs: close() has nothing to end before)
        self._results = [results for results, _ in pipes]
        try:
            self._reader = threading.Thread(target=self._collect, name="threelines-results", daemon=True)
            self._reader.start()
        except BaseException:
            self._loader.terminate()
            raise

    def submit(self, task: Any) -> int:
        """Queue a task; returns its number, for :meth:`result`.

        Raises
        ------
        pickle.PicklingError, TypeError, AttributeError
            If the task cannot be pickled (it is not queued).
        """
        data = pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL)  # here, not in the queue's feeder thread
        number = self._sent
        self._tasks.put((number, data))
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
        if self._loader is None or self._closing:
            return
        self._closing = True
        if wait and not self._broken:
            self.no_more()
            self._tasks.close()
            self._tasks.join_thread()  # the Nones are written (a few bytes: the workers are taking what is left)
            return
        self._loader.terminate()  # its workers end with it
        self._tasks.cancel_join_thread()  # what is left in the queue is dropped, not waited for
        self._tasks.close()

    def _collect(self) -> None:
        """Read the results as they come (in a thread), until every worker has ended."""
        live = list(self._results)
        while live:
            for results in wait(live):
                try:
                    number, ok, value = _receive(results)
                except Exception as exc:  # its worker has ended (EOFError), maybe halfway through a result
                    live.remove(results)
                    results.close()
                    cut = not isinstance(exc, EOFError)  # a result cut short, or one that cannot be made here
                    if cut or not (self._closing or self._queued_all):  # or it ended before it was asked to
                        log.debug("a worker process ended; %d left", len(live), exc_info=cut)
                        self._break()
                    continue
                with self._arrived:
                    self._done[number] = (ok, value)
                    self._arrived.notify_all()
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
            self._tasks.cancel_join_thread()


def _load_and_fork(parent: int, ready, run, tasks, senders: list) -> None:
    """The loader: run ``ready``, fork a worker per sender, wait for them."""
    die_with_parent(parent)
    # While it reads (a PostGIS query, say), the batch's end (SIGTERM) and Ctrl-C stop the reading as
    # Ctrl-C does: psycopg then cancels its query on the server. Then the loader ends, quietly.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        try:
            ready()
        except Exception:  # the workers make it again on their first task, and report what fails
            log.debug("the loader could not make ready", exc_info=True)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the workers leave Ctrl-C to the batch process, which ends them
    except KeyboardInterrupt:
        os._exit(1)
    context = multiprocessing.get_context("fork")
    loader = os.getpid()
    workers = [
        context.Process(target=_work, args=(loader, run, tasks, senders, i), name=f"threelines-worker-{i}")
        for i in range(len(senders))
    ]
    for worker in workers:
        worker.start()
    for sender in senders:
        sender.close()
    for worker in workers:
        worker.join()


def _work(loader: int, run, tasks, senders: list, mine: int) -> None:
    """A worker: run each task it takes from the queue and send its result back, until it takes None."""
    die_with_parent(loader)
    for i, sender in enumerate(senders):
        if i != mine:
            sender.close()  # only its own: the batch process sees it end when this process ends
    sender = senders[mine]
    while (item := tasks.get()) is not None:
        number, data = item
        try:
            message = (number, True, run(pickle.loads(data)))
        except BaseException as exc:  # raised again in the batch process (SystemExit and the like as their words)
            message = (number, False, exc if isinstance(exc, Exception) else RuntimeError(_words(exc)))
        try:
            buffers: list[pickle.PickleBuffer] = []
            data = pickle.dumps(message, protocol=5, buffer_callback=buffers.append)
            if not message[1]:
                pickle.loads(data, buffers=buffers)  # an exception that pickles but cannot be made again from it
        except Exception as exc:  # what cannot be sent as it is: its words go
            buffers, data = [], pickle.dumps((number, False, RuntimeError(_words(exc if message[1] else message[2]))))
        _send(sender, data, buffers)


def _send(sender, data: bytes, buffers: list[pickle.PickleBuffer]) -> None:
    """Send a result: its pickle, after the number and sizes of its out-of-band buffers, then each buffer as it is."""
    views = [buffer.raw() for buffer in buffers]
    sender.send_bytes(struct.pack(f"<Q{len(views)}Q", len(views), *(view.nbytes for view in views)) + data)
    for view in views:
        write_all(sender.fileno(), view)


def _receive(results) -> tuple[int, bool, Any]:
    """A result as :func:`_send` sent it: its buffers read into bytearrays of their own, then its pickle loaded.

    Raises
    ------
    EOFError
        If the worker has ended (its pipe is closed) before the result.
    ConnectionError
        If it ended halfway through the result's buffers.
    """
    head = results.recv_bytes()
    (count,) = struct.unpack_from("<Q", head)
    sizes = struct.unpack_from(f"<{count}Q", head, 8)
    pipe = open(results.fileno(), "rb", buffering=0, closefd=False)  # noqa: SIM115 (a view of the pipe, not closed here)
    buffers = []
    for size in sizes:
        buffers.append(bytearray(size))
        if not read_into(pipe, buffers[-1]):
            raise ConnectionError("a worker's result cut short")
    return pickle.loads(memoryview(head)[8 * (count + 1) :], buffers=buffers)


def _words(exc: BaseException) -> str:
    """An exception's type and text (its type alone when its text cannot be made)."""
    try:
        return f"{type(exc).__name__}: {exc}"
    except Exception:
        return type(exc).__name__


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
