"""Many rows in few statements: the fast path under :meth:`LmsStore.insert_records`.

SQLAlchemy's own ``executemany`` runs every value of every row through its type machinery and
its event hooks, which costs more than the database's work for a narrow table. Here a row is
turned into a tuple once, with each column type's own bind processor (so values are stored
exactly as SQLAlchemy would store them), and handed to the driver in one call:

* SQLite: the DB-API ``executemany`` of one prepared ``INSERT … ON CONFLICT DO NOTHING``.
* PostgreSQL: the whole batch as one JSON array of rows, sent as a single parameter, and one
  ``INSERT … SELECT … FROM jsonb_array_elements(…) ON CONFLICT DO NOTHING``. orjson writes
  the array in C and the server takes it apart, so this process spends less CPU on it than
  on feeding ``COPY`` row by row (17 ms against 25 ms for 5,000 rows), though the server
  spends more (120–137 ms of wall time against 101–113 ms, measured alone; not yet compared
  inside an import). Each value reaches its column as text cast to the column's type, as
  ``COPY``'s text format did, so what is stored is the same. Batches of fewer than
  ``BATCH_FROM`` rows use ``executemany``, which needs fewer round trips.

A value the driver or JSON cannot carry (an integer beyond 64 bits) is reported as SQLAlchemy's
``DataError``, like a value the database refuses, so that the caller can fail that row alone.

Only the rows whose conflict columns match no stored row (and no earlier row of the same
call) are inserted; the others are skipped silently, as ``ON CONFLICT DO NOTHING`` does.

Lookups by many keys (:meth:`Bulk.find`) avoid ``IN (…)`` lists on PostgreSQL: while a
bulk load outruns the table statistics, the planner may answer them by scanning every row of
the account, once per list. There each key is one index probe instead, all sent in one
pipelined ``executemany``. SQLite always uses the index for ``IN``, so it gets lists.
"""

from __future__ import annotations

import re
from functools import lru_cache
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import JSON, Column, Connection, String, Table
from sqlalchemy.dialects.sqlite.base import DATETIME as SQLITE_DATETIME
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DataError, DBAPIError

from lmsgate.jsontext import dumps as json_dumps
from lmsgate.store.db import JSON_CODEC
from lmsgate.store.tables import UtcDateTime

BATCH_FROM = 32
"""On PostgreSQL, batches at least this large go as one JSON array."""
IN_CHUNK = 500
"""Values per ``IN (…)`` list on SQLite, far below its limit on parameters."""

_SQLITE_DEFAULT_DATETIME = SQLITE_DATETIME()._storage_format


def _sqlite_utc_datetime(value: datetime | None) -> str | None:
    """What ``UtcDateTime`` binds on SQLite with the default storage format, five times faster:
    naive UTC as ``YYYY-MM-DD HH:MM:SS.ffffff``."""
    if value is None:
        return None
    if value.tzinfo is timezone.utc:  # what the API's models give: "+00:00" cut off
        return value.isoformat(" ", "microseconds")[:26]
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value.isoformat(" ", "microseconds")


def sqlite_datetime_texts(value: datetime) -> tuple[str, str]:
    """An aware UTC datetime as the API writes it (``schema.types.format_datetime``) and as
    SQLite stores it (``_sqlite_utc_datetime``), from one ``isoformat`` call: a bulk import
    needs both for every completion (its dedupe key, and its row)."""
    iso = value.isoformat()  # YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00
    if len(iso) == 25:  # no fraction
        return iso[:19] + ".000Z", iso[:10] + " " + iso[11:19] + ".000000"
    api = iso[:23] + "Z" if iso[23:26] == "000" else iso[:26] + "Z"
    return api, iso[:10] + " " + iso[11:26]


