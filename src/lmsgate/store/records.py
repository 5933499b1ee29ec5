"""All SQL for learning records of the embedded LMS. Rows in, rows out: no HTTP, no JSON names.

Each method runs in its own transaction and commits before it returns, so a caller that
answers after the call has a durable write (SQLite: WAL with ``synchronous=FULL``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Table, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

from lmsgate.store import tables as t
from lmsgate.store.pagination import Page, PageRequest

Row = dict[str, Any]


class LmsStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._dialect = engine.dialect.name

    # ---------------------------------------------------------------- helpers
    def _insert(self, table: Table):  # type: ignore[no-untyped-def]
        return (postgresql.insert if self._dialect == "postgresql" else sqlite.insert)(table)

    @staticmethod
    def _page(conn: Connection, table: Table, account_id: str, page: PageRequest,
              where: Sequence[ColumnElement[bool]] = ()) -> Page:
        q = select(table).where(table.c.account_id == account_id, *where)
        if page.updated_after is not None:
            q = q.where(table.c.updated_at > page.updated_after)
        if page.after_id is not None:
            q = q.where(table.c.id > page.after_id)
        q = q.order_by(table.c.id).limit(page.page_size + 1)
        if page.offset and page.after_id is None:
            q = q.offset(page.offset)
        rows = [dict(r) for r in conn.execute(q).mappings()]
        has_more = len(rows) > page.page_size
        rows = rows[: page.page_size]
        return Page(items=rows, last_id=rows[-1]["id"] if rows else None, has_more=has_more)

    def get(self, table: Table, account_id: str, record_id: str, **match: Any) -> Row | None:
        q = select(table).where(table.c.account_id == account_id, table.c.id == record_id)
        for column, value in match.items():
            q = q.where(table.c[column] == value)
        with self.engine.connect() as conn:
            row = conn.execute(q).mappings().first()
        return dict(row) if row else None

    def list(self, table: Table, account_id: str, page: PageRequest,
             where: Sequence[ColumnElement[bool]] = ()) -> Page:
        with self.engine.connect() as conn:
            return self._page(conn, table, account_id, page, where)

    def count(self, table: Table, account_id: str) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(table).where(table.c.account_id == account_id)
                ).scalar_one()
            )

    # ---------------------------------------------------------------- users
    def ensure_user(self, conn: Connection, account_id: str, user_id: str, ts: datetime) -> None:
        """Create a bare learner row the first time a record names an unknown user id."""
        conn.execute(
            self._insert(t.users)
            .values(account_id=account_id, id=user_id, created_at=ts, updated_at=ts, doc={})
            .on_conflict_do_nothing(index_elements=["account_id", "id"])
        )

    def upsert_user(self, account_id: str, user_id: str, values: Row, ts: datetime) -> bool:
        """Create or replace a learner. Returns True when the row is new."""
        with self.engine.begin() as conn:
            existing = conn.execute(
                select(t.users.c.id).where(t.users.c.account_id == account_id, t.users.c.id == user_id)
            ).first()
            if existing:
                conn.execute(
                    update(t.users)
                    .where(t.users.c.account_id == account_id, t.users.c.id == user_id)
                    .values(**values, updated_at=ts)
                )
            else:
                conn.execute(
                    self._insert(t.users).values(
                        account_id=account_id, id=user_id, created_at=ts, updated_at=ts, **values
                    )
                )
        return existing is None

    # ---------------------------------------------------------------- completions & assignments
    def insert_record(self, table: Table, values: Row) -> tuple[str, bool]:
        """Insert a completion or assignment unless its ``dedupe_key`` exists.

        Returns ``(id, created)``; on a repeat, the id of the first record and ``False``.
        The learner is created on the fly in the same transaction.
        """
        with self.engine.begin() as conn:
            self.ensure_user(conn, values["account_id"], values["user_id"], values["created_at"])
            res = conn.execute(
                self._insert(table)
                .values(**values)
                .on_conflict_do_nothing(index_elements=["account_id", "dedupe_key"])
            )
            if res.rowcount == 1:
                return values["id"], True
            existing = conn.execute(
                select(table.c.id).where(
                    table.c.account_id == values["account_id"],
                    table.c.dedupe_key == values["dedupe_key"],
                )
            ).scalar_one()
            return existing, False

    def delete_record(self, table: Table, account_id: str, record_id: str, user_id: str) -> bool:
        with self.engine.begin() as conn:
            res = conn.execute(
                delete(table).where(
                    table.c.account_id == account_id,
                    table.c.id == record_id,
                    table.c.user_id == user_id,
                )
            )
        return res.rowcount > 0

    # ---------------------------------------------------------------- learning objects
    def find_learning_object(self, account_id: str, external_reference: str) -> tuple[str, str] | None:
        """``(id, "content" | "course")`` for an external reference, content first."""
        with self.engine.connect() as conn:
            for table, kind in ((t.content, "content"), (t.courses, "course")):
                found = conn.execute(
                    select(table.c.id).where(
                        table.c.account_id == account_id,
                        table.c.external_reference == external_reference,
                    )
                ).scalar()
                if found:
                    return found, kind
        return None

    def upsert_docs(self, table: Table, account_id: str, docs: Iterable[Row], ts: datetime,
                    key: str = "external_reference") -> list[tuple[str, bool]]:
        """Create or replace documents keyed by ``key`` within the account, in one transaction.

        Each item of ``docs`` holds the column values plus ``doc``; a new row takes the
        ``id`` given in it. Returns ``(id, created)`` per item, in order.
        """
        out: list[tuple[str, bool]] = []
        with self.engine.begin() as conn:
            for values in docs:
                found = conn.execute(
                    select(table.c.id).where(table.c.account_id == account_id, table.c[key] == values[key])
                ).scalar()
                if found:
                    row = {k: v for k, v in values.items() if k != "id"}
                    row["doc"] = {**row["doc"], "id": found}
                    conn.execute(
                        update(table)
                        .where(table.c.account_id == account_id, table.c.id == found)
                        .values(**row, updated_at=ts)
                    )
                    out.append((found, False))
                else:
                    conn.execute(
                        self._insert(table).values(
                            account_id=account_id, created_at=ts, updated_at=ts, **values
                        )
                    )
                    out.append((values["id"], True))
        return out

    def update_doc(self, table: Table, account_id: str, record_id: str, values: Row, ts: datetime) -> bool:
        with self.engine.begin() as conn:
            res = conn.execute(
                update(table)
                .where(table.c.account_id == account_id, table.c.id == record_id)
                .values(**values, updated_at=ts)
            )
        return res.rowcount > 0

    def set_course_contents(self, account_id: str, course_id: str, refs: list[str]) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                delete(t.course_content).where(
                    t.course_content.c.account_id == account_id,
                    t.course_content.c.course_id == course_id,
                )
            )
            if refs:
                conn.execute(
                    t.course_content.insert(),
                    [
                        {"account_id": account_id, "course_id": course_id, "content_external_reference": r,
                         "position": i}
                        for i, r in enumerate(refs)
                    ],
                )

    def course_ids_for_content(self, account_id: str, refs: list[str]) -> dict[str, list[str]]:
        if not refs:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.course_content.c.content_external_reference, t.course_content.c.course_id)
                .where(
                    t.course_content.c.account_id == account_id,
                    t.course_content.c.content_external_reference.in_(refs),
                )
                .order_by(t.course_content.c.course_id)
            ).all()
        out: dict[str, list[str]] = {}
        for ref, course_id in rows:
            out.setdefault(ref, []).append(course_id)
        return out

    def content_ids_for_courses(self, account_id: str, course_ids: list[str]) -> dict[str, list[str]]:
        if not course_ids:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.course_content.c.course_id, t.content.c.id)
                .join(
                    t.content,
                    (t.content.c.account_id == t.course_content.c.account_id)
                    & (t.content.c.external_reference == t.course_content.c.content_external_reference),
                )
                .where(
                    t.course_content.c.account_id == account_id,
                    t.course_content.c.course_id.in_(course_ids),
                )
                .order_by(t.course_content.c.position)
            ).all()
        out: dict[str, list[str]] = {}
        for course_id, content_id in rows:
            out.setdefault(course_id, []).append(content_id)
        return out
