"""The ``local`` provider: lmsgate's embedded LMS, kept in lmsgate's own database.

It behaves like a small real LMS:

* content and courses are keyed by ``external_reference``: an upsert creates or replaces;
* categories and skills named on content are stored, matched by ``id`` or else by ``name``;
* a learner is created the first time a completion or assignment names an unknown user id
  (or explicitly, through the lmsgate extension ``PUT /unified/lms/users/{id}``);
* posting the same completion twice (same learner, learning object and ``completed_at``)
  returns the first record's id and stores nothing new; the first write wins.

Database calls are blocking, so each runs in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from itertools import groupby
from operator import itemgetter
from typing import Any, TypeVar

import anyio.to_thread
from sqlalchemy import Table

from lmsgate.connectors.base import CallContext, Connector, ListResult, Wire, WriteResult
from lmsgate.connectors.local import mapping as m
from lmsgate.connectors.local.finishing import finish_page
from lmsgate.connectors.local.rendering import completion_columns
from lmsgate.connectors.local.rows import CompletionRowBuilder
from lmsgate.connectors.spec import ConnectorSpec
from lmsgate.errors import Conflict, LmsGateError, NotFound, Unprocessable
from lmsgate.ids import new_id
from lmsgate.schema import (
    LmsCreateAssignmentRequestDto,
    LmsCreateCompletionRequestDto,
    LmsCreateContentRequestDto,
    LmsUpsertContentRequestDto,
    LmsUpsertCourseRequestDto,
    LmsUpsertUserRequestDto,
)
from lmsgate.schema.taxonomy import CreateCategoriesApiModel, CreateSkillsApiModel
from lmsgate.store import tables as t
from lmsgate.store.commit_process import CommitProcess
from lmsgate.store.computed_pages import ComputedPageQuery
from lmsgate.store.group_commit import GroupCommitter
from lmsgate.store.page_readers import PageReaders
from lmsgate.store.pagination import Page, PageRequest
from lmsgate.store.records import LmsStore, retry_lost_races

T = TypeVar("T")
R = TypeVar("R")

_CONTENT_DOC_EXCLUDE = {
    "passthrough", "additional_data", "categories", "skills", "content_type", "duration",
    "external_reference", "created_at", "updated_at",
}


def _now() -> datetime:
    return datetime.now(timezone.utc)


STORE_THREADS = 2
"""Store calls of one event loop that run at once. Their Python work (building rows) needs the
interpreter lock: with a thread per concurrent request (anyio's default allows 40), listing
under load spent more time handing the lock between threads than working (futex calls were
nearly all the system time). A few threads keep the database busy without that."""
_limiters: dict[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = {}


def _store_limiter() -> anyio.CapacityLimiter:
    loop = asyncio.get_running_loop()
    limiter = _limiters.get(loop)
    if limiter is None:
        for gone in [other for other in _limiters if other.is_closed()]:
            del _limiters[gone]
        limiter = _limiters[loop] = anyio.CapacityLimiter(STORE_THREADS)
    return limiter


async def _run(fn: Callable[[], T]) -> T:
    return await anyio.to_thread.run_sync(fn, limiter=_store_limiter())


async def _in_one_transaction(store: LmsStore, fn: Callable[[], T]) -> T:
    """Run ``fn`` in a worker thread with every store call inside it in one transaction:
    a content upsert and the categories and skills it names commit (and fsync) once. Run
    again if another process created one of its keys meanwhile (``retry_lost_races``)."""

    @retry_lost_races
    def work() -> T:
        with store.transaction():
            return fn()

    return await anyio.to_thread.run_sync(work, limiter=_store_limiter())


def _raw_rows(rows: list[dict[str, Any]], account_id: str) -> list[dict[str, Any]]:
    """Stored rows as the raw log shows them: the account by its id, not the store's key."""
    def shown(k: str, v: Any) -> tuple[str, Any]:
        if k == "account_key":
            return "account_id", account_id
        return str(k), v.isoformat() if isinstance(v, datetime) else v
    return [dict(shown(k, v) for k, v in r.items()) for r in rows]


LOCAL_SPEC = ConnectorSpec(
    key="local",
    name="Embedded LMS",
    description="lmsgate's own learning-record store, in its database. Needs no settings.",
    check="a read of lmsgate's own database",
    notes=("Deleting a local linked account deletes every record stored under it.",),
)


class LocalConnector(Connector):
    provider = "local"
    spec = LOCAL_SPEC

    def __init__(self, store: LmsStore, readers: PageReaders | None = None,
                 committer: CommitProcess | None = None) -> None:
        self.store = store
        self.readers = readers
        # Completions are the hot path: concurrent posts share one transaction (group commit).
        # One transaction at a time on both databases: on PostgreSQL, four in flight split the
        # posts into smaller batches, and each batch costs its round trips and its commit
        # (wrk, 32 connections, three pairs of 6 s: 848-1,006 req/s with four, 1,054-1,077
        # with one; p99 142-198 ms against 83-106 ms).
        # On a SQLite file, the groups are committed by a process of their own when one runs
        # (store/commit_process.py), so that the commit does not share Python's lock with the loop.
        self._completions: GroupCommitter[tuple[Any, ...], tuple[str, bool]] = GroupCommitter(
            lambda rows: store.insert_bound(t.completions, rows),
            write_elsewhere=committer.write if committer is not None else None)
        # So are assignments, and single content upserts, as a catalogue sync sends them.
        self._assignments: GroupCommitter[tuple[str, str, LmsCreateAssignmentRequestDto], tuple[str, bool]] = \
            GroupCommitter(self._write_assignments)
        # Upserts look their keys up, then insert or update: one that another process beat
        # to a new key is run again, and then updates (``retry_lost_races``).
        self._content_upserts: GroupCommitter[tuple[str, LmsUpsertContentRequestDto], tuple[str, bool]] = \
            GroupCommitter(retry_lost_races(self._write_content_upserts))
        # And course and learner upserts: each is a few statements, written one item after
        # another in a shared transaction (what one by one would give, with one commit).
        self._course_upserts: GroupCommitter[tuple[str, LmsUpsertCourseRequestDto], tuple[str, bool]] = \
            GroupCommitter(retry_lost_races(lambda items: self._in_turn(self._upsert_course, items)))
        self._user_upserts: GroupCommitter[tuple[str, str, LmsUpsertUserRequestDto], bool] = \
            GroupCommitter(retry_lost_races(lambda items: self._in_turn(self._upsert_user, items)))
        self._inline_reads = store.engine.dialect.name == "sqlite"
        self._rendered_completions = ComputedPageQuery(
            t.completions, completion_columns(t.completions, store.engine.dialect.name), equal=["user_id"])

    async def verify(self, ctx: CallContext) -> str:
        await _run(lambda: self.store.get(t.users, ctx.account.id, ""))
        return "read lmsgate's own database"

    # ---------------------------------------------------------------- shared
    def _listed(self, ctx: CallContext, table: Table, page: Page, to_wire: Callable[[dict], Wire]) -> ListResult:
        ctx.log_raw("GET", f"local://{table.name}", response=lambda: _raw_rows(page.items, ctx.account.id))
        return ListResult(
            items=[to_wire(r) for r in page.items], next_last_id=page.last_id if page.has_more else None
        )

    def _got(self, ctx: CallContext, table: Table, row: dict | None, what: str, rid: str) -> dict:
        ctx.log_raw("GET", f"local://{table.name}/{rid}", response=lambda: _raw_rows([row], ctx.account.id)[0] if row else None)
        if row is None:
            raise NotFound(f"{what} {rid} not found on account {ctx.account.id}")
        return row

    # ---------------------------------------------------------------- completions
    async def create_user_completion(self, ctx: CallContext, user_id: str,
                                     body: LmsCreateCompletionRequestDto) -> WriteResult:
        [values] = self.completion_row_builder(ctx)([(user_id, body)])
        cid, created = await self._completions.submit(values)
        ctx.log_raw("POST", f"local://completions/{cid}", body=lambda: body.model_dump(mode="json", exclude_none=True))
        return WriteResult(id=cid, remote_id=cid, created=created)

    async def create_user_completions(
        self, ctx: CallContext, items: Sequence[tuple[str, LmsCreateCompletionRequestDto]]
    ) -> list[WriteResult | LmsGateError]:
        """Many completions in one transaction (bulk import). If the store refuses the batch,
        each item is written on its own, so one bad item fails only itself.

        The rows are built here, on the caller's thread, and only the database work goes to a
        worker thread."""
        results = await self.create_bound_completions(ctx, self.completion_row_builder(ctx)(items))
        for (_, body), result in zip(items, results):
            if isinstance(result, WriteResult):
                ctx.log_raw("POST", f"local://completions/{result.id}",
                            body=lambda body=body: body.model_dump(mode="json", exclude_none=True))
        return results

    def completion_row_builder(self, ctx: CallContext) -> CompletionRowBuilder:
        """What turns this account's validated completions into rows for
        :meth:`create_bound_completions`; plain data, so it can run in another process."""
        return CompletionRowBuilder(self.store.account_key(ctx.account.id), self.store.engine.url.drivername)

    async def create_bound_completions(self, ctx: CallContext,
                                       values: list[tuple[Any, ...]]) -> list[WriteResult | LmsGateError]:
        """Store rows made by :meth:`completion_row_builder`, as :meth:`create_user_completions`
        does (one transaction; one row at a time if the store refuses the batch)."""
        def work() -> list[WriteResult | LmsGateError]:
            try:
                written: list[tuple[str, bool] | LmsGateError] = list(self.store.insert_bound(t.completions, values))
            except Unprocessable:
                written = []
                for row in values:
                    try:
                        written.extend(self.store.insert_bound(t.completions, [row]))
                    except Unprocessable as exc:
                        written.append(exc)
            return [w if isinstance(w, LmsGateError) else WriteResult(id=w[0], remote_id=w[0], created=w[1])
                    for w in written]

        return await _run(work)

    async def get_completion(self, ctx: CallContext, completion_id: str) -> Wire:
        row = await _run(lambda: self.store.get(t.completions, ctx.account.id, completion_id))
        return m.completion_to_wire(self._got(ctx, t.completions, row, "completion", completion_id))

    async def get_user_completion(self, ctx: CallContext, user_id: str, completion_id: str) -> Wire:
        row = await _run(
            lambda: self.store.get(t.completions, ctx.account.id, completion_id, user_id=user_id)
        )
        return m.completion_to_wire(self._got(ctx, t.completions, row, "completion", completion_id))

    async def list_completions(self, ctx: CallContext, page: PageRequest) -> ListResult:
        return await self._completions_page(ctx, page)

    async def list_user_completions(self, ctx: CallContext, user_id: str, page: PageRequest) -> ListResult:
        return await self._completions_page(ctx, page, user_id=user_id)

    async def _completions_page(self, ctx: CallContext, page: PageRequest, **equal: str) -> ListResult:
        acct = ctx.account.id
        if ctx.want_raw:  # the raw rows are shown too: read them whole
            where = [t.completions.c[name] == value for name, value in equal.items()]
            rows = await _run(lambda: self.store.list(t.completions, acct, page, where))
            return self._listed(ctx, t.completions, rows, m.completion_to_wire)
        if self.readers is not None:  # SQLite: a page reader process reads it, if one can
            statement = self._rendered_completions.statement(
                self.store.engine.dialect, self.store.account_key(acct), page, **equal)
            answer = await self.readers.read(*statement, page.page_size)
            if answer is not None:
                rendered, last_id, more = answer
                return ListResult(items=[], rendered=rendered, next_last_id=last_id if more else None)
        read = lambda: self.store.list_computed(self._rendered_completions, acct, page, **equal)  # noqa: E731
        # On SQLite the page is one statement on lmsgate's own file, ~0.6 ms for 100 items:
        # cheaper on the event loop than the two thread hand-overs around it (a page of 100
        # served at 746/s instead of 461/s). In a worker thread it was worse still: the driver
        # takes the interpreter lock back after each row, and with the loop busy each wait can
        # last the switch interval (5 ms). On PostgreSQL the read waits on the network, so it
        # keeps its worker thread (psycopg fetches the page in one go).
        if self._inline_reads:
            await asyncio.sleep(0)  # let the requests already waiting go first
            rendered = read()
        else:
            rendered = await _run(read)
        return ListResult(
            items=[], rendered=finish_page(rendered.items),
            next_last_id=rendered.last_id if rendered.has_more else None,
        )

    async def delete_user_completion(self, ctx: CallContext, user_id: str, completion_id: str) -> None:
        deleted = await _run(
            lambda: self.store.delete_record(t.completions, ctx.account.id, completion_id, user_id)
        )
        ctx.log_raw("DELETE", f"local://completions/{completion_id}")
        if not deleted:
            raise NotFound(f"completion {completion_id} of user {user_id} not found")

    # ---------------------------------------------------------------- assignments
    async def create_user_assignment(self, ctx: CallContext, user_id: str,
                                     body: LmsCreateAssignmentRequestDto) -> WriteResult:
        aid, created = await self._assignments.submit((ctx.account.id, user_id, body))
        ctx.log_raw("POST", f"local://assignments/{aid}",
                    body=lambda: body.model_dump(mode="json", exclude_none=True))
        return WriteResult(id=aid, remote_id=aid, created=created)

    def _write_assignments(self, items: list[tuple[str, str, LmsCreateAssignmentRequestDto]],
                           ) -> list[tuple[str, bool]]:
        """Assignments that arrived together, in one transaction (see ``LmsStore.insert_records``:
        a repeat in the same group gets the first one's id, as it would one after another)."""
        ts = _now()
        rows = []
        for acct, user_id, body in items:
            status = body.status.value if body.status else None
            rows.append({
                "account_key": self.store.account_key(acct), "id": new_id(), "created_at": ts, "updated_at": ts,
                "user_id": user_id, "learning_object_id": body.learning_object_id,
                "learning_object_external_reference": body.learning_object_external_reference,
                "learning_object_type": None,
                "status_value": status or "pending",
                "status_source_value": body.status.source_value if body.status else None,
                "progress": body.progress,
                "assigned_at": body.assigned_at or ts,
                "due_date": body.due_date,
                "completed_at": ts if status == "completed" else None,
                "passthrough": body.passthrough,
                "dedupe_key": m.dedupe_key(
                    user_id, body.learning_object_external_reference,
                    m.dt(body.assigned_at) if body.assigned_at else None,
                ),
            })
        return self.store.insert_records(t.assignments, rows)

    async def get_assignment(self, ctx: CallContext, assignment_id: str) -> Wire:
        row = await _run(lambda: self.store.get(t.assignments, ctx.account.id, assignment_id))
        return m.assignment_to_wire(self._got(ctx, t.assignments, row, "assignment", assignment_id))

    async def get_user_assignment(self, ctx: CallContext, user_id: str, assignment_id: str) -> Wire:
        row = await _run(
            lambda: self.store.get(t.assignments, ctx.account.id, assignment_id, user_id=user_id)
        )
        return m.assignment_to_wire(self._got(ctx, t.assignments, row, "assignment", assignment_id))

    def _assignment_filters(self, page: PageRequest, user_id: str | None = None) -> list:
        c = t.assignments.c
        where = []
        if user_id is not None:
            where.append(c.user_id == user_id)
        for key in ("user_id", "remote_user_id"):
            if page.filters.get(key):
                where.append(c.user_id == page.filters[key])
        if page.filters.get("status"):
            where.append(c.status_value == page.filters["status"])
        return where

    async def list_assignments(self, ctx: CallContext, page: PageRequest) -> ListResult:
        where = self._assignment_filters(page)
        rows = await _run(lambda: self.store.list(t.assignments, ctx.account.id, page, where))
        return self._listed(ctx, t.assignments, rows, m.assignment_to_wire)

    async def list_user_assignments(self, ctx: CallContext, user_id: str, page: PageRequest) -> ListResult:
        where = self._assignment_filters(page, user_id)
        rows = await _run(lambda: self.store.list(t.assignments, ctx.account.id, page, where))
        return self._listed(ctx, t.assignments, rows, m.assignment_to_wire)

    # ---------------------------------------------------------------- taxonomy
    def _upsert_taxonomy(self, table: Table, acct: str,
                         items: list[CreateCategoriesApiModel] | list[CreateSkillsApiModel] | None,
                         ts: datetime) -> list[Wire]:
        """Categories or skills named by a content upsert: one shared record each, by id or else
        by name. The fields sent change it; those left out keep what is stored (content that
        names a category with fewer fields, or only its name, wiped its other fields for every
        content), and a record left as it was is not written (its updated_at kept)."""
        out: list[Wire] = []
        for item in items or []:
            if item.id is None and item.name is None:
                continue
            if any(x["id"] == item.id or (item.id is None and x.get("name") == item.name) for x in out):
                continue  # named twice by one content: listed once, as first given
            sent = item.model_dump(mode="json", exclude_none=True)
            existing = (self.store.get(table, acct, item.id, for_update=True) if item.id is not None
                        else self.store.get_where(table, acct, for_update=True, name=item.name))
            if existing is not None:
                doc = {**existing["doc"], **sent, "id": existing["id"]}
                if doc != existing["doc"]:
                    values = {"id": existing["id"], "name": doc.get("name"), "doc": doc}
                    self.store.upsert_docs(table, acct, [values], ts, key="id")
                out.append({**doc, "remote_id": existing["id"]})
                continue
            doc = {"active": True, **sent}
            values = {"id": item.id or new_id(), "name": item.name, "doc": doc}
            [(rid, _)] = self.store.upsert_docs(table, acct, [values], ts, key="id" if item.id is not None else "name")
            out.append({**doc, "id": rid, "remote_id": rid})
        return out

    async def get_category(self, ctx: CallContext, category_id: str) -> Wire:
        row = await _run(lambda: self.store.get(t.categories, ctx.account.id, category_id))
        return m.doc_to_wire(self._got(ctx, t.categories, row, "category", category_id), timestamps=False)

    async def list_categories(self, ctx: CallContext, page: PageRequest) -> ListResult:
        rows = await _run(lambda: self.store.list(t.categories, ctx.account.id, page))
        return self._listed(ctx, t.categories, rows, lambda r: m.doc_to_wire(r, timestamps=False))

    async def get_skill(self, ctx: CallContext, skill_id: str) -> Wire:
        row = await _run(lambda: self.store.get(t.skills, ctx.account.id, skill_id))
        return m.doc_to_wire(self._got(ctx, t.skills, row, "skill", skill_id), timestamps=False)

    async def list_skills(self, ctx: CallContext, page: PageRequest) -> ListResult:
        rows = await _run(lambda: self.store.list(t.skills, ctx.account.id, page))
        return self._listed(ctx, t.skills, rows, lambda r: m.doc_to_wire(r, timestamps=False))

    # ---------------------------------------------------------------- content
    def _content_values(self, acct: str, body: LmsUpsertContentRequestDto | LmsCreateContentRequestDto,
                        ts: datetime, base: Wire | None = None, only_set: bool = False) -> dict[str, Any]:
        given = body.model_dump(mode="json", exclude=_CONTENT_DOC_EXCLUDE, exclude_unset=only_set)
        doc: Wire = dict(base or {})
        doc.update(given)
        fields = body.model_fields_set if only_set else set(type(body).model_fields)
        if "duration" in fields:
            doc["duration"] = m.normalised_duration(body.duration)
        if "content_type" in fields:
            doc["content_type"] = m.content_type_for_read(
                body.content_type.model_dump(mode="json") if body.content_type else None
            )
        if "categories" in fields:
            doc["categories"] = self._upsert_taxonomy(t.categories, acct, body.categories, ts)
        if "skills" in fields:
            doc["skills"] = self._upsert_taxonomy(t.skills, acct, body.skills, ts)
        if "additional_data" in fields:
            doc["_additional_data"] = [a.model_dump(mode="json") for a in body.additional_data or []]
        if getattr(body, "passthrough", None) is not None:
            doc["_passthrough"] = body.passthrough
        ref = body.external_reference if body.external_reference is not None else (base or {}).get("external_reference")
        doc["external_reference"] = ref
        doc["provider"] = self.provider
        active = doc.get("active")
        return {
            "external_reference": ref,
            "active": None if active is None else int(active in (True, "true")),
            "doc": doc,
        }

    def _content_to_wire(self, acct: str, rows: list[dict]) -> list[Wire]:
        courses = self.store.course_ids_for_content(acct, [r["external_reference"] for r in rows])
        taxonomy = self._current_taxonomy(acct, rows)
        out = []
        for r, named in zip(rows, taxonomy):
            ids = courses.get(r["external_reference"], [])
            wire = m.doc_to_wire(r, {"course_ids": ids, "remote_course_ids": ids, **named})
            out.append({k: v for k, v in wire.items() if not k.startswith("_")})
        return out

    def _current_taxonomy(self, acct: str, rows: list[dict]) -> list[Wire]:
        """Per row (content or course), its categories and skills as they are now. A record
        keeps a copy of each as it was when written, which went stale once another upsert or a
        rename changed the shared one (GET /categories/{id} and the content disagreed)."""
        current = {name: self.store.docs_by_id(table, acct, [x["id"] for r in rows for x in r["doc"].get(name) or []
                                                             if isinstance(x, dict) and x.get("id")])
                   for name, table in (("categories", t.categories), ("skills", t.skills))}
        return [{name: [{**found[x["id"]], "id": x["id"], "remote_id": x["id"]}
                        if isinstance(x, dict) and x.get("id") in found else x for x in r["doc"][name]]
                 for name, found in current.items() if r["doc"].get(name)} for r in rows]

    async def upsert_content(self, ctx: CallContext, body: LmsUpsertContentRequestDto) -> WriteResult:
        cid, created = await self._content_upserts.submit((ctx.account.id, body))
        ctx.log_raw("PUT", f"local://content/{cid}", body=lambda: body.model_dump(mode="json", exclude_none=True))
        return WriteResult(id=cid, remote_id=cid, created=created, external_reference=body.external_reference)

    def _write_content_upserts(self, items: list[tuple[str, LmsUpsertContentRequestDto]]) -> list[tuple[str, bool]]:
        """Upserts that arrived together, in one transaction: one commit (and one disk flush)
        for all. Each run of one account's upserts is written as a batch is, which gives what
        writing them one after another gives."""
        ts = _now()
        out = []
        with self.store.transaction():
            for acct, run in groupby(items, key=itemgetter(0)):
                out.extend(self._upsert_content(acct, [body for _, body in run], ts))
        return out

    def _upsert_content(self, acct: str, items: Sequence[LmsUpsertContentRequestDto],
                        ts: datetime) -> list[tuple[str, bool]]:
        """Create or replace content items of one account, in order (see ``LmsStore.upsert_docs``)."""
        docs = [{"id": new_id(), **self._content_values(acct, item, ts)} for item in items]
        return self.store.upsert_docs(t.content, acct, docs, ts)

    async def batch_upsert_content(self, ctx: CallContext,
                                   items: list[LmsUpsertContentRequestDto]) -> list[WriteResult | LmsGateError]:
        """Every item in one transaction; if the store refuses one (on PostgreSQL, a value longer
        than its column), each item in a transaction of its own, so that it fails alone: the
        whole batch, good items included, was lost."""
        acct = ctx.account.id
        outcomes: list[tuple[str, bool] | LmsGateError]
        try:
            outcomes = list(await _in_one_transaction(self.store, lambda: self._upsert_content(acct, items, _now())))
        except Unprocessable:
            outcomes = []
            for item in items:
                try:
                    [one] = await _in_one_transaction(self.store, lambda item=item: self._upsert_content(  # type: ignore[misc]
                        acct, [item], _now()))
                    outcomes.append(one)
                except Unprocessable as exc:
                    outcomes.append(exc)
        results: list[WriteResult | LmsGateError] = []
        for item, outcome in zip(items, outcomes):
            if isinstance(outcome, LmsGateError):
                results.append(outcome)
                continue
            cid, created = outcome
            ctx.log_raw("PUT", f"local://content/{cid}", body=lambda item=item: item.model_dump(mode="json", exclude_none=True))
            results.append(WriteResult(id=cid, remote_id=cid, created=created, external_reference=item.external_reference))
        return results

    async def update_content(self, ctx: CallContext, content_id: str, body: LmsCreateContentRequestDto) -> None:
        acct = ctx.account.id

        def work() -> None:
            row = self.store.get(t.content, acct, content_id, for_update=True)
            if row is None:
                raise NotFound(f"content {content_id} not found on account {acct}")
            ts = _now()
            values = self._content_values(acct, body, ts, base=row["doc"], only_set=True)
            short = body.short_description_given()
            if short is not None and "description" not in body.model_fields_set and not values["doc"].get("description"):
                values["doc"]["description"] = short  # the deprecated name, only where no description is kept
            renamed = values["external_reference"] != row["external_reference"]
            if renamed:
                clash = self.store.find_learning_object(acct, values["external_reference"])
                if clash and clash[1] == "content":
                    raise Conflict(
                        f"external_reference {values['external_reference']!r} is already used by "
                        f"content {clash[0]}"
                    )
            values["doc"]["id"] = content_id
            self.store.update_doc(t.content, acct, content_id, values, ts)
            if renamed:  # its courses keep it: they name content by reference
                self.store.rename_course_content(acct, row["external_reference"], values["external_reference"])

        await _in_one_transaction(self.store, work)
        ctx.log_raw("PATCH", f"local://content/{content_id}", body=lambda: body.model_dump(mode="json", exclude_unset=True))

    async def get_content(self, ctx: CallContext, content_id: str) -> Wire:
        acct = ctx.account.id

        def work() -> Wire:
            row = self._got(ctx, t.content, self.store.get(t.content, acct, content_id), "content", content_id)
            return self._content_to_wire(acct, [row])[0]

        return await _run(work)

    async def list_content(self, ctx: CallContext, page: PageRequest) -> ListResult:
        acct = ctx.account.id
        where = [t.content.c.active == int(page.filters["active"])] if "active" in page.filters else []

        def work() -> ListResult:
            rows = self.store.list(t.content, acct, page, where)
            ctx.log_raw("GET", "local://content", response=lambda: _raw_rows(rows.items, ctx.account.id))
            return ListResult(
                items=self._content_to_wire(acct, rows.items),
                next_last_id=rows.last_id if rows.has_more else None,
            )

        return await _run(work)

    # ---------------------------------------------------------------- courses
    def _in_turn(self, upsert: Callable[..., R], items: list[tuple[Any, ...]]) -> list[R]:
        """Items that arrived together, each written as if alone, in one transaction."""
        ts = _now()
        with self.store.transaction():
            return [upsert(*item, ts) for item in items]

    async def upsert_course(self, ctx: CallContext, body: LmsUpsertCourseRequestDto) -> WriteResult:
        cid, created = await self._course_upserts.submit((ctx.account.id, body))
        ctx.log_raw("PUT", f"local://courses/{cid}", body=lambda: body.model_dump(mode="json", exclude_none=True))
        return WriteResult(id=cid, remote_id=cid, created=created, external_reference=body.external_reference)

    def _upsert_course(self, acct: str, body: LmsUpsertCourseRequestDto, ts: datetime) -> tuple[str, bool]:
        doc = body.model_dump(mode="json", exclude={"categories", "skills", "duration", "content_external_references"})
        doc["duration"] = m.normalised_duration(body.duration)
        doc["categories"] = self._upsert_taxonomy(t.categories, acct, body.categories, ts)
        doc["skills"] = self._upsert_taxonomy(t.skills, acct, body.skills, ts)
        doc["provider"] = self.provider
        [(cid, created)] = self.store.upsert_docs(
            t.courses, acct, [{"id": new_id(), "external_reference": body.external_reference, "doc": doc}], ts,
        )
        self.store.set_course_contents(acct, cid, body.content_external_references or [])
        return cid, created

    def _courses_to_wire(self, acct: str, rows: list[dict]) -> list[Wire]:
        contents = self.store.content_ids_for_courses(acct, [r["id"] for r in rows])
        return [
            m.doc_to_wire(r, {"content_ids": contents.get(r["id"], []),
                              "remote_content_ids": contents.get(r["id"], []), **named})
            for r, named in zip(rows, self._current_taxonomy(acct, rows))
        ]

    async def get_course(self, ctx: CallContext, course_id: str) -> Wire:
        acct = ctx.account.id

        def work() -> Wire:
            row = self._got(ctx, t.courses, self.store.get(t.courses, acct, course_id), "course", course_id)
            return self._courses_to_wire(acct, [row])[0]

        return await _run(work)

    @staticmethod
    def _course_filters(page: PageRequest) -> list:
        c = t.courses.c
        where = []
        if page.filters.get("external_reference"):
            where.append(c.external_reference == page.filters["external_reference"])
        if "active" in page.filters:
            # Courses keep ``active`` in their document, as sent: JSON true or false, or the
            # string "true" or "false". filter[active]=false finds the inactive ones (the
            # contract has only true; false filtering nothing would be a trap).
            # As text: PostgreSQL gives 'true' for both; SQLite gives '1' for JSON true (and
            # casting the string 'true' to a boolean there gives 0, i.e. false).
            wanted = ("true", "1") if page.filters["active"] else ("false", "0")
            where.append(c.doc["active"].as_string().in_(wanted))
        return where

    async def list_courses(self, ctx: CallContext, page: PageRequest) -> ListResult:
        acct = ctx.account.id
        where = self._course_filters(page)

        def work() -> ListResult:
            rows = self.store.list(t.courses, acct, page, where)
            ctx.log_raw("GET", "local://courses", response=lambda: _raw_rows(rows.items, ctx.account.id))
            return ListResult(
                items=self._courses_to_wire(acct, rows.items),
                next_last_id=rows.last_id if rows.has_more else None,
            )

        return await _run(work)

    # ---------------------------------------------------------------- users
    async def upsert_user(self, ctx: CallContext, user_id: str, body: LmsUpsertUserRequestDto) -> WriteResult:
        created = await self._user_upserts.submit((ctx.account.id, user_id, body))
        ctx.log_raw("PUT", f"local://users/{user_id}", body=lambda: body.model_dump(mode="json"))
        return WriteResult(id=user_id, remote_id=user_id, created=created,
                           external_reference=body.external_reference)

    def _upsert_user(self, acct: str, user_id: str, body: LmsUpsertUserRequestDto, ts: datetime) -> bool:
        values = {"external_reference": body.external_reference, "email": body.email,
                  "doc": body.model_dump(mode="json")}
        return self.store.upsert_user(acct, user_id, values, ts)

    async def get_user(self, ctx: CallContext, user_id: str) -> Wire:
        row = await _run(lambda: self.store.get(t.users, ctx.account.id, user_id))
        return m.doc_to_wire(self._got(ctx, t.users, row, "user", user_id))

    async def list_users(self, ctx: CallContext, page: PageRequest) -> ListResult:
        c = t.users.c
        where = []
        if page.filters.get("email"):
            where.append(c.email == page.filters["email"])
        if page.filters.get("external_reference"):
            where.append(c.external_reference == page.filters["external_reference"])
        rows = await _run(lambda: self.store.list(t.users, ctx.account.id, page, where))
        return self._listed(ctx, t.users, rows, m.doc_to_wire)
