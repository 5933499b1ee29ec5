"""All SQL for learning records of the embedded LMS. Rows in, rows out: no HTTP, no JSON names.

Each method runs in its own transaction and commits before it returns, so a caller that
answers after the call has a durable write (SQLite: WAL with ``synchronous=FULL``).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import wraps
from itertools import groupby
from operator import itemgetter
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, Table, UniqueConstraint, bindparam, delete, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.sql.elements import ColumnElement

from lmsgate.errors import NotFound, Unprocessable
from lmsgate.store import tables as t
from lmsgate.store.bulk import IN_CHUNK, Bulk
from lmsgate.store.computed_pages import ComputedPageQuery
from lmsgate.store.db import hold_write_lock, writing
from lmsgate.store.pagination import Page, PageRequest
from lmsgate.store.tenancy import ACCOUNT_CACHE_SECONDS

Row = dict[str, Any]
P = ParamSpec("P")
R = TypeVar("R")


LEARNER_CACHE = 20_000
"""Learner ids a store remembers as stored, unless told otherwise: a server's recent learners,
about 4 MB. At 200,000 a 5-minute run of posts, each for a new learner, grew the server by
38% (149 MB to 206 MB); a bulk import raises it (``learner_cache``)."""


_WRITTEN_TABLE = re.compile(r"^\s*(?:INSERT\s+INTO|UPDATE)\s+\"?(\w+)", re.IGNORECASE)


class LostRace(Unprocessable):
    """A write refused because a key it was about to create had just been created by another
    writer: another process, or another engine on the same database. An upsert looks its key
    up, then inserts or updates; two processes upserting one key at once can both find
    nothing and both insert, and the second insert breaks the unique key. Run again, the
    write finds the row and updates it (see :func:`retry_lost_races`). Also a transaction that
    PostgreSQL undid to end a deadlock. Answered 422 like any refusal if it keeps happening."""


class AccountGone(NotFound):
    """A record refused because its linked account was deleted meanwhile (by another process,
    within the time it remembers an account): the record tables' only foreign key is the
    account's."""


def _breaks_foreign_key(exc: DBAPIError) -> bool:
    orig = exc.orig
    return (getattr(orig, "sqlstate", None) == "23503"  # PostgreSQL: foreign_key_violation
            or getattr(orig, "sqlite_errorname", "") == "SQLITE_CONSTRAINT_FOREIGNKEY")


def _breaks_unique_key(exc: DBAPIError) -> bool:
    orig = exc.orig
    if getattr(orig, "sqlstate", None) == "23505":  # PostgreSQL: unique_violation
        return True
    return getattr(orig, "sqlite_errorname", "") in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY")


def retry_lost_races(write: Callable[P, R], attempts: int = 3) -> Callable[P, R]:
    """``write``, run again (up to ``attempts`` times in all) when it fails with :class:`LostRace`.

    ``write`` must open its own transaction (:meth:`LmsStore.transaction`), not join one: after
    a refused statement PostgreSQL aborts the whole transaction, so only a new one can try again."""

    @wraps(write)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        for _ in range(attempts - 1):
            try:
                return write(*args, **kwargs)
            except LostRace:
                continue
        return write(*args, **kwargs)

    return run


def _unique_per_account(table: Table, key: str) -> bool:
    """Whether a constraint makes ``key`` unique within an account (content and courses by
    ``external_reference``, every record by ``id``)."""
    if key == "id":
        return True
    return any(isinstance(c, UniqueConstraint) and [col.name for col in c.columns] == ["account_key", key]
               for c in table.constraints)


