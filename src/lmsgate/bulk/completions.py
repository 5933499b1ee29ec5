"""Records of a file → completions: column mapping and validation.

A CSV file has a header row naming the fields below (or other names, mapped with
``--column field=header``). A JSON Lines file holds one API body per line, plus ``user_id``.
Every record is validated by the same model as ``POST /unified/lms/users/{id}/completions``
(:class:`~lmsgate.schema.LmsCreateCompletionRequestDto`), and errors read the same way.

=====================================  =======================================================
CSV column                             meaning
=====================================  =======================================================
``user_id``                            the learner (required): the ``{id}`` of the API path
``learning_object_external_reference`` your reference of the learning object (required)
``learning_object_id``                 the provider's id of the learning object
``completed_at``                       RFC 3339 date-time; without an offset it is UTC
``time_spent``                         ISO 8601 duration, e.g. ``PT1H30M``
``result.value``                       ``Pass``, ``Fail`` or any other outcome
``result.source_value``                the outcome as your system names it (a JSON object
                                       or array in the cell is read as one; other text as text)
``score.percentage``                   a number from 0 to 100
``score.raw_value``                    the score as text, e.g. ``87 / 100``
``passthrough``                        a JSON object handed to the provider unchanged
=====================================  =======================================================

The deprecated names ``content_id`` and ``content_external_reference`` work too. The
read-only columns of ``lmsgate completions export`` (``id``, ``created_at``, …) are ignored,
so an exported file can be imported again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from lmsgate.schema.messages import describe_validation_errors
from lmsgate.bulk.sources import Format, Record
from lmsgate.jsontext import loads
from lmsgate.schema import Completion, LmsCreateCompletionRequestDto
from lmsgate.schema.common import NUL_FREE, shallow_text

__all__ = ["FIELDS", "ColumnError", "CompletionRows", "Refused"]

USER_ID = "user_id"
FIELDS: tuple[str, ...] = (
    USER_ID,
    "learning_object_external_reference",
    "learning_object_id",
    "completed_at",
    "time_spent",
    "result.value",
    "result.source_value",
    "score.percentage",
    "score.raw_value",
    "passthrough",
    "content_id",
    "content_external_reference",
)
"""The fields a record may give, in CSV column form."""

READ_ONLY: frozenset[str] = frozenset(
    {name for name in Completion.model_fields if name not in {f.partition(".")[0] for f in FIELDS}}
    | {"learning_object_type.value", "learning_object_type.source_value"}
)
"""Fields of an exported completion that an import ignores."""

_BY_LOWER = {name.lower(): name for name in (*FIELDS, *READ_ONLY)}
"""Field names by their lower-case form: header names are matched whatever their case."""
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


class ColumnError(ValueError):
    """The CSV header or the ``--column`` mapping cannot be used; says what to change."""


@dataclass(frozen=True, slots=True)
class Refused:
    """A record that cannot be imported, and why (the reason names the field at fault)."""

    line: int
    reason: str
    raw: str


def _number(text: str) -> float:
    if not _NUMBER.match(text.strip()):
        raise ValueError(f"{text!r} is not a number")
    return float(text)


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = loads(text)  # integers past 64 bits kept whole, as the API keeps them
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object")
    return value


def _source_value(text: str) -> Any:
    """A JSON object or array as itself (an export writes such a source_value as JSON); any
    other text as it is."""
    if text[:1] in "{[":
        try:
            return loads(text)
        except ValueError:  # orjson's JSONDecodeError
            pass
    return text


_CONVERT: dict[str, Callable[[str], Any]] = {"score.percentage": _number, "passthrough": _json_object,
                                             "result.source_value": _source_value}


class CompletionRows:
    """Turns the records of one file into ``(user_id, body)`` pairs, or :class:`Refused`.

    ``mapping`` maps a field to the CSV column (or top-level JSON key) that holds it, for
    files whose names differ. Unknown CSV columns are an error, so that a misspelt
    ``completed_at`` is not silently dropped, unless ``ignore_unknown``.
    """

    def __init__(self, fmt: Format, header: list[str] | None, mapping: Mapping[str, str] | None = None,
                 *, ignore_unknown: bool = False) -> None:
        mapping = dict(mapping or {})
        unknown_fields = sorted(set(mapping) - set(FIELDS))
        if unknown_fields:
            raise ColumnError(f"--column {unknown_fields[0]}=…: not a completion field; the fields are "
                              f"{', '.join(FIELDS)}")
        by_column = {column: field for field, column in mapping.items()}
        if len(by_column) != len(mapping):
            raise ColumnError("--column: two fields are mapped to the same column")
        self.format = fmt
        self._renames = by_column
        self._columns: list[tuple[str, str, Callable[[str], Any] | None]] = []
        if fmt is Format.JSONL:
            nested = sorted(f for f in mapping if "." in f)
            if nested:
                raise ColumnError(f"--column {nested[0]}=…: in JSON Lines only top-level keys can be mapped "
                                  "(result and score are objects there)")
            return
        assert header is not None
        absent = sorted(c for c in by_column if c not in header)
        if absent:
            raise ColumnError(f"--column …={absent[0]}: the header has no column {absent[0]!r}")
        unknown = []
        for column in header:
            named = _BY_LOWER.get(column.lower(), column)  # "User_ID" as Excel users write it
            if column in by_column:
                field = by_column[column]
            elif named in FIELDS and named not in mapping:
                field = named
            elif named in FIELDS or named in READ_ONLY or not column:
                continue  # a field read from another column, or a read-only field of an export
            else:
                unknown.append(column)
                continue
            if any(f == field for f, _, _ in self._columns):
                raise ColumnError(f"the header has two columns for {field}: "
                                  f"{next(c for f, c, _ in self._columns if f == field)!r} and {column!r}")
            self._columns.append((field, column, _CONVERT.get(field)))
        if unknown and not ignore_unknown:
            if len(header) == 1 and any(sep in header[0] for sep in ";\t|"):
                raise ColumnError(
                    f"the header is one column, {header[0]!r}: the file seems to separate its values with "
                    f"something other than commas. lmsgate reads comma-separated CSV (in Excel: save as "
                    f"'CSV UTF-8 (Comma delimited)'), or JSON Lines.")
            raise ColumnError(
                f"the header has columns that are not completion fields: {', '.join(unknown)}. Map them "
                f"with --column FIELD=COLUMN, or pass --ignore-unknown-columns. The fields are: {', '.join(FIELDS)}"
            )
        given = {field for field, _, _ in self._columns}
        self._user_column = next((column for field, column, _ in self._columns if field == USER_ID), None)
        self._plan = [(field, column, *field.partition(".")[::2], convert)
                      for field, column, convert in self._columns if field != USER_ID]
        """Per column of a body field: (field, column, outer key, inner key or "", converter)."""
        if USER_ID not in given:
            raise ColumnError(f"no {USER_ID} column (required); add one, or name yours with --column {USER_ID}=COLUMN")
        if not given & {"learning_object_external_reference", "content_external_reference"}:
            raise ColumnError("no learning_object_external_reference column (required); add one, or name yours "
                              "with --column learning_object_external_reference=COLUMN")

    def convert(self, record: Record) -> tuple[str, LmsCreateCompletionRequestDto] | Refused:
        """The record as ``(user_id, body)``, or :class:`Refused` naming every field at fault."""
        if record.values is None:
            return Refused(record.line, record.problem or "unreadable", record.raw)
        problems: list[str] = []
        if self.format is Format.CSV:
            user_id, body = self._from_csv(record.values, problems)
        else:
            user_id, body = self._from_json(record.values, problems)
        if not user_id:
            problems.insert(0, "user_id: required (the learner who completed the learning object)")
        elif "\x00" in user_id:
            problems.insert(0, "user_id: NUL characters are not allowed")
        raw = record.raw  # a JSON escape counts too: a passthrough cell, or a JSON Lines record
        checked = "\x00" not in raw and "\\u0000" not in raw and shallow_text(raw)
        try:
            parsed = LmsCreateCompletionRequestDto.model_validate(body, context=NUL_FREE if checked else None)
        except ValidationError as exc:
            problems.append(describe_validation_errors(list(exc.errors())))
        if problems:
            return Refused(record.line, "; ".join(problems), record.raw)
        return user_id, parsed

    def _from_csv(self, values: dict[str, str], problems: list[str]) -> tuple[str, dict[str, Any]]:
        # Runs once per row of a big file: the column plan is worked out in __init__.
        body: dict[str, Any] = {}
        for field, column, outer, inner, convert in self._plan:
            text = values[column]
            if not text:
                continue
            value: Any = text
            if convert is not None:
                try:
                    value = convert(text)
                except ValueError as exc:
                    problems.append(f"{field}: {exc}")
                    continue
            if not inner:
                body[outer] = value
            elif outer in body:
                body[outer][inner] = value
            else:
                body[outer] = {inner: value}
        return values[self._user_column] if self._user_column else "", body

    def _from_json(self, values: dict[str, Any], problems: list[str]) -> tuple[str, dict[str, Any]]:
        if self._renames:
            values = {self._renames.get(k, k): v for k, v in values.items()}
        user_id = values.get(USER_ID)
        if user_id is not None and not isinstance(user_id, str):
            problems.append(f"user_id: must be a string, got {type(user_id).__name__}")
            user_id = "-"
        return user_id or "", values
