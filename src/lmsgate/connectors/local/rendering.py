"""List pages of completions rendered as JSON by the database itself.

``mapping.completion_to_wire`` turns a stored row into the unified JSON in Python: about
25 µs a row once SQLAlchemy's row processing, the date formatting and the serialiser are
counted, so a page of 100 cost more than 2.5 ms of the interpreter's one core, and a busy
server answered list calls at a few hundred a second. Here most of the object is built by
SQLite's ``json_object`` or PostgreSQL's ``json_build_object``, in C, and Python only finishes
each object and joins the page.

The result must be exactly what ``completion_to_wire`` returns, key for key, once parsed:
``tests/integration/test_sql_rendering.py`` checks it on generated rows, on both databases.
Three fields are added in Python, as text (``finishing``), because the database cannot write
them the same way:

* ``time_spent``, shown in its normal form (``Duration.isoformat``), from a small cache;
* ``score``: SQLite writes a REAL with 15 significant digits, and its 17-digit ``printf`` is
  not exact either (the property test found both), while Python's ``repr`` is;
* ``result``: its ``source_value`` is any JSON the caller sent, spliced in as stored (SQLite's
  JSON functions would write the numbers in it again, with 15 digits).

A ``raw=true`` call reads whole rows and takes the Python path (its raw log shows them); a
``fields=`` call parses the rendered objects to pick its fields.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Table, case, cast, extract, func, literal_column, null, or_, type_coerce
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import Text


def _key(name: str) -> ColumnElement[Any]:
    return literal_column(f"'{name}'")


class _Dialect:
    """What differs between the two databases: the object builder and the text of a date."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.obj = func.json_build_object if name == "postgresql" else func.json_object

    def datetime(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        """``YYYY-MM-DDTHH:MM:SS.mmmZ``, or ``.mmmmmmZ`` when the microseconds are not whole
        milliseconds: ``schema.types.format_datetime``. Columns are naive UTC."""
        if self.name == "postgresql":
            micros = cast(extract("microseconds", column), BigInteger) % 1000
            return case(
                (column.is_(None), null()),
                (micros == 0, func.to_char(column, literal_column("'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'"))),
                else_=func.to_char(column, literal_column("'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'")),
            )
        # SQLite keeps SQLAlchemy's text form: "YYYY-MM-DD HH:MM:SS.ffffff". Constants are
        # written into the SQL, not bound, and a NULL needs no branch of its own (each function
        # of it is NULL): three dates a row, this is about a tenth of the page's SQL.
        def iso(text: ColumnElement[Any]) -> ColumnElement[Any]:
            return func.replace(text, _key(" "), _key("T")).op("||")(_key("Z"))

        return case(
            (func.substr(column, literal_column("24"), literal_column("3")) == _key("000"),
             iso(func.substr(column, literal_column("1"), literal_column("23")))),
            else_=iso(column),
        )

    def source_text(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        """A JSON column as stored. On SQLite the driver hands over text, or a number (a column
        declared JSON has numeric affinity there, so a bare number is kept as one)."""
        return cast(column, Text) if self.name == "postgresql" else column


def completion_columns(table: Table, dialect_name: str) -> tuple[ColumnElement[Any], ...]:
    """The columns to read for ``finish``, in its order: the ones Python writes, then the rest
    of the object as JSON text."""
    c = table.c
    return (c.time_spent, c.result_value, _Dialect(dialect_name).source_text(c.result_source_value),
            c.score_percentage, c.score_raw_value, completion_json(table, dialect_name))


def completion_json(table: Table, dialect_name: str) -> ColumnElement[Any]:
    """One completion as a JSON object, without ``time_spent``, ``result`` and ``score``."""
    d = _Dialect(dialect_name)
    c = table.c
    lo, ref, kind = c.learning_object_id, c.learning_object_external_reference, c.learning_object_type
    course = case((kind == _key("course"), lo), else_=null())
    lo_type = case((or_(kind.is_(None), kind == _key("")), null()),
                   else_=d.obj(_key("value"), kind, _key("source_value"), kind))
    pairs: list[tuple[str, ColumnElement[Any]]] = [
        ("id", c.id), ("remote_id", c.id), ("user_id", c.user_id), ("remote_user_id", c.user_id),
        ("learning_object_id", lo), ("remote_learning_object_id", lo),
        ("learning_object_external_reference", ref), ("learning_object_type", lo_type),
        ("completed_at", d.datetime(c.completed_at)), ("created_at", d.datetime(c.created_at)),
        ("updated_at", d.datetime(c.updated_at)),
        ("certificate_url", null()), ("unified_custom_fields", null()),
        ("external_reference", ref), ("external_id", ref), ("remote_external_id", ref),
        ("content_external_reference", ref), ("content_id", lo), ("remote_content_id", lo),
        ("course_id", course), ("remote_course_id", course),
    ]
    built = d.obj(*(arg for name, value in pairs for arg in (_key(name), value)))
    return cast(built, Text) if dialect_name == "postgresql" else type_coerce(built, Text)
