"""A NUL character is refused in an imported record, however it is written.

The import skips the model's own NUL check when the record's text shows none (a raw NUL, or
the JSON escape ``\\u0000``); these records must still be refused, naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmsgate.bulk.completions import CompletionRows, Refused
from lmsgate.bulk.sources import Format, Source

CSV_HEADER = "user_id,learning_object_external_reference,passthrough\n"


@pytest.mark.parametrize(("fmt", "text", "field"), [
    (Format.CSV, CSV_HEADER + "u1,course\x00one,\n", "learning_object_external_reference"),
    (Format.CSV, CSV_HEADER + 'u1,course,"{""note"": ""a\\u0000b""}"\n', "passthrough.note"),
    (Format.JSONL, '{"user_id": "u1", "learning_object_external_reference": "c\\u0000"}\n',
     "learning_object_external_reference"),
    (Format.JSONL, '{"user_id": "u1", "learning_object_external_reference": "c", "passthrough": {"k\\u0000": 1}}\n',
     "passthrough.k"),
])
def test_a_nul_is_refused_wherever_it_hides(tmp_path: Path, fmt: Format, text: str, field: str) -> None:
    path = tmp_path / ("f.csv" if fmt is Format.CSV else "f.jsonl")
    path.write_text(text)
    source = Source(path, fmt)
    rows = CompletionRows(fmt, source.header)
    [record] = list(source.records())
    result = rows.convert(record)
    assert isinstance(result, Refused), result
    assert "NUL characters are not allowed" in result.reason and field in result.reason


def test_a_record_without_nul_is_read_as_before(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text(CSV_HEADER + 'u1,course,"{""note"": ""\\\\u0000 is text here""}"\n')
    source = Source(path, Format.CSV)
    [record] = list(source.records())
    user, body = CompletionRows(Format.CSV, source.header).convert(record)  # type: ignore[misc]
    assert user == "u1" and body.passthrough == {"note": "\\u0000 is text here"}
