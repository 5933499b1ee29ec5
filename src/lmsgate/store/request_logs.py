"""The ``request_logs`` table: writing batches, reading a project's logs, deleting old ones."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, or_, select

from lmsgate.store import tables as t
from lmsgate.store.bulk import Bulk
from lmsgate.store.db import writing


@dataclass(frozen=True, slots=True)
class LogQuery:
    """Filters of ``GET /requests/logs``, already parsed. Empty lists filter nothing."""

    page_size: int
    before_id: str | None = None
    """Keyset: the last id of the previous page (newest first) or, ascending, the first."""
    ascending: bool = False
    account_ids: list[str] = field(default_factory=list)
    request_ids: list[str] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    providers: list[str] = field(default_factory=list)
    resources: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    success: bool | None = None
    start: datetime | None = None
    end: datetime | None = None


class RequestLogStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._bulk = Bulk(engine.dialect)

    def write(self, rows: list[dict[str, Any]]) -> None:
        """Store a batch of rows in one transaction (ids are new, so nothing is skipped)."""
        if rows:
            with writing(self.engine) as conn:
                self._bulk.insert_ignoring(conn, t.request_logs, rows, conflict=("id",))

    def list(self, project_id: str, q: LogQuery) -> tuple[list[Any], bool]:
        """One page of the project's logs and whether more follow."""
        c = t.request_logs.c
        stmt = select(t.request_logs).where(c.project_id == project_id)
        if q.before_id is not None:
            stmt = stmt.where(c.id > q.before_id if q.ascending else c.id < q.before_id)
        for column, values in ((c.linked_account_id, q.account_ids), (c.request_id, q.request_ids),
                               (c.method, q.methods), (c.provider, q.providers), (c.resource, q.resources),
                               (c.operation, q.actions), (c.status, q.statuses)):
            if values:
                stmt = stmt.where(column.in_(values))
        if q.success is True:
            stmt = stmt.where(c.status < 400)
        elif q.success is False:
            stmt = stmt.where(c.status >= 400)
        if q.start is not None:
            stmt = stmt.where(c.started_at >= q.start)
        if q.end is not None:
            stmt = stmt.where(c.started_at <= q.end)
        stmt = stmt.order_by(c.id.asc() if q.ascending else c.id.desc()).limit(q.page_size + 1)
        with self.engine.connect() as conn:
            rows = list(conn.execute(stmt))
        return rows[: q.page_size], len(rows) > q.page_size

    def get(self, project_id: str, log_id: str) -> Any | None:
        """The log with this id or, failing that, the newest with this request id."""
        c = t.request_logs.c
        with self.engine.connect() as conn:
            return conn.execute(
                select(t.request_logs).where(c.project_id == project_id, or_(c.id == log_id, c.request_id == log_id))
                .order_by((c.id == log_id).desc(), c.id.desc()).limit(1)
            ).first()

    def purge(self, before: datetime) -> int:
        """Delete every log that started before ``before``; returns how many."""
        with writing(self.engine) as conn:
            return conn.execute(delete(t.request_logs).where(t.request_logs.c.started_at < before)).rowcount
