"""The completions import: read, validate, write in batches, remember where it got to.

Reading and validating the next batch overlaps with the store writing the previous one in a
worker thread. Where writing mostly waits (PostgreSQL, a remote server), reading runs in a
thread of its own, so that the event loop hands each batch on as soon as it is ready. On
SQLite it runs on the event loop between writes (see ``Sink.reads_beside``). Both threads
spend most of their time in Python, which holds the GIL, so the CPU time per
row, not the waiting, sets the pace; ``bench/import_bench.py`` prints it. Each record is
validated before anything of its batch is written; a record that fails goes to the report of
rejected rows with its line number and the reason, and the others go on. Nothing is written
in a dry run.
"""

from __future__ import annotations

import csv
import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectSendStream

from lmsgate.bulk.checkpoint import Checkpoint, Position
from lmsgate.bulk.completions import CompletionRows, Refused
from lmsgate.bulk.sinks import Item, Sink, first_error
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


@dataclass(slots=True)
class _Batch:
    items: list[Item] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    raws: list[str] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    records: int = 0
    end: int = 0
    next_line: int = 0


class RejectReport:
    """The CSV report of rejected rows: ``line``, ``reason`` and the ``record`` as in the file.

    Created at the first rejected row. A fresh import replaces an old report at the same
    path; a resumed one keeps the rows of lines before ``resume_line`` and appends.
    """

    def __init__(self, path: Path | None, *, resume_line: int | None = None,
                 echo: Callable[[Refused], None] | None = None) -> None:
        self.path = path
        self.echo = echo
        self.count = 0
        self._file = None
        self._writer: csv.DictWriter[str] | None = None
        if path is None or not path.exists():
            return
        if resume_line is None:
            path.unlink()
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
        if self._file is not None:
            self._file.flush()

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
    """

    def __init__(self, source: Source, rows: CompletionRows, sink: Sink | None, report: RejectReport, *,
                 batch_size: int = 5000, checkpoint: Checkpoint | None = None,
                 progress: Callable[[int, Totals], None] | None = None) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.source = source
        self.rows = rows
        self.sink = sink
        self.report = report
        self.batch_size = batch_size
        self.checkpoint = checkpoint
        self.progress = progress

    async def run(self, start: Position | None = None) -> Totals:
        """Import from ``start`` (a saved position) or from the top; returns the totals,
        those of earlier runs of a resumed import included."""
        totals = Totals.from_dict(start.counts) if start else Totals()
        offset, line = (start.offset, start.line) if start else self.source.start
        try:
            with fewer_collections():
                await self._run(totals, offset, line)
        finally:
            self.report.close()
        return totals

    async def _run(self, totals: Totals, offset: int, line: int) -> None:
        if self.sink is None:
            for batch in self._batches(offset, line):
                self._account(batch, [], totals)
                await anyio.lowlevel.checkpoint()
            return
        send, receive = anyio.create_memory_object_stream[_Batch](1)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._produce, send, offset, line)
                async with receive:
                    async for batch in receive:
                        outcomes = await self.sink.write(batch.items) if batch.items else []
                        self._account(batch, outcomes, totals)
        except BaseExceptionGroup as group:
            raise first_error(group) from None

    def _account(self, batch: _Batch, outcomes: list[bool | None | str], totals: Totals) -> None:
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

    async def _produce(self, send: MemoryObjectSendStream[_Batch], offset: int, line: int) -> None:
        batches = self._batches(offset, line)
        beside = self.sink is not None and self.sink.reads_beside
        async with send:
            while True:
                # Beside: read in a worker thread, so that this event loop stays free to hand
                # each batch to the writer the moment it is ready. Read on the loop itself, a
                # batch holds the loop for its whole read, and the writer waits that long.
                if beside:
                    batch = await anyio.to_thread.run_sync(next, batches, None)
                else:
                    batch = next(batches, None)
                    await anyio.lowlevel.checkpoint()
                if batch is None:
                    return
                try:
                    await send.send(batch)
                except anyio.BrokenResourceError:
                    return  # the writer stopped (an error, an interruption): so do we

    def _batches(self, offset: int, line: int) -> Iterator[_Batch]:
        batch = _Batch(end=offset, next_line=line)
        convert = self.rows.convert
        for record in self.source.records(offset, line):
            result = convert(record)
            if isinstance(result, Refused):
                batch.refused.append(result)
            else:
                batch.items.append(result)
                batch.lines.append(record.line)
                batch.raws.append(record.raw)
            batch.records += 1
            batch.end = record.end
            batch.next_line = record.line + record.raw.count("\n") + 1
            if batch.records >= self.batch_size:
                yield batch
                batch = _Batch(end=batch.end, next_line=batch.next_line)
        if batch.records:
            yield batch