def _sqlite_json(to_text: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """SQLite gives a column declared JSON numeric affinity: text that reads as a number is
    stored as one, and an integer beyond 64 bits became a float (its digits lost). Such a
    value goes as a BLOB, which SQLite stores as it is; reading it back decodes it as JSON."""
    def process(value: Any) -> Any:
        text = to_text(value)
        if type(value) is int and not -(1 << 63) <= value < (1 << 63):
            return text.encode()
        return text
    return process


def bind_processor(column: Column[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    """The function that turns a Python value into what the driver gets for ``column``."""
    impl = column.type.dialect_impl(dialect)
    if (dialect.name == "sqlite" and isinstance(column.type, UtcDateTime)
            and getattr(impl.impl, "_storage_format", None) == _SQLITE_DEFAULT_DATETIME):
        return _sqlite_utc_datetime
    processor = impl.bind_processor(dialect)
    if dialect.name == "sqlite" and isinstance(column.type, JSON) and processor is not None:
        return _sqlite_json(processor)
    return processor


_MODIFIERS = re.compile(r"\(.*\)")


def _from_text(text: str, column: Column[Any], dialect: Dialect) -> str:
    """SQL that turns ``text`` (an element's text; NULL for a JSON null) into ``column``'s value
    as ``COPY`` would. Text stays text, so that the insert's own assignment refuses an
    over-long value as ``COPY`` does, where an explicit cast to ``VARCHAR(n)`` would cut it.
    Other types are cast by their bare name, and the assignment applies any scale."""
    if isinstance(column.type.dialect_impl(dialect), String):
        return text
    return f"{text}::{_MODIFIERS.sub('', column.type.compile(dialect=dialect))}"


def _exact_text(value: Any) -> str:
    """What orjson cannot write itself, as the text ``COPY`` would send: a Decimal exactly, and
    a JSON column's value (psycopg's ``Json`` wrapper) as the engine's JSON serialiser writes it."""
    if isinstance(value, Decimal):
        return str(value)
    from psycopg.types.json import Json  # only PostgreSQL gets here: not imported on SQLite

    if isinstance(value, Json):
        return (value.dumps or json_dumps)(value.obj)
    raise TypeError(f"{type(value).__name__} is not JSON")


@dataclass(frozen=True, slots=True)
class _Plan:
    columns: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]
    nulls: tuple[Any, ...]
    """What each column's processor makes of None (JSON columns store ``null``), computed once."""
    insert_sql: str
    """``INSERT … VALUES (…) ON CONFLICT DO NOTHING`` in the driver's parameter style."""
    column_list: str
    table: str
    conflict: str
    from_json: str
    """PostgreSQL: ``INSERT … SELECT`` of the rows of a JSON array given as the one parameter."""


@dataclass(frozen=True, slots=True)
class _Conversions:
    plan: _Plan
    pick: Callable[[Mapping[str, Any]], tuple[Any, ...]]
    """The row's values in column order, picked in C (when every column is given)."""
    converted: tuple[tuple[int, Callable[[Any], Any], Any], ...]
    """(position, bind processor, what None becomes) of each column that needs converting."""


def _picked(row: Mapping[str, Any], pick: Callable[[Mapping[str, Any]], tuple[Any, ...]],
            columns: tuple[str, ...]) -> list[Any]:
    try:
        return list(pick(row))  # every column given
    except KeyError:
        return [row.get(c) for c in columns]


class Bulk:
    """Insert-unless-present and look-up for many rows at once, for one dialect."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self.dialect_name: str = dialect.name
        self._plans: dict[tuple[str, tuple[str, ...]], _Plan] = {}
        self._conversions: dict[tuple[str, tuple[str, ...]], _Conversions] = {}

    def _plan(self, table: Table, conflict: tuple[str, ...]) -> _Plan:
        plan = self._plans.get((table.name, conflict))
        if plan is None:
            d = self._dialect
            quote = d.identifier_preparer.quote
            columns = tuple(c.name for c in table.columns)
            processors = tuple(bind_processor(c, d) for c in table.columns)
            column_list = ", ".join(quote(c) for c in columns)
            marker = "?" if d.paramstyle == "qmark" else "%s"
            conflict_list = ", ".join(quote(c) for c in conflict)
            casts = ", ".join(_from_text(f"(r->>{i})", c, d) for i, c in enumerate(table.columns))
            plan = _Plan(
                columns=columns,
                processors=processors,
                nulls=tuple(p(None) if p is not None else None for p in processors),
                insert_sql=f"INSERT INTO {quote(table.name)} ({column_list}) "
                f"VALUES ({', '.join([marker] * len(columns))}) ON CONFLICT ({conflict_list}) DO NOTHING",
                column_list=column_list,
                table=quote(table.name),
                conflict=conflict_list,
                from_json=f"INSERT INTO {quote(table.name)} ({column_list}) SELECT {casts} "
                f"FROM jsonb_array_elements(%s::jsonb) AS r ON CONFLICT ({conflict_list}) DO NOTHING",
            )
            self._plans[(table.name, conflict)] = plan
        return plan

    @staticmethod
    @lru_cache(maxsize=8)
    def for_driver(driver: str) -> Bulk:
        """A :class:`Bulk` for a database named by its SQLAlchemy driver name (``sqlite``,
        ``postgresql+psycopg``), with lmsgate's JSON settings, made without connecting: enough
        to :meth:`bind` rows, in any process. Made once per process and driver."""
        from sqlalchemy import create_engine

        return Bulk(create_engine(f"{driver}://", **JSON_CODEC).dialect)

    def columns(self, table: Table) -> tuple[str, ...]:
        """The order of values in a row bound by :meth:`bind`: the table's columns."""
        return tuple(c.name for c in table.columns)

    def bind(self, table: Table, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        """``rows`` (column name → value; missing columns are NULL) as the driver gets them:
        one tuple per row, in :meth:`columns` order, each value through its column's bind
        processor. Needs no connection, so a bulk import binds its rows in other processes."""
        return self._tuples(self._conversions_of(table, ()), rows)

    def bind_rows(self, table: Table, rows: Sequence[Sequence[Any]],
                  bound: tuple[str, ...] = ()) -> list[tuple[Any, ...]]:
        """:meth:`bind` for rows given as values in :meth:`columns` order. The columns named
        in ``bound`` hold values already as the driver gets them (see :func:`sqlite_datetime_texts`)."""
        return self._tuples(self._conversions_of(table, bound), rows, positional=True)

    def _conversions_of(self, table: Table, bound: tuple[str, ...]) -> _Conversions:
        """What binding a row of ``table`` does, worked out once per table and ``bound``: a
        single posted completion is bound on its own, and this was most of its cost."""
        found = self._conversions.get((table.name, bound))
        if found is None:
            plan = self._plan(table, ())
            skip = {plan.columns.index(name) for name in bound}
            found = self._conversions[(table.name, bound)] = _Conversions(
                plan=plan, pick=itemgetter(*plan.columns),
                converted=tuple((i, p, plan.nulls[i]) for i, p in enumerate(plan.processors)
                                if p is not None and i not in skip))
        return found

    @staticmethod
    def _tuples(conversions: _Conversions, rows: Sequence[Any], *,
                positional: bool = False) -> list[tuple[Any, ...]]:
        plan, pick, converted = conversions.plan, conversions.pick, conversions.converted
        columns = plan.columns
        if len(rows) == 1:  # nothing to share between rows; columns may share one (created_at, updated_at)
            values = list(rows[0]) if positional else _picked(rows[0], pick, columns)
            last_p: Any = None
            last_v = last_o = None
            for i, p, null in converted:
                v = values[i]
                if v is None:
                    values[i] = null
                elif v is last_v and p is last_p:
                    values[i] = last_o
                else:
                    values[i] = last_o = p(v)
                    last_v, last_p = v, p
            return [tuple(values)]
        # Rows of one batch often share a value object (its created_at, say): convert it once.
        last_in: list[Any] = [None] * len(columns)
        last_out: list[Any] = list(plan.nulls)
        out = []
        for row in rows:
            values = list(row) if positional else _picked(row, pick, columns)
            for i, p, null in converted:
                v = values[i]
                if v is None:
                    values[i] = null
                elif v is last_in[i]:
                    values[i] = last_out[i]
                else:
                    values[i] = last_out[i] = p(v)
                    last_in[i] = v
            out.append(tuple(values))
        return out

    def bind_one(self, table: Table, column: str, value: Any) -> Any:
        """One value of ``column`` as :meth:`bind` would give it."""
        plan = self._plan(table, ())
        i = plan.columns.index(column)
        processor = plan.processors[i]
        return plan.nulls[i] if value is None else (processor(value) if processor else value)

    @contextmanager
    def _translated(self, statement: str,
                    params: Callable[[], list[dict[str, Any]]] | None = None) -> Iterator[None]:
        """Driver errors as SQLAlchemy's (``IntegrityError``, ``DataError``, …), as if
        SQLAlchemy had run the statement itself; a value too big to send as ``DataError``.
        ``params`` gives the rows by column name, for the error (``records.refusal`` names
        the column of a value too long from them)."""
        dbapi_error = self._dialect.loaded_dbapi.Error
        try:
            yield
        except dbapi_error as exc:
            raise DBAPIError.instance(statement, params() if params else None, exc, dbapi_error) from exc
        except (OverflowError, orjson.JSONEncodeError) as exc:  # sqlite3; the JSON array
            raise DataError(statement, None, exc) from exc

    def insert_ignoring(self, conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]],
                        conflict: tuple[str, ...]) -> int:
        """Insert ``rows`` (column name → value; missing columns are NULL), skipping every row
        whose ``conflict`` columns are already taken. Returns how many rows were inserted, or
        -1 when the driver cannot tell."""
        return self.insert_bound(conn, table, self.bind(table, rows), conflict)

    def insert_bound(self, conn: Connection, table: Table, values: list[tuple[Any, ...]],
                     conflict: tuple[str, ...]) -> int:
        """:meth:`insert_ignoring` for rows already bound by :meth:`bind`."""
        if not values:
            return 0
        plan = self._plan(table, conflict)
        with self._translated(plan.insert_sql, lambda: [dict(zip(plan.columns, v)) for v in values]):
            if self._dialect.name == "postgresql" and len(values) >= BATCH_FROM:
                return self._as_json(conn, plan, values)
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                cursor.executemany(plan.insert_sql, values)
                return int(cursor.rowcount)
            finally:
                cursor.close()

    def find(self, conn: Connection, table: Table, account_key: int | None, key: str, values: Sequence[str],
             column: str, *, settled: bool = False) -> dict[str, Any]:
        """``{value of key: value of column}`` for the rows of the account whose ``key`` is
        one of ``values``; ``(account_key, key)`` should be indexed.

        ``settled``: the table is not the one being bulk loaded (content and courses during a
        completions import), so on PostgreSQL one ``= ANY(…)`` statement answers instead of
        one probe per value: a batch names thousands of learning objects, and their probes
        were a fifth of the import's time."""
        if not values:
            return {}
        quote = self._dialect.identifier_preparer.quote
        sql = f"SELECT {quote(key)}, {quote(column)} FROM {quote(table.name)} WHERE account_key = {{0}} AND {quote(key)}"
        found: dict[str, Any] = {}
        with self._translated(sql):
            if self._dialect.name == "postgresql" and settled:
                with conn.connection.driver_connection.cursor() as cur:  # type: ignore[union-attr]
                    cur.execute(sql.format("%s") + " = ANY(%s)", (account_key, list(values)))
                    found.update(cur.fetchall())
                return found
            if self._dialect.name == "postgresql":
                with conn.connection.driver_connection.cursor() as cur:  # type: ignore[union-attr]
                    cur.executemany(sql.format("%s") + " = %s", [(account_key, v) for v in values], returning=True)
                    while True:
                        found.update(cur.fetchall())
                        if not cur.nextset():
                            break
                return found
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                for i in range(0, len(values), IN_CHUNK):
                    chunk = values[i:i + IN_CHUNK]
                    cursor.execute(sql.format("?") + f" IN ({', '.join('?' * len(chunk))})", (account_key, *chunk))
                    found.update(cursor.fetchall())
            finally:
                cursor.close()
        return found

    @staticmethod
    def _as_json(conn: Connection, plan: _Plan, values: list[tuple[Any, ...]]) -> int:
        # Decimal (numeric columns) as its exact text; datetimes are naive UTC here, written
        # without an offset, as the timestamp columns expect.
        batch = orjson.dumps(values, default=_exact_text)
        with conn.connection.driver_connection.cursor() as cur:  # type: ignore[union-attr]
            cur.execute(plan.from_json, (batch.decode(),))
            return int(cur.rowcount)