def refusal(exc: DBAPIError) -> Unprocessable | AccountGone:
    """What the caller is told when the database refuses a write (on PostgreSQL, a text longer
    than its column). The column is named when the statement's parameters show which value
    was too long: PostgreSQL's own message does not say."""
    if _breaks_foreign_key(exc):
        return AccountGone("x-account-id: the linked account was deleted")
    reason = str(exc.orig).splitlines()[0] if exc.orig else type(exc).__name__
    names: list[str] = []
    found = _WRITTEN_TABLE.match(exc.statement or "")
    table = t.metadata.tables.get(found.group(1)) if found else None
    rows = [exc.params] if isinstance(exc.params, dict) else exc.params if isinstance(exc.params, list) else []
    if table is not None:
        for column in table.columns:
            length = getattr(column.type, "length", None)
            longest = max((len(v) for row in rows if isinstance(row, dict)
                           for v in (row.get(column.name),) if isinstance(v, str)), default=0)
            if length and longest > length:
                names.append(f"{column.name} ({longest} characters; at most {length})")
    where = ", ".join(names) + ": " if names else ""
    kind = LostRace if _breaks_unique_key(exc) else Unprocessable
    return kind(f"{where}the store refused the record: {reason}")


def _by_account(rows: Sequence[tuple[Any, ...]], acct_at: int, at: int) -> dict[int, set[Any]]:
    """The values at ``at`` of ``rows``, as a set per account key. A batch of one account (every
    import's) is gathered in C: per row, Python was most of what the writer of an import did
    besides the database."""
    accounts = set(map(itemgetter(acct_at), rows))
    if len(accounts) == 1:
        return {accounts.pop(): set(map(itemgetter(at), rows))}
    out: dict[int, set[Any]] = {}
    for row in rows:
        out.setdefault(row[acct_at], set()).add(row[at])
    return out


