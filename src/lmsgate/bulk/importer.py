"""The completions import: read, validate, write in batches, remember where it got to.

Reading and validating the next batch overlaps with the store writing the previous one. Into
lmsgate's own store (and in a dry run), worker processes read, validate and build the rows
(:mod:`lmsgate.bulk.parallel`) and this process only writes, joining batches into bigger
transactions on SQLite. Otherwise (a connector without a row builder, a remote server,
``workers=0``) all happens here: where writing mostly waits (PostgreSQL, a remote server),
reading runs in a thread of its own, so that the event loop hands each batch on as soon as it
is ready; on SQLite it runs on the event loop between writes (see ``Sink.reads_beside``).
Threads share the interpreter lock, so there the CPU time per row, not the waiting, sets the
pace; ``bench/import_bench.py`` prints both. Each record is validated before anything of its
batch is written; a record that fails goes to the report of rejected rows with its line
number and the reason, and the others go on. Nothing is written in a dry run.
"""

from __future__ import annotations

import csv
import gc
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack, aclosing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectSendStream

from lmsgate.bulk.batches import Batch, batches
from lmsgate.bulk.checkpoint import Checkpoint, Position
from lmsgate.bulk.completions import CompletionRows, Refused
from lmsgate.bulk.parallel import WorkerJob, WorkerPool, read_in_workers
from lmsgate.bulk.sinks import Outcome, Sink, first_error
from lmsgate.bulk.sources import Source

__all__ = ["ImportJob", "RejectReport", "Totals"]

REPORT_COLUMNS = ("line", "reason", "record")


@dataclass
class Totals:
    rows: int = 0
    """Records read (rejected ones included)."""
    written: int = 0
    """Completions stored now (or sent, when the target cannot tell new from repeated)."""
    existing: int = 0
    """Completions that were stored already (same learner, learning object, completed_at)."""
    rejected: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"rows": self.rows, "written": self.written, "existing": self.existing, "rejected": self.rejected}

    @classmethod
    def from_dict(cls, counts: dict[str, int]) -> Totals:
        return cls(**{k: int(counts.get(k, 0)) for k in ("rows", "written", "existing", "rejected")})


