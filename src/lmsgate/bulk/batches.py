"""Records of a file gathered into batches: what one write of an import covers.

A batch holds the records that passed validation (``items``), with their line numbers and
text for the report, the ones refused, and where the file stands after it (to resume there).
Batches are made the same way on the importing process and in its worker processes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from lmsgate.bulk.completions import Refused
from lmsgate.bulk.sources import Record

__all__ = ["Batch", "batches"]


@dataclass(slots=True)
class Batch:
    items: Any = field(default_factory=list)
    """The valid records as ``(user_id, body)``; or, made in a worker process, what the
    sink's row builder made of them (one entry per valid record, in order)."""
    lines: list[int] = field(default_factory=list)
    raws: list[str] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    records: int = 0
    end: int = 0
    """Byte offset just after the batch's last record: where a resumed import starts."""
    next_line: int = 0

    def add(self, record: Record, result: object) -> None:
        if isinstance(result, Refused):
            self.refused.append(result)
        else:
            self.items.append(result)
            self.lines.append(record.line)
            self.raws.append(record.raw)
        self.records += 1
        self.end = record.end
        self.next_line = record.line + record.raw.count("\n") + 1


def batches(records: Iterable[Record], convert: Callable[[Record], object], size: int,
            offset: int, line: int) -> Iterator[Batch]:
    """``records`` converted (validated) and cut into batches of ``size`` records; the
    records start at byte ``offset``, line ``line``."""
    batch = Batch(end=offset, next_line=line)
    for record in records:
        batch.add(record, convert(record))
        if batch.records >= size:
            yield batch
            batch = Batch(end=batch.end, next_line=batch.next_line)
    if batch.records:
        yield batch
