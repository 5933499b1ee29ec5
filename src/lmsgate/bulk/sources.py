"""Reading a CSV or JSON Lines file record by record, with line numbers and byte offsets.

A record knows the line it starts on (for reports) and the byte offset just after it (to
resume there). Files are read in binary and decoded line by line, so memory stays flat
whatever the file size, and a resumed read can seek straight to an offset.
"""

from __future__ import annotations

import csv
import enum
from collections.abc import Iterator
from itertools import chain, islice
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from lmsgate.jsontext import loads

__all__ = ["Chunk", "Format", "Record", "Source", "SourceError"]

_BOM = b"\xef\xbb\xbf"
_MAX_FIELD = 64 << 20
"""The longest CSV value read (64 MiB). Python's csv module stops at 128 KiB by default, and an
export of values that the API took (a long ``passthrough``, say) could not be imported back."""
csv.field_size_limit(max(csv.field_size_limit(), _MAX_FIELD))
_STRICT = {"strict": True}
"""A quote that is never closed is an error at the end of the file, not a value that silently
holds every line after it; a character after a closing quote is an error too. The same rules
cut the file into chunks and read them, so both agree on where each record ends."""


def _csv_problem(exc: csv.Error) -> str:
    """The csv module's complaint, in terms of the file rather than of Python's ``open``."""
    text = str(exc)
    if "universal-newline" in text:  # lines ending in a lone CR: the csv module sees one line
        return ("its lines end with a carriage return alone (an old Mac format); save the file with "
                "LF or CRLF line endings")
    return text


class SourceError(Exception):
    """The file cannot be read as asked (missing, not a file, no CSV header …)."""


class Format(str, enum.Enum):
    CSV = "csv"
    JSONL = "jsonl"

    @classmethod
    def for_path(cls, path: Path, given: str | None = None) -> Format:
        """The format named by ``given``, else by the file name's extension."""
        if given:
            return cls(given)
        suffix = path.suffix.lower()
        if suffix == ".csv":
            return cls.CSV
        if suffix in (".jsonl", ".ndjson", ".json"):
            return cls.JSONL
        raise SourceError(f"{path.name}: cannot tell the format from the extension {suffix or '(none)'!r}; "
                          "pass --format csv or --format jsonl")


@dataclass(slots=True)
class Record:
    line: int
    """Line number (from 1) where the record starts."""
    end: int
    """Byte offset just after the record: where a resumed import starts."""
    values: dict[str, Any] | None
    """CSV: column name → cell text. JSON Lines: the decoded object. None if unreadable."""
    raw: str
    """The record's text as in the file, for the report of rejected rows."""
    problem: str | None = None
    """Why the record could not be read, when ``values`` is None."""


def _csv_record(header: list[str], row: list[str], line: int, end: int, raw: str) -> Record | None:
    """The record a CSV row read from ``raw`` makes, or None for a blank line."""
    if not row or (len(row) == 1 and not row[0].strip()):
        return None
    if len(row) != len(header):
        return Record(line, end, None, raw, f"has {len(row)} fields where the header has {len(header)}")
    return Record(line, end, dict(zip(header, row)), raw)


@dataclass(frozen=True, slots=True)
class Chunk:
    """A run of whole records: from byte ``offset`` (line ``line``) to byte ``end``, where
    line ``next_line`` starts."""

    offset: int
    line: int
    end: int
    next_line: int


class _Lines:
    """The lines of a binary file from an offset, decoded, counting bytes and lines consumed.

    The csv module pulls exactly the lines one record needs, so after each record ``offset``
    and ``line`` point just past it, and ``taken`` holds its text.
    """

    def __init__(self, f: IO[bytes], offset: int, line: int) -> None:
        self._f = f
        self.offset = offset
        self.line = line
        self.taken: list[str] = []
        self.undecodable = False

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        raw = self._f.readline()
        if not raw:
            raise StopIteration
        if self.offset == 0 and raw.startswith(_BOM):
            raw = raw[len(_BOM):]
            self.offset += len(_BOM)
        self.offset += len(raw)
        self.line += 1
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            self.undecodable = True
            text = raw.decode("utf-8", "replace")
        self.taken.append(text)
        return text

    def take(self) -> tuple[str, bool]:
        text, bad = "".join(self.taken).rstrip("\r\n"), self.undecodable
        self.taken, self.undecodable = [], False
        return text, bad