class LmsStore:
    def __init__(self, engine: Engine, *, learner_cache: int = LEARNER_CACHE) -> None:
        self.engine = engine
        self.learner_cache = learner_cache
        """How many learners :attr:`_learners` holds before it is emptied."""
        self._dialect = engine.dialect.name
        self._local = threading.local()
        self._bulk = Bulk(engine.dialect)
        self._learners: dict[int, set[str]] = {}
        """Ids of learners known to be stored, by account key: added only once a transaction
        that created or found them has committed; emptied when it holds ``learner_cache``."""
        self._learners_held = 0
        self._keys: dict[str, tuple[int, float]] = {}

    # ---------------------------------------------------------------- accounts
    def account_key(self, account_id: str, conn: Connection | None = None) -> int | None:
        """The small integer that record tables name an account by (``accounts.key``, see
        ``store.tables``); None for an unknown account.

        Remembered for ``ACCOUNT_CACHE_SECONDS``, as accounts are. A key is never given to
        another account, so what can go stale is only an account deleted and made again with
        the same id by another process; :meth:`forget_account_key` covers this process."""
        found = self._keys.get(account_id)
        if found is not None and found[1] > time.monotonic():
            return found[0]
        query = select(t.accounts.c.key).where(t.accounts.c.id == account_id)
        if conn is None:
            with self._read() as c:
                key = c.execute(query).scalar()
        else:
            key = conn.execute(query).scalar()
        if key is None:
            return None
        if len(self._keys) > 10_000:
            self._keys.clear()
        self._keys[account_id] = (key, time.monotonic() + ACCOUNT_CACHE_SECONDS)
        return int(key)

    def forget_account_key(self, account_id: str | None = None) -> None:
        if account_id is None:
            self._keys.clear()
        else:
            self._keys.pop(account_id, None)

    # ---------------------------------------------------------------- unit of work
    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """Run several calls of this store, on this thread, in one transaction (one commit).

        Calls made inside join it instead of committing on their own; it commits when the
        outermost block ends and rolls back if it raises.

        On SQLite, write transactions of this process take turns on a lock. SQLite allows one
        writer at a time anyway, and its own wait for the file lock sleeps in growing steps,
        which turned contention into second-long tails; the lock hands over at once.
        """
        current = getattr(self._local, "conn", None)
        if current is not None:
            yield current
            return
        committed: list[Callable[[], None]] = []
        try:
            with writing(self.engine) as conn:
                self._local.conn = conn
                self._local.on_commit = committed
                try:
                    yield conn
                finally:
                    self._local.conn = None
                    self._local.on_commit = None
        except (DataError, IntegrityError) as exc:  # a value the database will not hold: the caller's 422
            raise refusal(exc) from exc
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) == "40P01":
                # PostgreSQL undid this transaction to end a deadlock with another (two upserts
                # locking the same category names in different orders): run it again.
                raise LostRace("the store undid this write to end a deadlock with another") from exc
            raise
        for fn in committed:
            fn()

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        current = getattr(self._local, "conn", None)
        if current is not None:
            yield current
            return
        with self.engine.connect() as conn:
            yield conn

    # ---------------------------------------------------------------- helpers
    def _insert(self, table: Table):  # type: ignore[no-untyped-def]
        return (postgresql.insert if self._dialect == "postgresql" else sqlite.insert)(table)

    def _page(self, conn: Connection, table: Table, account_id: str, page: PageRequest,
              where: Sequence[ColumnElement[bool]] = ()) -> Page:
        q = select(table).where(table.c.account_key == self.account_key(account_id, conn), *where)
        if page.updated_after is not None:
            q = q.where(table.c.updated_at > page.updated_after)
        if page.after_id is not None:
            q = q.where(table.c.id > page.after_id)
        q = q.order_by(table.c.id).limit(page.page_size + 1)
        if page.offset and page.after_id is None:
            q = q.offset(page.offset)
        rows: list[Any] = conn.execute(q).mappings().all()  # read-only mappings, no copies
        return Page.cut(rows, page.page_size, lambda row: row["id"])

    def get(self, table: Table, account_id: str, record_id: str, *, for_update: bool = False,
            **match: Any) -> Row | None:
        """The row, or None. ``for_update``: inside :meth:`transaction`, for a read-merge-write
        (a PATCH): the row is locked until the commit (SQLite: the database's write lock), so
        that two merges at once do not lose one's fields."""
        return self.get_where(table, account_id, for_update=for_update, id=record_id, **match)

    def get_where(self, table: Table, account_id: str, *, for_update: bool = False, **match: Any) -> Row | None:
        """The first row (in id order) whose columns equal ``match``, or None; ``for_update``
        as in :meth:`get`."""
        with self._read() as conn:
            q = select(table).where(table.c.account_key == self.account_key(account_id, conn)).order_by(table.c.id)
            for column, value in match.items():
                q = q.where(table.c[column] == value)
            if for_update:
                hold_write_lock(conn)  # SQLite; PostgreSQL locks the row:
                q = q.with_for_update()
            row = conn.execute(q).mappings().first()
        return dict(row) if row else None

    def list(self, table: Table, account_id: str, page: PageRequest,
             where: Sequence[ColumnElement[bool]] = ()) -> Page:
        """A page of whole rows, in id order."""
        with self._read() as conn:
            return self._page(conn, table, account_id, page, where)

    def list_computed(self, query: ComputedPageQuery, account_id: str, page: PageRequest, **equal: Any) -> Page:
        """A page of ``(id, *columns)`` tuples, for columns the database computes (see
        ``store.computed_pages``)."""
        with self._read() as conn:
            return query.run(conn, self.account_key(account_id, conn), page, **equal)

    def count(self, table: Table, account_id: str) -> int:
        with self._read() as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(table)
                    .where(table.c.account_key == self.account_key(account_id, conn))
                ).scalar_one()
            )

    # ---------------------------------------------------------------- users
    def upsert_user(self, account_id: str, user_id: str, values: Row, ts: datetime) -> bool:
        """Create or replace a learner. Returns True when the row is new."""
        with self.transaction() as conn:
            key = self.account_key(account_id, conn)
            existing = conn.execute(
                select(t.users.c.id).where(t.users.c.account_key == key, t.users.c.id == user_id)
            ).first()
            if existing:
                conn.execute(
                    update(t.users)
                    .where(t.users.c.account_key == key, t.users.c.id == user_id)
                    .values(**values, updated_at=ts)
                )
            else:
                conn.execute(
                    self._insert(t.users).values(
                        account_key=key, id=user_id, created_at=ts, updated_at=ts, **values
                    )
                )
        return existing is None

    # ---------------------------------------------------------------- completions & assignments
    def insert_records(self, table: Table, rows: list[Row]) -> list[tuple[str, bool]]:
        """Insert completions or assignments in one transaction, skipping known ``dedupe_key``s.

        Returns ``(id, created)`` per row, in order; for a repeat, the id of the first record
        and ``False`` (also when the repeat is earlier in the same batch). A row whose
        ``learning_object_id`` or ``learning_object_type`` is None gets them from the content
        or course with its ``learning_object_external_reference``, if there is one. Learners
        are created on the fly in the same transaction.

        The rows go to the database in a few statements whatever their number (see
        :mod:`lmsgate.store.bulk`). Raises :class:`~lmsgate.errors.Unprocessable` when the
        database refuses a row (on PostgreSQL, a value longer than its column); then nothing
        of the batch is written.
        """
        return self.insert_bound(table, self._bulk.bind(table, rows))

    def insert_bound(self, table: Table, values: list[tuple[Any, ...]]) -> list[tuple[str, bool]]:
        """:meth:`insert_records` for rows already bound, by this store's
        :meth:`Bulk.bind` or by one for the same dialect in another process."""
        if not values:
            return []
        col = {name: i for i, name in enumerate(self._bulk.columns(table))}
        acct_at, key_at, id_at = col["account_key"], col["dedupe_key"], col["id"]
        with self.transaction() as conn:  # a refused row is a 422 (see transaction)
            values = self._stamped(table, values, col)
            self._ensure_learners(conn, values, acct_at, col["user_id"])
            values = self._with_learning_objects(conn, table, values, col)
            # Per row, only what runs in C: an import writes 20,000 rows a transaction, and
            # this process's Python per row is what it waits for (see docs/operations.md).
            keys = list(map(itemgetter(acct_at, key_at), values))
            firsts = dict(zip(reversed(keys), reversed(values)))  # the first row of a key wins
            inserted = self._bulk.insert_bound(conn, table, self._in_index_order(firsts.values(), col),
                                               ("account_key", "dedupe_key"))
            found = None if inserted == len(firsts) else self._ids_by_dedupe_key(conn, table, list(firsts))
        if found is None and len(firsts) == len(values):  # all new, none twice: the usual import batch
            return [(rid, True) for rid in map(itemgetter(id_at), values)]
        ids = found if found is not None else {key: v[id_at] for key, v in firsts.items()}
        return [(rid, rid == v[id_at]) for rid, v in zip(map(ids.__getitem__, keys), values)]

    @staticmethod
    def _in_index_order(rows: Iterable[tuple[Any, ...]], col: dict[str, int]) -> list[tuple[Any, ...]]:
        """``rows`` sorted by learner, when the table has one (completions, assignments).

        Their index by learner takes its inserts all over: a big write, in file order, sent
        each row to a page of that index that the page cache had mostly dropped since the
        row before. Sorted, each page is read and changed once for all its rows. Bare inserts
        of 1,000,000 prepared rows, 20,000 per transaction, 16 MiB cache: 67,186-68,864 rows/s
        in file order, 74,304-76,573 sorted (as a 64 MiB cache gave unsorted, 77,186), for
        about 10 ms of sorting per 20,000 rows. The rows are distinct by dedupe key here, so
        the order decides nothing but where each lands; outcomes are found by key."""
        at = col.get("user_id")
        return list(rows) if at is None else sorted(rows, key=itemgetter(at))

    def _stamped(self, table: Table, values: list[tuple[Any, ...]], col: dict[str, int]) -> list[tuple[Any, ...]]:
        """``values`` with ``created_at`` and ``updated_at`` set to now, the time they are stored.

        Rows are built ahead of their write (an import builds them in worker processes, whole
        batches ahead): stamped then, a row committed seconds after a later-built one, and an
        incremental export asking for what changed after the newest ``updated_at`` it had seen
        never got it. Stamped here, inside the write transaction, that is after the previous
        write committed: on SQLite, one writer at a time, a row's ``updated_at`` is never older
        than one already visible."""
        created_at, updated_at = col.get("created_at"), col.get("updated_at")
        if created_at is None or updated_at != created_at + 1:
            return values
        now = self._bulk.bind_one(table, "updated_at", datetime.now(timezone.utc))
        pair = (now, now)
        return [v[:created_at] + pair + v[updated_at + 1:] for v in values]

    def _ensure_learners(self, conn: Connection, values: list[tuple[Any, ...]], acct_at: int, user_at: int) -> None:
        """Create a bare learner row for each user id the rows name that has none yet.

        Learners this store has seen committed are skipped without asking the database: an
        import names the same learners batch after batch, and ensuring them again cost a
        sixth of its time. Learners are deleted only with their account, whose id is never
        used again, so a learner once stored stays stored."""
        cache = self._learners
        learners = {account_key: unknown for account_key, users in _by_account(values, acct_at, user_at).items()
                    if (unknown := users.difference(cache.get(account_key, ())))}
        if not learners:
            return
        self._local.on_commit.append(lambda: self._remember_learners(learners))
        ts = datetime.now(timezone.utc)
        new: list[Row] = []
        for account_key, users in learners.items():
            # On SQLite, skipping known learners saves their inserts; PostgreSQL's one-statement
            # insert skips them on the server cheaper than a look-up would.
            ordered = sorted(users)
            known = (self._bulk.find(conn, t.users, account_key, "id", ordered, "id")
                     if self._dialect == "sqlite" else {})
            new.extend({"account_key": account_key, "id": u, "created_at": ts, "updated_at": ts, "doc": {}}
                       for u in ordered if u not in known)
        # A learner created meanwhile by another writer is skipped by the conflict clause.
        self._bulk.insert_ignoring(conn, t.users, new, ("account_key", "id"))

    def _remember_learners(self, learners: dict[int, set[str]]) -> None:
        cache = self._learners
        if self._learners_held >= self.learner_cache:
            cache.clear()
            self._learners_held = 0
        for account_key, users in learners.items():
            known = cache.setdefault(account_key, set())
            before = len(known)
            known.update(users)  # another writer may have added some of them meanwhile
            self._learners_held += len(known) - before

    def _ids_by_dedupe_key(self, conn: Connection, table: Table,
                           keys: list[tuple[int, str]]) -> dict[tuple[int, str], str]:
        by_account: dict[int, list[str]] = {}
        for account_key, key in keys:
            by_account.setdefault(account_key, []).append(key)
        out: dict[tuple[int, str], str] = {}
        for account_key, dedupe_keys in by_account.items():
            found = self._bulk.find(conn, table, account_key, "dedupe_key", dedupe_keys, "id")
            out.update({(account_key, key): rid for key, rid in found.items()})
        return out

    def _with_learning_objects(self, conn: Connection, table: Table, values: list[tuple[Any, ...]],
                               col: dict[str, int]) -> list[tuple[Any, ...]]:
        """Fill the learning object's id and type of each row that lacks its type."""
        acct_at, ref_at = col["account_key"], col["learning_object_external_reference"]
        id_at, type_at = col["learning_object_id"], col["learning_object_type"]
        no_type = self._bulk.bind_one(table, "learning_object_type", None)
        wanted = _by_account([v for v in values if v[type_at] == no_type], acct_at, ref_at)
        if not wanted:
            return values
        found = {acct: self._learning_objects(conn, acct, refs) for acct, refs in wanted.items()}
        if not any(found.values()):
            return values
        out = []
        for v in values:
            hit = found.get(v[acct_at], {}).get(v[ref_at])
            if hit is not None and v[type_at] == no_type:
                row = list(v)
                row[type_at] = self._bulk.bind_one(table, "learning_object_type", hit[1])
                if not row[id_at]:  # None or "": a text column's value is bound as it is
                    row[id_at] = self._bulk.bind_one(table, "learning_object_id", hit[0])
                v = tuple(row)
            out.append(v)
        return out

    def delete_record(self, table: Table, account_id: str, record_id: str, user_id: str) -> bool:
        with self.transaction() as conn:
            res = conn.execute(
                delete(table).where(
                    table.c.account_key == self.account_key(account_id, conn),
                    table.c.id == record_id,
                    table.c.user_id == user_id,
                )
            )
        return res.rowcount > 0

    # ---------------------------------------------------------------- learning objects
    def _learning_objects(self, conn: Connection, account_key: int | None,
                          refs: Iterable[str]) -> dict[str, tuple[str, str]]:
        """``ref → (id, "content" | "course")`` for the external references that name one, content first."""
        found: dict[str, tuple[str, str]] = {}
        for table, kind in ((t.content, "content"), (t.courses, "course")):
            todo = [ref for ref in refs if ref not in found]
            ids = self._bulk.find(conn, table, account_key, "external_reference", todo, "id", settled=True)
            found.update({ref: (rid, kind) for ref, rid in ids.items()})
        return found

    def find_learning_object(self, account_id: str, external_reference: str) -> tuple[str, str] | None:
        """``(id, "content" | "course")`` for an external reference, content first."""
        with self._read() as conn:
            key = self.account_key(account_id, conn)
            return self._learning_objects(conn, key, [external_reference]).get(external_reference)

    def upsert_docs(self, table: Table, account_id: str, docs: Iterable[Row], ts: datetime,
                    key: str = "external_reference") -> list[tuple[str, bool]]:
        """Create or replace documents keyed by ``key`` within the account, in one transaction.

        Each item of ``docs`` holds the column values plus ``doc``; a new row takes the
        ``id`` given in it. Returns ``(id, created)`` per item, in order. The result is what
        writing them one after another gives (a key repeated later in ``docs`` replaces the
        row its first occurrence made), in a few statements: one look-up for every key, one
        insert and one update for all rows (a batch of 1,000 took 1,000 of each before).
        """
        docs = list(docs)
        out: list[tuple[str, bool]] = []
        with self.transaction() as conn:
            account_key = self.account_key(account_id, conn)
            wanted = list(dict.fromkeys(v[key] for v in docs if v[key] is not None))
            if wanted and not _unique_per_account(table, key):
                if self._dialect == "postgresql":
                    self._lock_keys(conn, table, account_key, wanted)
                else:
                    hold_write_lock(conn)
            ids: dict[Any, str] = self._bulk.find(conn, table, account_key, key, wanted, "id") if wanted else {}
            inserts: list[Row] = []
            updates: list[Row] = []
            for values in docs:
                found = ids.get(values[key])  # a None key is never looked up nor remembered
                if found:
                    row = {k: v for k, v in values.items() if k != "id"}
                    row["doc"] = {**row["doc"], "id": found}
                    row.update(updated_at=ts, _account_key=account_key, _id=found)
                    updates.append(row)
                    out.append((found, False))
                else:
                    row = {"account_key": account_key, "created_at": ts, "updated_at": ts, **values}
                    inserts.append(row)
                    if values[key] is not None:
                        ids[values[key]] = values["id"]
                    out.append((values["id"], True))
            # One statement per run of rows with the same columns, in order: a key updated
            # twice keeps its last values.
            for _, rows in groupby(inserts, key=tuple):
                conn.execute(self._insert(table), list(rows))
            for _, rows in groupby(updates, key=tuple):
                conn.execute(update(table).where(table.c.account_key == bindparam("_account_key"),
                                                 table.c.id == bindparam("_id")), list(rows))
        return out

    @staticmethod
    def _lock_keys(conn: Connection, table: Table, account_key: int | None, keys: list[str]) -> None:
        """PostgreSQL: hold, until the commit, a lock for each of the account's ``keys`` in
        ``table``, for keys that no unique constraint guards (a category's name). Two
        transactions upserting "Safety" at once would both find none and both insert one; the
        second now waits for the first, and its look-up then finds the first's row. Taken in
        one statement, in a fixed order, so that two batches cannot deadlock."""
        conn.execute(text(
            "SELECT pg_advisory_xact_lock(h) FROM (SELECT DISTINCT hashtextextended(k, 0) AS h "
            "FROM unnest(CAST(:keys AS text[])) AS k ORDER BY h) AS locks"
        ), {"keys": [f"{table.name}\x1f{account_key}\x1f{k}" for k in keys]})

    def update_doc(self, table: Table, account_id: str, record_id: str, values: Row, ts: datetime) -> bool:
        with self.transaction() as conn:
            res = conn.execute(
                update(table)
                .where(table.c.account_key == self.account_key(account_id, conn), table.c.id == record_id)
                .values(**values, updated_at=ts)
            )
        return res.rowcount > 0

    def set_course_contents(self, account_id: str, course_id: str, refs: list[str]) -> None:
        with self.transaction() as conn:
            key = self.account_key(account_id, conn)
            conn.execute(
                delete(t.course_content).where(
                    t.course_content.c.account_key == key,
                    t.course_content.c.course_id == course_id,
                )
            )
            if refs:
                conn.execute(
                    t.course_content.insert(),
                    [
                        {"account_key": key, "course_id": course_id, "content_external_reference": r,
                         "position": i}
                        for i, r in enumerate(refs)
                    ],
                )

    def docs_by_id(self, table: Table, account_id: str, ids: Sequence[str]) -> dict[str, Row]:
        """``{id: doc}`` of the account's rows with these ids."""
        out: dict[str, Row] = {}
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return out
        with self._read() as conn:
            key = self.account_key(account_id, conn)
            for i in range(0, len(wanted), IN_CHUNK):
                rows = conn.execute(select(table.c.id, table.c.doc).where(
                    table.c.account_key == key, table.c.id.in_(wanted[i:i + IN_CHUNK])))
                out.update({r.id: r.doc for r in rows})
        return out

    def rename_course_content(self, account_id: str, old: str, new: str) -> None:
        """Content renamed from ``old`` to ``new`` stays in its courses (which name content by
        reference): renamed alone, it left them, and the next content given ``old`` joined them."""
        c = t.course_content.c
        with self.transaction() as conn:
            key = self.account_key(account_id, conn)
            already = select(c.course_id).where(c.account_key == key, c.content_external_reference == new)
            conn.execute(delete(t.course_content).where(
                c.account_key == key, c.content_external_reference == old, c.course_id.in_(already)))
            conn.execute(update(t.course_content).where(c.account_key == key, c.content_external_reference == old)
                         .values(content_external_reference=new))

    def course_ids_for_content(self, account_id: str, refs: list[str]) -> dict[str, list[str]]:
        if not refs:
            return {}
        with self._read() as conn:
            rows = conn.execute(
                select(t.course_content.c.content_external_reference, t.course_content.c.course_id)
                .where(
                    t.course_content.c.account_key == self.account_key(account_id, conn),
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
        with self._read() as conn:
            rows = conn.execute(
                select(t.course_content.c.course_id, t.content.c.id)
                .join(
                    t.content,
                    (t.content.c.account_key == t.course_content.c.account_key)
                    & (t.content.c.external_reference == t.course_content.c.content_external_reference),
                )
                .where(
                    t.course_content.c.account_key == self.account_key(account_id, conn),
                    t.course_content.c.course_id.in_(course_ids),
                )
                .order_by(t.course_content.c.position)
            ).all()
        out: dict[str, list[str]] = {}
        for course_id, content_id in rows:
            out.setdefault(course_id, []).append(content_id)
        return out
