"""The ``xapi`` provider: completions as statements in any xAPI 1.0.3 or 2.0 LRS.

Writes are ``PUT /statements?statementId=…`` (background delivery posts several at once as a
statement batch, :meth:`XapiConnector.create_user_completion_batch`) with the deterministic id from
:func:`~lmsgate.connectors.xapi.mapping.statement_id`: an identical repeat is answered 204
and stored once. When the LRS already holds a *different* statement under that id (the same
learner, learning object and ``completed_at`` posted again with, say, another score), it
answers 409 and lmsgate returns the existing id: the first write wins, as on the embedded LMS.

Reads query ``GET /statements``. With ``query_filters: lrs`` (the default) lmsgate sends
``verb`` (one query per completion verb, one after the other), ``agent``, ``activity`` and
``since`` as xAPI defines them. With ``query_filters: lmsgate`` it sends only ``agent`` and
``since`` and matches verbs and activities itself, for LRSs whose verb and activity filters
do not work (Ralph 5.1 with its ``fs`` backend compares them wrongly and finds nothing).

Content cannot be written: xAPI's Activities resource is read-only (activity definitions come
only from statements), so content upserts answer 501.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson

from lmsgate.connectors.base import CallContext, Connector, ListResult, Wire, WriteResult
from lmsgate.connectors.spec import (
    BasicAuth,
    ConfigField,
    ConnectorSpec,
    FieldMapping,
    LinkedConfig,
    OAuth2ClientCredentials,
)
from lmsgate.connectors.xapi import mapping as m
from lmsgate.errors import BadRequest, Conflict, NotFound, ProviderFailure
from lmsgate.http import ProviderSession
from lmsgate.schema import LmsCreateCompletionRequestDto
from lmsgate.schema.types import format_datetime
from lmsgate.store.pagination import PageRequest
from lmsgate.store.tenancy import Account

XAPI_SPEC = ConnectorSpec(
    key="xapi",
    name="xAPI Learning Record Store",
    description="Any LRS speaking xAPI 1.0.3 or 2.0 (for example Ralph, Learning Locker, SQL LRS, "
    "SCORM Cloud). Each completion becomes one statement.",
    auth=(BasicAuth("username", "password"), OAuth2ClientCredentials()),
    fields=(
        ConfigField("endpoint", "The LRS's xAPI base URL; statements live at {endpoint}/statements",
                    kind="url", outbound=True, example="https://lrs.example.com/xAPI/"),
        ConfigField("activity_base_iri", "Activity ids are this IRI followed by the learning object's "
                    "external reference", kind="url", example="https://lms.example.com/activities/"),
        ConfigField("actor_homepage", "homePage of the xAPI account of a learner whose id is not an "
                    "email address", kind="url", example="https://lms.example.com"),
        ConfigField("xapi_version", "Sent as X-Experience-API-Version", kind="choice",
                    choices=("1.0.3", "2.0.0"), default="1.0.3", required=False),
        ConfigField("query_filters", "Where verb and activity filters run: lrs (sent to the LRS, as "
                    "xAPI defines) or lmsgate (for LRSs whose filters do not work)", kind="choice",
                    choices=("lrs", "lmsgate"), default="lrs", required=False),
        ConfigField("max_requests_per_second", "Client-side rate limit for this account", kind="number",
                    required=False),
        ConfigField("username", "LRS key (Basic auth user name)", secret=True, required=False),
        ConfigField("password", "LRS secret (Basic auth password)", secret=True, required=False),
        ConfigField("token_url", "OAuth 2.0 token endpoint", kind="url", outbound=True, required=False),
        ConfigField("client_id", "OAuth 2.0 client id", required=False),
        ConfigField("client_secret", "OAuth 2.0 client secret", secret=True, required=False),
        ConfigField("scope", "OAuth 2.0 scope to request", required=False),
    ),
    base_url="{endpoint}",
    rate_limit=None,
    rate_limit_field="max_requests_per_second",
    check="GET {endpoint}/statements?limit=1 (needs read access)",
    mappings=(
        FieldMapping("result.value", "verb.id", "Pass → passed, Fail → failed, anything else → completed"),
        FieldMapping("(user id)", "actor", "mbox mailto:{id} for an email address (its domain in lower "
                     "case), else account {homePage: actor_homepage, name: id}"),
        FieldMapping("learning_object_external_reference", "object.id",
                     "activity_base_iri + the reference, percent-encoded"),
        FieldMapping("completed_at", "timestamp", "RFC 3339, UTC"),
        FieldMapping("time_spent", "result.duration", "ISO 8601 duration, seconds rounded to 0.01 s "
                     "(half away from zero), the precision xAPI allows"),
        FieldMapping("score.percentage", "result.score.scaled", "percentage / 100, exact decimal"),
        FieldMapping("score.raw_value", "result.score.raw, min, max", "\"a / b\" → raw a, min 0, max b "
                     "(when 0 ≤ a ≤ b); the text itself is kept in a context extension"),
        FieldMapping("(account, user, learning object, completed_at)", "id",
                     "UUID v5: retries store nothing new"),
        FieldMapping("learning_object_id, result, score", "context.extensions[urn:lmsgate:completion]",
                     "kept so they read back unchanged"),
        FieldMapping("passthrough", "(the statement)", "merged deeply into the statement; it may add "
                     "(actor.name, object.definition, context, result.extensions, attachments) but not "
                     "change what lmsgate derives (id, actor's identity, verb.id, object.id, timestamp, "
                     "result success, completion, duration and score)"),
        FieldMapping("filter[updated_after]", "since", "as is"),
    ),
    notes=(
        "Content, courses, users, assignments and categories are not xAPI resources lmsgate can "
        "write or list; those operations answer 501.",
        "Ralph 5.1's fs backend ignores verb and activity filters and stores one write per "
        "user target; link it with query_filters: lmsgate.",
    ),
)

_UUID_LEN = 36


class XapiConnector(Connector):
    provider = "xapi"
    spec = XAPI_SPEC

    def __init__(self, account: Account, linked: LinkedConfig, http: ProviderSession) -> None:
        self.account = account
        self.config = linked.config
        self.http = http
        self.mapping = m.XapiMapping(activity_base_iri=self.config["activity_base_iri"],
                                     actor_homepage=self.config["actor_homepage"])
        self.filters_on_lrs = self.config.get("query_filters", "lrs") == "lrs"

    @staticmethod
    def default_headers(config: dict[str, Any]) -> dict[str, str]:
        return {"X-Experience-API-Version": str(config.get("xapi_version") or "1.0.3"),
                "Accept": "application/json"}

    # ------------------------------------------------------------ account check

    async def verify(self, ctx: CallContext) -> str:
        self.http.begin()
        resp = await self.http.request(ctx, "GET", "statements", params={"limit": "1"})
        body = resp.json()
        if not isinstance(body, dict) or not isinstance(body.get("statements"), list):
            raise ProviderFailure("The LRS answered GET statements without a statements list; is the "
                                  "endpoint an xAPI base URL?", status=502,
                                  provider_errors=[self.http.error_entry(resp)])
        return f"GET {self.http.redactor.url(self.http.absolute('statements'))}?limit=1"

    # ------------------------------------------------------------ writes

    async def create_user_completion(self, ctx: CallContext, user_id: str,
                                     body: LmsCreateCompletionRequestDto) -> WriteResult:
        sid, statement = m.completion_to_statement(self.account.id, user_id, body, self.mapping)
        self.http.begin()
        try:
            resp = await self.http.request(ctx, "PUT", "statements", params={"statementId": sid}, json=statement)
            self._stored(resp, "PUT")
            created = True
        except Conflict:
            created = False  # a different statement already holds this id: first write wins
        return WriteResult(id=sid, remote_id=sid, created=created)

    def _stored(self, resp: Any, method: str) -> None:
        """502 unless ``resp`` is an LRS's answer to a statement write: ``PUT`` answers 204 and
        ``POST`` a JSON array of ids (xAPI 1.0.3, Communication 2.1). A 2xx with another body,
        such as the HTML page of a login proxy or a web UI at the endpoint, stored nothing."""
        if resp.status == 204 or not resp.content.strip():
            return
        try:
            body = orjson.loads(resp.content)
        except orjson.JSONDecodeError:
            body = None
        if method == "PUT" and body is not None or isinstance(body, list):
            return
        kind = resp.headers.get("content-type", "no content type")
        raise ProviderFailure(
            f"The LRS answered {method} statements with {resp.status} and a body that is not an xAPI "
            f"answer ({kind}); the statement may not be stored. Is the endpoint the LRS's xAPI base URL?",
            status=502, provider_errors=[self.http.error_entry(resp)])

    async def create_user_completion_batch(
            self, ctx: CallContext, items: Sequence[tuple[str, LmsCreateCompletionRequestDto]]) -> list[WriteResult]:
        """Write several completions as one statement batch: ``POST /statements`` with an array.

        Used by background delivery (:mod:`lmsgate.delivery`); unlike the bulk import's
        :meth:`create_user_completions` (one call per item, an outcome per item), the batch
        succeeds or fails as one. A batch is all or nothing: "The
        LRS MUST reject a batch of statements if any Statement within that batch is rejected"
        (xAPI 1.0.3, Communication §3.2), so an error (400 for one invalid statement, 409 for an
        id that holds a different statement) is the whole batch's and stored none of it; the
        caller then sends the items one by one (``PUT``) to learn which one it was. A statement
        already stored identically is accepted again, as with ``PUT``.
        """
        statements = [m.completion_to_statement(self.account.id, user_id, body, self.mapping)
                      for user_id, body in items]
        self.http.begin()
        resp = await self.http.request(ctx, "POST", "statements", json=[statement for _, statement in statements])
        self._stored(resp, "POST")
        return [WriteResult(id=sid, remote_id=sid, created=True) for sid, _ in statements]

    def check_write(self, operation: str, args: tuple[str, ...], body: Any) -> None:
        """What :meth:`create_user_completion` would refuse before calling the LRS, refused
        when a write is only accepted for later (``Prefer: respond-async``), not dead-lettered."""
        if operation == "create_user_completion" and isinstance(body, LmsCreateCompletionRequestDto):
            m.check_passthrough(body.passthrough)

    # ------------------------------------------------------------ reads

    async def _statement(self, ctx: CallContext, statement_id: str) -> dict[str, Any] | None:
        if len(statement_id) != _UUID_LEN:
            return None  # not a statement id; an LRS would answer 400
        self.http.begin()
        try:
            resp = await self.http.request(ctx, "GET", "statements", params={"statementId": statement_id})
        except NotFound:
            return None
        body = resp.json()
        if isinstance(body, dict) and isinstance(body.get("statements"), list):
            found = [s for s in body["statements"] if isinstance(s, dict) and s.get("id") == statement_id]
            return found[0] if found else None
        return body if isinstance(body, dict) and body.get("id") == statement_id else None

    async def get_completion(self, ctx: CallContext, completion_id: str) -> Wire:
        item = m.statement_to_completion(await self._statement(ctx, completion_id), self.mapping)
        if item is None:
            raise NotFound(f"completion {completion_id} not found on account {ctx.account.id}")
        return item

    async def get_user_completion(self, ctx: CallContext, user_id: str, completion_id: str) -> Wire:
        item = m.statement_to_completion(await self._statement(ctx, completion_id), self.mapping)
        # both sides as the LRS identifies the learner: an LRS that keeps an mbox's case as sent
        # (or statements lmsgate wrote before it lowered domains) may answer bob@Example.com
        if item is None or item["user_id"] is None or m.learner(item["user_id"]) != m.learner(user_id):
            raise NotFound(
                f"completion {completion_id} of user {user_id} not found on account {ctx.account.id}")
        return item

    async def list_completions(self, ctx: CallContext, page: PageRequest) -> ListResult:
        return await self._list(ctx, page, agent=None)

    async def list_user_completions(self, ctx: CallContext, user_id: str, page: PageRequest) -> ListResult:
        return await self._list(ctx, page, agent=m.actor_query(user_id, self.mapping))

    async def _list(self, ctx: CallContext, page: PageRequest, agent: dict[str, Any] | None) -> ListResult:
        """Walk the statement streams (one per verb, or one for all) page by page.

        The cursor carries the stream index and the LRS's ``more`` link; it is signed by the
        API layer, so a caller cannot point lmsgate at another URL through it.
        """
        if page.offset:
            raise BadRequest("page: the xapi connector pages with next only; follow the next cursor")
        self.http.begin()
        proxy = {k: str(v) for k, v in ctx.proxy.items()}
        wanted_verb = proxy.pop("verb", None)
        activity = proxy.pop("activity", None)
        if wanted_verb is not None and wanted_verb not in m.COMPLETION_VERBS:
            raise BadRequest(f"proxy[verb]: completions are recorded with {', '.join(m.COMPLETION_VERBS)}")
        verbs: list[str | None]
        if self.filters_on_lrs:
            verbs = [wanted_verb] if wanted_verb else list(m.COMPLETION_VERBS)
        else:
            verbs = [None]
        stream, more = 0, None
        if page.after_id:
            try:
                state = orjson.loads(page.after_id)
                stream, more = int(state["s"]), state.get("m")
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                raise BadRequest("next: not a valid cursor for this list; start again without next") from None
        base: dict[str, str] = dict(proxy)
        if agent is not None:
            base["agent"] = orjson.dumps(agent).decode()
        if page.updated_after is not None:
            base["since"] = format_datetime(page.updated_after)
        if activity and self.filters_on_lrs:
            base["activity"] = activity

        items: list[Wire] = []
        while stream < len(verbs):
            if more:  # with this page's size: the link repeats the limit of the call that made it
                resp = await self.http.request(ctx, "GET", _with_limit(more, page.page_size - len(items)))
            else:
                params = {**base, "limit": str(page.page_size - len(items))}
                if verbs[stream]:
                    params["verb"] = verbs[stream]  # type: ignore[assignment]
                resp = await self.http.request(ctx, "GET", "statements", params=params)
            body = resp.json()
            if not isinstance(body, dict) or not isinstance(body.get("statements"), list):
                raise ProviderFailure("The LRS answered a statements query without a statements list",
                                      status=502, provider_errors=[self.http.error_entry(resp)])
            for statement in body["statements"]:
                item = m.statement_to_completion(statement, self.mapping)
                if item is None or (wanted_verb and statement["verb"]["id"] != wanted_verb):
                    continue
                if activity and (statement.get("object") or {}).get("id") != activity:
                    continue
                items.append(item)
            more = body.get("more") or None
            if more:
                break  # a short page; the next one continues this stream
            stream += 1
            if len(items) >= page.page_size:
                break
        next_state = None if stream >= len(verbs) else orjson.dumps({"s": stream, "m": more}).decode()
        return ListResult(items=items, next_last_id=next_state)


def _with_limit(link: str, limit: int) -> str:
    """An LRS's ``more`` link, asking for ``limit`` statements when it names a limit itself."""
    parts = urlsplit(link)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if not any(key == "limit" for key, _ in query):
        return link  # an opaque link: followed as given
    return urlunsplit(parts._replace(query=urlencode([(k, str(limit) if k == "limit" else v) for k, v in query])))