class Source:
    """A completions file. ``header`` is the CSV header (None for JSON Lines)."""

    def __init__(self, path: Path, fmt: Format) -> None:
        if not path.exists():
            raise SourceError(f"{path}: no such file")
        if not path.is_file():
            raise SourceError(f"{path}: not a file")
        self.path = path
        self.format = fmt
        self.size = path.stat().st_size
        self.header: list[str] | None = None
        self._body_start = 0
        self._body_line = 1
        if fmt is Format.CSV:
            self._read_header()

    def _read_header(self) -> None:
        with self.path.open("rb") as f:
            lines = _Lines(f, 0, 0)
            try:
                header = next(csv.reader(lines, **_STRICT))
            except StopIteration:
                raise SourceError(f"{self.path}: the file is empty; a CSV file needs a header row") from None
            except csv.Error as exc:
                raise SourceError(f"{self.path}: the header row is not valid CSV: {_csv_problem(exc)}") from None
            _, bad = lines.take()
            if bad:
                raise SourceError(f"{self.path}: the header row is not valid UTF-8")
            self.header = [name.strip() for name in header]
            self._body_start, self._body_line = lines.offset, lines.line + 1
        if not any(self.header):
            raise SourceError(f"{self.path}: the header row is empty")
        duplicates = sorted({n for n in self.header if n and self.header.count(n) > 1})  # blanks: Excel's
        if duplicates:
            raise SourceError(f"{self.path}: the header names these columns twice: {', '.join(duplicates)}")

    @property
    def start(self) -> tuple[int, int]:
        """``(offset, line)`` of the first record (just past the CSV header)."""
        return self._body_start, self._body_line

    def records(self, offset: int = 0, line: int = 1, until: int | None = None) -> Iterator[Record]:
        """The records from byte ``offset`` on, which must be a record boundary (0, or the
        ``end`` of a record), ``line`` being the line number there; up to byte ``until`` (a
        record boundary too, such as a :class:`Chunk`'s ``end``) or the end of the file."""
        if offset < self._body_start:
            offset, line = self._body_start, self._body_line
        with self.path.open("rb") as f:
            f.seek(offset)
            records = self._csv(f, offset, line) if self.format is Format.CSV else self._jsonl(f, offset, line)
            if until is None:
                yield from records
                return
            if offset >= until:
                return
            for record in records:
                if record.end > until:
                    return  # it starts at ``until`` or later (blank lines came first)
                yield record
                if record.end == until:
                    return

    def chunk_records(self, chunk: Chunk) -> Iterator[Record]:
        """The records of ``chunk``, as :meth:`records` gives them, except that every record's
        ``end`` is the chunk's: what a worker process reads, where only a whole chunk's end is
        a place to resume from.

        A CSV chunk is read and decoded in one go, and the csv module takes its lines from a
        list, not one ``readline`` and decode at a time through Python: the 100,000 rows of
        the import benchmark's file, in chunks of 5,000, took 1.50-1.58 µs a record against
        1.91-2.02 µs. A chunk that is not valid UTF-8 is read line by line, as :meth:`records`
        reads it, to tell which lines."""
        text = None
        if self.format is Format.CSV and self._body_start <= chunk.offset < chunk.end:
            with self.path.open("rb") as f:
                f.seek(chunk.offset)
                data = f.read(chunk.end - chunk.offset)
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                pass
        if text is None:
            for record in self.records(chunk.offset, chunk.line, until=chunk.end):
                yield Record(record.line, chunk.end, record.values, record.raw, record.problem)
            return
        parts = text.split("\n")  # lines as readline cuts them: at LF only, each keeping it
        lines = [part + "\n" for part in parts[:-1]]
        if parts[-1]:
            lines.append(parts[-1])
        assert self.header is not None
        header, end = self.header, chunk.end
        reader = csv.reader(lines, **_STRICT)
        done = 0  # lines of the chunk before the record being read
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raw = "".join(lines[done:reader.line_num]).rstrip("\r\n")
                yield Record(chunk.line + done, end, None, raw, f"not valid CSV: {_csv_problem(exc)}")
                done = reader.line_num
                continue
            start, taken = chunk.line + done, reader.line_num
            raw = (lines[done] if taken == done + 1 else "".join(lines[done:taken])).rstrip("\r\n")
            done = taken
            record = _csv_record(header, row, start, end, raw)
            if record is not None:
                yield record

    def chunks(self, offset: int, line: int, size: int) -> Iterator[Chunk]:
        """The file from ``offset`` (a record boundary, at line ``line``) cut into pieces of
        about ``size`` lines, each ending where a record ends, so that each can be read on its
        own with :meth:`records` (in another process, say).

        Cheap: lines are counted, not parsed. Only a CSV piece holding a double quote is read
        with the csv module, because a quoted value can run over several lines; and a piece
        never ends inside such a value."""
        if offset < self._body_start:
            offset, line = self._body_start, self._body_line
        with self.path.open("rb") as f:
            f.seek(offset)
            while True:
                lines = list(islice(f, size))
                if not lines:
                    return
                if self.format is Format.CSV and any(b'"' in raw for raw in lines):
                    lines = self._whole_records(f, lines)
                end, next_line = offset + sum(map(len, lines)), line + len(lines)
                yield Chunk(offset, line, end, next_line)
                offset, line = end, next_line

    @staticmethod
    def _whole_records(f: IO[bytes], lines: list[bytes]) -> list[bytes]:
        """``lines``, plus the lines that follow until the last record that starts in them
        ends, as the csv module reads records (which :meth:`_csv` uses too)."""
        taken: list[bytes] = []
        more = iter(lines)

        def feed() -> Iterator[str]:
            for raw in chain(more, f):
                taken.append(raw)
                yield raw.decode("utf-8", "replace")

        reader = csv.reader(feed(), **_STRICT)
        while True:
            try:
                next(reader)
            except StopIteration:
                return taken
            except csv.Error:
                pass  # an unreadable record ends where the csv module gave up, as in _csv
            if len(taken) >= len(lines):
                return taken

    def _csv(self, f: IO[bytes], offset: int, line: int) -> Iterator[Record]:
        assert self.header is not None
        header = self.header
        lines = _Lines(f, offset, line - 1)
        reader = csv.reader(lines, **_STRICT)
        while True:
            start = lines.line + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raw, _ = lines.take()
                yield Record(start, lines.offset, None, raw, f"not valid CSV: {_csv_problem(exc)}")
                continue
            raw, bad = lines.take()
            record = _csv_record(header, row, start, lines.offset, raw)
            if record is not None:
                yield Record(start, lines.offset, None, raw, "not valid UTF-8") if bad else record

    @staticmethod
    def _jsonl(f: IO[bytes], offset: int, line: int) -> Iterator[Record]:
        for raw in f:
            if offset == 0 and raw.startswith(_BOM):
                raw = raw[len(_BOM):]
                offset += len(_BOM)
            offset += len(raw)
            line += 1
            stripped = raw.strip()
            if not stripped:
                continue
            try:
                value = loads(stripped)  # integers past 64 bits kept whole, as the API keeps them
            except orjson.JSONDecodeError as exc:
                yield Record(line - 1, offset, None, stripped.decode("utf-8", "replace"), f"not valid JSON: {exc}")
                continue
            text = stripped.decode("utf-8")  # orjson has checked it is UTF-8
            if not isinstance(value, dict):
                yield Record(line - 1, offset, None, text, f"not a JSON object but {type(value).__name__}")
            else:
                yield Record(line - 1, offset, value, text)

