"""A completion body as a row of the completions table: the one place where that happens, for
single posts and imports alike.

Apart from the connector so that a bulk import's worker processes, which build rows, load only
the models, SQLAlchemy's column types and this (see :mod:`lmsgate.bulk.parallel`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from lmsgate.connectors.local import mapping as m
from lmsgate.ids import new_id
from lmsgate.schema import LmsCreateCompletionRequestDto
from lmsgate.store import tables as t
from lmsgate.store.bulk import Bulk, sqlite_datetime_texts

__all__ = ["COMPLETION_COLUMNS", "CompletionRowBuilder"]


COMPLETION_COLUMNS = (
    "account_key", "id", "created_at", "updated_at", "user_id", "learning_object_id",
    "learning_object_external_reference", "learning_object_type", "completed_at", "time_spent",
    "time_spent_seconds", "time_spent_months", "result_value", "result_source_value", "score_percentage",
    "score_raw_value", "passthrough", "dedupe_key",
)
"""The order of a completion row's values: the table's columns (checked below)."""
assert COMPLETION_COLUMNS == tuple(c.name for c in t.completions.columns), "completions table changed"


@dataclass(frozen=True, slots=True)
class CompletionRowBuilder:
    """Turns validated completions ``(user_id, body)`` of one account into rows of the
    completions table, bound for the store's database (see :meth:`Bulk.bind_rows`): the one
    place where a completion body becomes a row, for single posts and imports alike.

    It holds only the account's key in the store (``LmsStore.account_key``) and the database's
    driver name, so a bulk import hands it to its worker processes, which build the rows there
    while the importing process writes."""

    account_key: int | None
    """None for an account the store does not know: its rows are refused when written."""
    driver: str
    """SQLAlchemy's driver name of the store's database: ``sqlite``, ``postgresql+psycopg``."""

    def __call__(self, items: Sequence[tuple[str, LmsCreateCompletionRequestDto]]) -> list[tuple[Any, ...]]:
        ts = datetime.now(timezone.utc)
        durations: dict[str | None, tuple[str | None, Any, int | None]] = {}
        acct = self.account_key
        bulk = Bulk.for_driver(self.driver)
        # On SQLite completed_at is bound here, with its text for the dedupe key: one
        # isoformat call instead of two (the models give aware UTC datetimes).
        sqlite = bulk.dialect_name == "sqlite"
        rows = []
        for user_id, body in items:
            spent = body.time_spent
            found = durations.get(spent)
            if found is None:
                found = durations[spent] = m.duration_columns(spent)
            completed, result, score, ref = body.completed_at, body.result, body.score, \
                body.learning_object_external_reference
            stored: Any = completed
            if completed is None:
                when = None
            elif sqlite and completed.tzinfo is timezone.utc:
                when, stored = sqlite_datetime_texts(completed)
            else:
                when = m.dt(completed)
                if sqlite:
                    stored = bulk.bind_one(t.completions, "completed_at", completed)
            rows.append((
                acct, new_id(), ts, ts, user_id, body.learning_object_id, ref, None, stored, *found,
                result.value if result else None, result.source_value if result else None,
                score.percentage if score else None, score.raw_value if score else None,
                body.passthrough, m.completion_key(user_id, ref, when),
            ))
        return bulk.bind_rows(t.completions, rows, bound=("completed_at",) if sqlite else ())