class RejectReport:
    """The CSV report of rejected rows: ``line``, ``reason`` and the ``record`` as in the file.

    Created at the first rejected row. A fresh import replaces an old report at the same
    path once it has got through its first batch (a run that fails before, on a wrong key
    say, leaves the last report alone); a resumed one keeps the rows of lines before
    ``resume_line`` and appends.
    """

    def __init__(self, path: Path | None, *, resume_line: int | None = None,
                 echo: Callable[[Refused], None] | None = None) -> None:
        self.path = path
        self.echo = echo
        self.count = 0
        self._file = None
        self._writer: csv.DictWriter[str] | None = None
        self._old = False
        if path is None or not path.exists():
            return
        if resume_line is None:
            self._old = True  # replaced by the first row, or removed after the first batch
            return
        with path.open(newline="", encoding="utf-8") as f:
            kept = [row for row in csv.DictReader(f) if row.get("line", "").isdigit()
                    and int(row["line"]) < resume_line]
        path.unlink()
        for row in kept:
            self._write_row(row)

    def _write_row(self, row: dict[str, str]) -> None:
        if self._writer is None:
            assert self.path is not None
            self._old = False  # opening for writing replaces it
            self._file = self.path.open("w", newline="", encoding="utf-8")
            self._writer = csv.DictWriter(self._file, REPORT_COLUMNS)
            self._writer.writeheader()
        self._writer.writerow(row)

    def add(self, refused: Refused) -> None:
        self.count += 1
        if self.echo is not None:
            self.echo(refused)
        if self.path is not None:
            self._write_row({"line": str(refused.line), "reason": refused.reason, "record": refused.raw})

    def flush(self) -> None:
        """Called after each batch is accounted for."""
        if self._file is not None:
            self._file.flush()
        elif self._old and self.path is not None:
            self.path.unlink(missing_ok=True)  # this run is under way and has rejected nothing yet
            self._old = False

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            self._writer = None


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Run with the cyclic garbage collector mostly out of the way.

    A batch is thousands of small containers (records, dicts, validated models), none in a
    cycle, so reference counting frees them all; yet every 700 allocations the collector
    walks the young ones, and every few of those passes everything alive, batches included.
    That cost as much as validating (measured: 15 µs a row of 41). Here what exists at the
    start is set aside (``gc.freeze``) and collections run every 100,000 allocations instead;
    both are undone at the end.
    """
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


class ImportJob:
    """One import of one file. ``sink`` None is a dry run: validate and report, write nothing.

    ``progress`` is called after each batch with the byte offset reached and the totals.

    ``workers``: processes that read, validate and build rows beside the writes (see
    :mod:`lmsgate.bulk.parallel`); 0 does everything in this process. Used only when the
    sink can take rows built elsewhere (lmsgate's own store), or in a dry run. ``pool``: those
    workers, started already by the caller (who closes them); else they start with the read.
    """

    def __init__(self, source: Source, rows: CompletionRows, sink: Sink | None, report: RejectReport, *,
                 batch_size: int = 5000, checkpoint: Checkpoint | None = None,
                 progress: Callable[[int, Totals], None] | None = None, workers: int = 0,
                 pool: WorkerPool | None = None) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.source = source
        self.rows = rows
        self.sink = sink
        self.report = report
        self.batch_size = batch_size
        self.checkpoint = checkpoint
        self.progress = progress
        self.build = sink.row_builder() if sink is not None and workers > 0 else None
        self.workers = workers if sink is None or self.build is not None else 0
        self.pool = pool if self.workers else None
        """Workers started already (:class:`WorkerPool`, closed by its owner); None to start
        ``workers`` of them when the read begins."""
        self.stop = False
        """Set (by a signal handler, say) to stop once the write under way is stored and its
        position saved; :meth:`run` then raises ``KeyboardInterrupt``. Interrupted in the
        middle of a write instead, the import lost the position of rows it had stored."""

    async def run(self, start: Position | None = None) -> Totals:
        """Import from ``start`` (a saved position) or from the top; returns the totals,
        those of earlier runs of a resumed import included."""
        totals = Totals.from_dict(start.counts) if start else Totals()
        offset, line = (start.offset, start.line) if start else self.source.start
        try:
            with fewer_collections():
                await self._run(totals, offset, line)
            self.report.flush()  # a file with no rows at all: an old report goes all the same
        finally:
            self.report.close()
        if self.stop:
            raise KeyboardInterrupt
        return totals

    async def _run(self, totals: Totals, offset: int, line: int) -> None:
        if self.sink is None:
            async with aclosing(self._read(offset, line)) as read:
                async for batch in read:
                    self._account(batch, [], totals)
                    if self.stop:
                        break
            return
        send, receive = anyio.create_memory_object_stream[Batch](1)
        per_write = self.sink.rows_per_write if self.workers else 1
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._produce, send, offset, line)
                group: list[Batch] = []
                async with receive:
                    async for batch in receive:
                        group.append(batch)
                        if sum(len(b.items) for b in group) >= per_write:
                            await self._write(group, totals)
                            group = []
                            if self.stop:
                                break  # the reader finds the stream closed, and stops too
                    if group and not self.stop:
                        await self._write(group, totals)
        except BaseExceptionGroup as group_error:
            raise first_error(group_error) from None

    async def _write(self, group: list[Batch], totals: Totals) -> None:
        """Write the valid items of ``group`` (one store transaction, when the sink writes
        to lmsgate's store), then account for each batch in order."""
        assert self.sink is not None
        items = [item for b in group for item in b.items]
        if not items:
            outcomes: list[Outcome] = []
        elif self.workers:
            outcomes = await self.sink.write_built(items)
        else:
            outcomes = await self.sink.write(items)
        at = 0
        for b in group:
            self._account(b, outcomes[at:at + len(b.items)], totals)
            at += len(b.items)

    def _account(self, batch: Batch, outcomes: list[Outcome], totals: Totals) -> None:
        refused = list(batch.refused)
        for line, raw, outcome in zip(batch.lines, batch.raws, outcomes):
            if isinstance(outcome, str):
                refused.append(Refused(line, outcome, raw))
            elif outcome is False:
                totals.existing += 1
            else:
                totals.written += 1
        refused.sort(key=lambda r: r.line)
        for r in refused:
            self.report.add(r)
        self.report.flush()
        totals.rows += batch.records
        totals.rejected += len(refused)
        if self.checkpoint is not None and self.sink is not None:
            self.checkpoint.save(Position(batch.end, batch.next_line, totals.as_dict()))
        if self.progress is not None:
            self.progress(batch.end, totals)

    async def _produce(self, send: MemoryObjectSendStream[Batch], offset: int, line: int) -> None:
        async with send, aclosing(self._read(offset, line)) as read:
            async for batch in read:
                try:
                    await send.send(batch)
                except anyio.BrokenResourceError:
                    return  # the writer stopped (an error, an interruption): so do we

    async def _read(self, offset: int, line: int) -> AsyncIterator[Batch]:
        """The file's batches from ``offset``, read by workers, in a thread, or on the loop."""
        if self.workers:
            job = WorkerJob(self.source, self.rows, self.build)
            chunks = self.source.chunks(offset, line, self.batch_size)
            # Enough chunks ahead to keep the workers busy through a whole write.
            per_write = self.sink.rows_per_write if self.sink is not None else self.batch_size
            ahead = self.workers + 1 + -(-per_write // self.batch_size)
            with ExitStack() as stack:
                pool = self.pool if self.pool is not None else stack.enter_context(WorkerPool(self.workers))
                async with aclosing(read_in_workers(job, chunks, pool, ahead)) as read:
                    async for batch in read:
                        yield batch
            return
        found = batches(self.source.records(offset, line), self.rows.convert, self.batch_size, offset, line)
        beside = self.sink is not None and self.sink.reads_beside
        while True:
            # Beside: read in a worker thread, so that this event loop stays free to hand
            # each batch to the writer the moment it is ready. Read on the loop itself, a
            # batch holds the loop for its whole read, and the writer waits that long.
            if beside:
                batch = await anyio.to_thread.run_sync(next, found, None)
            else:
                batch = next(found, None)
                await anyio.lowlevel.checkpoint()
            if batch is None:
                return
            yield batch
