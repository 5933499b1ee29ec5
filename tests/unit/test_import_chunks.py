"""Cutting an import file into chunks that worker processes read on their own.

Read chunk by chunk, a file must give exactly the records that one read from the top gives:
the same values, line numbers, ends and problems, whatever the quoting and line breaks.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from lmsgate import ids
from lmsgate.bulk.sources import Format, Source

LINES = [
    'u1,c1,plain\n',
    'u2,"c2, with a comma",quoted\n',
    'u3,"c3 runs\nover two lines",x\n',
    'u4,"c4 ""quoted"" inside",x\n',
    'u5,a"b,quote inside an unquoted field\n',
    'u6,"never closed\n',
    '\n',
    'u7,only two\n',
    'u8,c8,"three\n\nlines"\n',
    'u9,c9,crlf\r\n',
    'u10,"c10",\xe9t\xe9\n',
    '"u11\n',
    'u12,c12,line\u2028separator\n',
    'u13,c13,form\x0cfeed\x1cand\x85more\n',
    'u14,c\r14,lone carriage return\n',
]
NOT_UTF8 = b'u15,c15,caf\xe9 in Latin-1\n'


def _read_whole(source: Source) -> list[tuple[object, ...]]:
    return [(r.line, r.end, r.values, r.raw, r.problem) for r in source.records()]


def _read_chunked(source: Source, size: int) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    chunks = list(source.chunks(*source.start, size))
    for before, after in zip(chunks, chunks[1:]):
        assert (before.end, before.next_line) == (after.offset, after.line)
    assert not chunks or chunks[-1].end == source.size
    for c in chunks:
        out.extend((r.line, r.end, r.values, r.raw, r.problem) for r in source.records(c.offset, c.line, c.end))
    return out


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(st.sampled_from(LINES), max_size=30), size=st.integers(1, 6),
       last_newline=st.booleans())
def test_chunks_read_like_the_whole_file(lines: list[str], size: int, last_newline: bool) -> None:
    text = "user_id,learning_object_external_reference,note\n" + "".join(lines)
    if not last_newline:
        text = text.rstrip("\n")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.csv"
        path.write_bytes(text.encode())
        source = Source(path, Format.CSV)
        assert _read_chunked(source, size) == _read_whole(source)


def _read_chunks_whole(source: Source, size: int) -> list[tuple[object, ...]]:
    """As a worker reads: each chunk in one go (:meth:`Source.chunk_records`)."""
    out: list[tuple[object, ...]] = []
    for c in source.chunks(*source.start, size):
        for r in source.chunk_records(c):
            assert r.end == c.end
            out.append((r.line, r.values, r.raw, r.problem))
    return out


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(st.sampled_from([*LINES, NOT_UTF8]), max_size=30), size=st.integers(1, 6),
       last_newline=st.booleans())
def test_a_chunk_read_in_one_go_gives_the_records_read_line_by_line(
        lines: list[str | bytes], size: int, last_newline: bool) -> None:
    data = b"user_id,learning_object_external_reference,note\n" + b"".join(
        line if isinstance(line, bytes) else line.encode() for line in lines)
    if not last_newline:
        data = data.rstrip(b"\n")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.csv"
        path.write_bytes(data)
        source = Source(path, Format.CSV)
        whole = [(line, values, raw, problem) for line, _, values, raw, problem in _read_whole(source)]
        assert _read_chunks_whole(source, size) == whole


@settings(max_examples=100, deadline=None)
@given(lines=st.lists(st.sampled_from(['{"user_id": "u"}\n', "not json\n", "\n", "[1]\n", '{"a": "\\n"}\n']),
                      max_size=20), size=st.integers(1, 4))
def test_json_lines_chunks_read_like_the_whole_file(lines: list[str], size: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.jsonl"
        path.write_bytes("".join(lines).encode())
        source = Source(path, Format.JSONL)
        assert _read_chunked(source, size) == _read_whole(source)


def test_a_forked_child_makes_other_ids_than_its_parent() -> None:
    ids.new_id()  # the parent now holds a block of random bytes, which a child would copy
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.write(write, "".join(ids.new_id() for _ in range(50)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as f:
        theirs = f.read()
    child = {theirs[i + 10:i + 26] for i in range(0, len(theirs), 26)}  # the random parts
    parent = {ids.new_id()[10:] for _ in range(50)}
    assert len(child) == 50 and not child & parent
