"""Reading, validating and building rows in worker processes, while the import writes.

One Python process cannot both read and validate a big file and write it to the database
at full speed: both need the interpreter lock, so the work adds up rather than overlapping.
Here the file is cut into chunks of whole records (:meth:`Source.chunks`, which only counts
lines), and worker processes read each chunk, validate its records and, when the sink can
take rows directly (lmsgate's own store), turn them into rows bound for the database. The
importing process only writes, in the file's order, so "the first row in the file wins" and
resuming work exactly as without workers.

Workers are fresh interpreters ("spawn"), so they inherit nothing from the importing process
(no database connections, no threads), and each costs only its own memory: a fork server
would have been one more process of about 57 MB. Starting one takes about half a second,
which is why small files are read without them. They ignore Ctrl-C, which the importing
process handles, and exit on their own if it disappears (``kill -9``).

Like every spawned process, a worker imports the program's ``__main__`` module again (as
``__mp_main__``): a script that runs an import itself must keep its top level behind
``if __name__ == "__main__":``. The ``lmsgate`` command does.
"""

from __future__ import annotations

import asyncio
import gc
import io
import multiprocessing
import os
import pickle
import signal
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Self

from lmsgate.bulk.batches import Batch, batches
from lmsgate.bulk.completions import CompletionRows
from lmsgate.bulk.sources import Chunk, Source
from lmsgate.signals import ctrl_c_ignored

__all__ = ["MIN_FILE_BYTES", "WorkerJob", "WorkerPool", "default_workers", "read_in_workers"]

MIN_FILE_BYTES = 4_000_000
"""Files smaller than this (about 50,000 rows) are read in the importing process: starting
the workers would take longer than they save."""
MAX_DEFAULT_WORKERS = 2
"""Each worker is about 85 MB. On 2 CPUs one worker already outpaced the writer once the
database held 1,000,000 rows, and the CPU count can overstate what a container may use
(affinity is not a CPU quota), so the default stays small; ``--workers`` sets more."""


def default_workers() -> int:
    """One worker per CPU this process may use, less one for the writer; at least one, and
    at most ``MAX_DEFAULT_WORKERS`` (the writer cannot keep up with more).

    Measured on 2 CPUs, 1,000,000 rows into SQLite (when workers still came from a fork
    server): 1 worker 35,470 rows/s, 2 workers 33,663 to 35,123; the second worker only added
    memory (PSS 280 MB in all against 338 to 371). With 200,000 rows the second one helped
    (39,000 to 40,000 rows/s against 34,000): the writer's share grows with the database."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(MAX_DEFAULT_WORKERS, cpus - 1))


@dataclass(frozen=True)
class WorkerJob:
    """What a worker needs to read a chunk, sent with each one (about a kilobyte)."""

    source: Source
    rows: CompletionRows
    build: Callable[[Sequence[Any]], Any] | None
    """The sink's row builder (:meth:`Connector.completion_row_builder`), applied to each
    chunk's valid items; None to send the items themselves (a dry run only needs counts)."""


def _start(importer: Connection) -> None:
    """Set a new worker up: Ctrl-C ignored, the collector mostly out of the way (see
    :func:`~lmsgate.bulk.importer.fewer_collections`), and a watch on the importing process.

    ``importer`` is the reading end of a pipe whose only writing end the importing process
    holds. Killed with SIGKILL, that process cannot stop its workers, and they would wait for
    work forever: they hold both ends of their work queue themselves, so its closing never
    shows. When the importer dies, its end of this pipe closes, the read below ends, and the
    worker exits."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)

    def watch() -> None:
        try:
            importer.recv()
        except (EOFError, OSError):
            pass
        os._exit(1)

    threading.Thread(target=watch, name="importer-watch", daemon=True).start()


def _ready() -> None:
    """A worker's first call: it only makes the pool start the process."""


class WorkerPool:
    """Worker processes, started as soon as an import knows it will want them.

    A worker takes about half a second to start (a new interpreter that imports lmsgate's
    models). Started before the importing process opens the store and looks the account up,
    it is ready by the time the first chunk is; started afterwards, the import waited for it.
    Close it (or use it as a context manager) whatever happens; a pool the import turns out
    not to need (a connector that takes no built rows) is closed unused."""

    def __init__(self, workers: int) -> None:
        # A new process ignores Ctrl-C only once _start runs, half a second later: made while
        # this process ignores it, the workers ignore it from the start.
        with ctrl_c_ignored():
            context = _context()
            self.size = workers
            self._watched, self._alive = context.Pipe(duplex=False)
            self.executor = ProcessPoolExecutor(workers, mp_context=context, initializer=_start,
                                                initargs=(self._watched,))
            for _ in range(workers):  # the executor starts one process per call waiting, up to its size
                self.executor.submit(_ready)

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
        self._alive.close()
        self._watched.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read(job: WorkerJob, chunk: Chunk) -> Batch:
    """One chunk, read and validated (and built into rows), in a worker."""
    records = job.source.chunk_records(chunk)
    batch = next(batches(records, job.rows.convert, 1 << 62, chunk.offset, chunk.line), None) or Batch()
    batch.end, batch.next_line = chunk.end, chunk.next_line  # blank lines at its end included
    if job.build is not None and batch.items:
        batch.items = _flat_pickle(job.build(batch.items))
    elif job.build is None:
        batch.items = [None] * len(batch.items)  # validated; a dry run needs nothing more
    return batch


def _flat_pickle(rows: Any) -> bytes:
    """Built rows, pickled without a memo: they are flat tuples of plain values, with nothing
    shared worth a reference, and the memo's bookkeeping was half the cost of pickling them
    (5,000 completion rows: 0.35 µs a row against 0.78). The importing process unpickles them
    in :func:`read_in_workers`."""
    out = io.BytesIO()
    pickler = pickle.Pickler(out, pickle.HIGHEST_PROTOCOL)
    pickler.fast = True  # no memo; safe because rows never refer to themselves
    pickler.dump(rows)
    return out.getvalue()


def _unpickled(job: WorkerJob, batch: Batch) -> Batch:
    """A worker's batch with its rows unpickled (see :func:`_flat_pickle`)."""
    if job.build is not None and isinstance(batch.items, bytes):
        batch.items = pickle.loads(batch.items)
    return batch


def _context() -> multiprocessing.context.BaseContext:
    return multiprocessing.get_context("spawn")


async def read_in_workers(job: WorkerJob, chunks: Iterator[Chunk], pool: WorkerPool,
                          ahead: int) -> AsyncIterator[Batch]:
    """The batches of ``chunks``, in order, read by the ``pool``'s processes, at most ``ahead``
    chunks ahead of the consumer, so memory stays flat however big the file. While the
    consumer writes, the workers go on until they are that far ahead."""
    loop = asyncio.get_running_loop()
    pending: deque[asyncio.Future[Batch]] = deque()
    try:
        for chunk in chunks:
            pending.append(loop.run_in_executor(pool.executor, _read, job, chunk))
            if len(pending) >= ahead:
                yield _unpickled(job, await pending.popleft())
        while pending:
            yield _unpickled(job, await pending.popleft())
    finally:
        for f in pending:
            f.cancel()
