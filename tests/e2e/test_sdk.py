"""The Python SDK against a real ``lmsgate serve``: every operation, sync and async, paging,
errors as typed exceptions, and retries on a real 429."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from lmsgate.bootstrap import bootstrap
from lmsgate.client import (
    Accepted,
    AsyncClient,
    BadRequestError,
    Client,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    NotImplementedByProviderError,
    PreconditionFailedError,
    RateLimitedError,
    Retry,
    UnauthorizedError,
    UnprocessableEntityError,
    response_info,
)
from lmsgate.schema import (
    BatchResultApiModel,
    CompletionResult,
    CompletionsPaginated,
    CreateResult,
    DeleteResult,
    LmsCreateCompletionRequestDto,
    LmsUpsertContentRequestDto,
    UpdateResult,
    UpsertResult,
)
from lmsgate.schema.deliveries import DeliveriesPaginated, Delivery, DeliveryResult, RetryDeliveriesResult
from lmsgate.settings import Settings
from support import serving


class Server:
    def __init__(self, base: str, key: str, accounts: dict[str, str]) -> None:
        self.base = base
        self.key = key
        self.accounts = accounts

    def client(self, account: str, **kw: Any) -> Client:
        return Client(self.key, server_url=self.base, account_id=self.accounts[account], **kw)

    def async_client(self, account: str, **kw: Any) -> AsyncClient:
        return AsyncClient(self.key, server_url=self.base, account_id=self.accounts[account], **kw)


def _seed(tmp: Path, *, rate_limit: int) -> tuple[dict[str, str], str, dict[str, str]]:
    """A database with a key and accounts made before the server starts, as an operator would."""
    env = {"LMSGATE_DATABASE_URL": f"sqlite:///{tmp / 'sdk.db'}", "LMSGATE_VAULT_KEY_FILE": str(tmp / "vault.key"),
           "LMSGATE_RATE_LIMIT_PER_MINUTE": str(rate_limit)}
    c = bootstrap(Settings(database_url=env["LMSGATE_DATABASE_URL"], vault_key_file=env["LMSGATE_VAULT_KEY_FILE"]))
    project = c.tenancy.create_project("sdk")
    key = c.tenancy.issue_key(project, "sdk-tests").secret
    accounts = {name: c.tenancy.create_account(project, "local").id
                for name in ("sync", "async", "paging", "errors", "limits", "deliveries", "iri", "dots1", "dots2", "batch")}
    accounts["disabled"] = c.tenancy.create_account(project, "local", status="inactive").id
    accounts["ghost"] = c.tenancy.create_account(project, "ghost-lms").id  # no such connector installed
    c.engine.dispose()
    return env, key, accounts


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("sdk")
    env, key, accounts = _seed(tmp, rate_limit=0)
    with serving(tmp, env) as (base, _):
        yield Server(base, key, accounts)


class _Awaitable:
    """Runs the sync client's operations where the walk awaits them, so one walk checks both."""

    def __init__(self, lms: Any) -> None:
        self._lms = lms

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._lms, name)
        if name.startswith("iter_"):
            async def iterate(*args: Any, **kw: Any) -> AsyncIterator[Any]:
                for item in method(*args, **kw):
                    yield item
            return iterate

        async def call(*args: Any, **kw: Any) -> Any:
            return method(*args, **kw)
        return call


async def walk(lms: Any) -> None:
    """Every operation of the unified LMS API, plus lmsgate's two extensions."""
    tag = secrets.token_hex(3)
    user = f"learner-{tag}"

    # learners (lmsgate extension), read back by id and by filter
    upserted = await lms.upsert_user(user, {"name": "Ada", "email": f"ada-{tag}@example.com",
                                            "external_reference": f"emp-{tag}"})
    assert isinstance(upserted, UpsertResult) and upserted.data.id == user
    assert (await lms.get_user(user)).data.email == f"ada-{tag}@example.com"
    assert [u.id for u in (await lms.list_users(email=f"ada-{tag}@example.com")).data] == [user]
    assert user in [u.id async for u in lms.iter_users(page_size=2)]

    # content, with its categories and skills; batch; partial update
    content = await lms.upsert_content(LmsUpsertContentRequestDto(
        external_reference=f"video-{tag}", title="Intro", duration="PT90M", active=True,
        categories=[{"name": f"Category {tag}"}], skills=[{"name": f"Skill {tag}"}]))
    content_id = content.data.id
    assert content.data.external_reference == f"video-{tag}"
    batch = await lms.batch_upsert_content({"items": [{"external_reference": f"doc-{tag}-1"},
                                                      {"external_reference": f"doc-{tag}-2", "title": "Two"}]})
    assert isinstance(batch, BatchResultApiModel) and batch.errors == [[], []]
    assert isinstance(await lms.update_content(content_id, {"title": "Intro, revised"}), UpdateResult)
    got = (await lms.get_content(content_id)).data
    assert (got.title, got.duration, got.active) == ("Intro, revised", "PT1H30M", True)
    refs = {c.external_reference for c in (await lms.list_content(active=True, page_size=1000)).data}
    assert f"video-{tag}" in refs
    assert {f"doc-{tag}-1", f"doc-{tag}-2"} <= {c.external_reference async for c in lms.iter_content()}

    category = next(c for c in (await lms.list_categories()).data if c.name == f"Category {tag}")
    assert (await lms.get_category(category.id)).data.name == f"Category {tag}"
    assert category.id in [c.id async for c in lms.iter_categories()]
    skill = next(s for s in (await lms.list_skills()).data if s.name == f"Skill {tag}")
    assert (await lms.get_skill(skill.id)).data.name == f"Skill {tag}"
    assert skill.id in [s.id async for s in lms.iter_skills()]

    # courses (the upsert is lmsgate's extension)
    course = await lms.upsert_course({"external_reference": f"course-{tag}", "title": "Course",
                                      "content_external_references": [f"video-{tag}"]})
    assert (await lms.get_course(course.data.id)).data.content_ids == [content_id]
    assert [c.id for c in (await lms.list_courses(external_reference=f"course-{tag}")).data] == [course.data.id]
    assert course.data.id in [c.id async for c in lms.iter_courses()]

    # completions: create (twice: the same record), read back every way, delete
    body = LmsCreateCompletionRequestDto(
        learning_object_external_reference=f"video-{tag}", completed_at=datetime(2024, 3, 1, 9, 30, tzinfo=timezone.utc),
        time_spent="PT90M", result={"value": "Pass"}, score={"percentage": 87.5, "raw_value": "87.5 / 100"})
    created = await lms.create_user_completion(user, body, idempotency_key=f"key-{tag}")
    assert isinstance(created, CreateResult) and created.statusCode == 201
    completion_id = created.data.id
    assert (await lms.create_user_completion(user, body)).data.id == completion_id
    one = await lms.get_completion(completion_id)
    assert isinstance(one, CompletionResult)
    c = one.data
    assert (c.user_id, c.learning_object_id, c.time_spent, c.completed_at) == (
        user, content_id, "PT1H30M", datetime(2024, 3, 1, 9, 30, tzinfo=timezone.utc))
    assert c.learning_object_type.value == "content" and c.result.value == "Pass" and c.score.percentage == 87.5
    assert (await lms.get_user_completion(user, completion_id)).data.id == completion_id
    sparse = await lms.get_completion(completion_id, fields=["id", "time_spent"], raw=True)
    assert sparse.data.time_spent == "PT1H30M" and sparse.data.user_id is None and sparse.raw
    listed = await lms.list_completions(updated_after=datetime(2000, 1, 1, tzinfo=timezone.utc))
    assert isinstance(listed, CompletionsPaginated) and completion_id in [x.id for x in listed.data]
    assert [x.id for x in (await lms.list_user_completions(user)).data] == [completion_id]
    assert [x.id async for x in lms.iter_user_completions(user)] == [completion_id]
    assert completion_id in [x.id async for x in lms.iter_completions()]
    deleted = await lms.delete_user_completion(user, completion_id)
    assert isinstance(deleted, DeleteResult) and deleted.statusCode == 200
    with pytest.raises(NotFoundError):
        await lms.get_completion(completion_id)

    # assignments
    assigned = await lms.create_user_assignment(user, {"learning_object_external_reference": f"course-{tag}",
                                                       "status": {"value": "in_progress"}, "progress": 40})
    assignment_id = assigned.data.id
    a = (await lms.get_assignment(assignment_id)).data
    assert (a.status.value, a.progress, a.learning_object_type.value) == ("in_progress", 40, "course")
    assert (await lms.get_user_assignment(user, assignment_id)).data.id == assignment_id
    by_filter = await lms.list_assignments(status="in_progress", user_id=user)
    assert [x.id for x in by_filter.data] == [assignment_id]
    assert [x.id for x in (await lms.list_assignments(remote_user_id=user)).data] == [assignment_id]
    assert [x.id for x in (await lms.list_user_assignments(user, status="in_progress")).data] == [assignment_id]
    assert (await lms.list_user_assignments(user, status="completed")).data == []
    assert [x.id async for x in lms.iter_assignments(user_id=user)] == [assignment_id]
    assert [x.id async for x in lms.iter_user_assignments(user)] == [assignment_id]


def test_sync_client_walks_every_operation(server: Server) -> None:
    with server.client("sync") as client:
        anyio.run(walk, _Awaitable(client.lms))


def test_async_client_walks_every_operation(server: Server) -> None:
    async def main() -> None:
        async with server.async_client("async") as client:
            await walk(client.lms)

    anyio.run(main)


def test_pagination_follows_next_across_more_than_three_pages(server: Server) -> None:
    seen_pages: list[int] = []

    def record(response: httpx.Response) -> None:
        if response.request.url.path == "/unified/lms/completions":
            response.read()
            seen_pages.append(len(response.json()["data"]))

    with Client(server.key, server_url=server.base, account_id=server.accounts["paging"],
                http_client=httpx.Client(event_hooks={"response": [record]})) as client:
        ids = [client.lms.create_user_completion(f"learner-{i % 3}", {
            "learning_object_external_reference": f"course-{i}", "completed_at": "2024-01-01T00:00:00Z"}).data.id
            for i in range(11)]
        walked = [c.id for c in client.lms.iter_completions(page_size=3)]
        assert walked == sorted(ids) and len(set(walked)) == 11
        assert seen_pages == [3, 3, 3, 2]

        page = client.lms.list_completions(page_size=3)  # one page, then follow next by hand
        pages = [page]
        while page.next:
            page = client.lms.list_completions(page_size=3, next=page.next)
            pages.append(page)
        assert [len(p.data) for p in pages] == [3, 3, 3, 2] and pages[-1].next is None

    async def main() -> list[str]:
        async with server.async_client("paging") as ac:
            return [c.id async for c in ac.lms.iter_completions(page_size=4)]

    assert anyio.run(main) == sorted(ids)


def test_a_learner_id_that_is_an_iri_works_through_a_real_server(server: Server) -> None:
    """The client sends the slashes of an id as %2F; a real uvicorn decodes the path before
    routing, which used to leave such ids unroutable (404)."""
    iri = "https://idp.example.com/users/42?tenant=a b"
    with server.client("iri") as client:
        created = client.lms.create_user_completion(iri, {"learning_object_external_reference": "course-iri"})
        assert [c.user_id for c in client.lms.list_user_completions(iri).data] == [iri]
        assert client.lms.get_user_completion(iri, created.data.id).data.id == created.data.id
        assert client.lms.get_user(iri).data.id == iri
        client.lms.delete_user_completion(iri, created.data.id)
        assert client.lms.list_user_completions(iri).data == []


@pytest.mark.parametrize("learner", [".", ".."])
def test_a_learner_id_of_dots_reaches_that_learner(server: Server, learner: str) -> None:
    """Sent as they are, the dots were resolved away: get_user_completion("..", id) asked
    /unified/lms/completions/{id} and got another learner's completion."""
    with server.client(f"dots{len(learner)}") as client:
        other = client.lms.create_user_completion("someone-else", {"learning_object_external_reference": "theirs"})
        with pytest.raises(NotFoundError):
            client.lms.get_user_completion(learner, other.data.id)
        mine = client.lms.create_user_completion(learner, {"learning_object_external_reference": "mine"})
        assert [c.user_id for c in client.lms.list_user_completions(learner).data] == [learner]
        assert client.lms.get_user_completion(learner, mine.data.id).data.user_id == learner
        assert client.lms.get_user(learner).data.id == learner


def test_a_batch_with_a_bad_item_stores_the_good_ones_and_reports_the_bad(server: Server) -> None:
    """The client validated the whole batch and refused it over one bad item, sending
    nothing; with prefer_async, lmsgate's usual batch answer came back as an Accepted with
    no delivery, its errors lost."""
    with server.client("batch") as client:
        items = [{"external_reference": "bb-good"}, {"external_reference": "bb-bad", "duration": "PTX"}]
        for prefer_async in (False, True):
            result = client.lms.batch_upsert_content({"items": items}, prefer_async=prefer_async)
            assert isinstance(result, BatchResultApiModel), result
            assert result.errors is not None and result.errors[0] == [] and "duration" in result.errors[1][0]
        assert [c.external_reference for c in client.lms.list_content().data] == ["bb-good"]
        with pytest.raises(InvalidRequestError):  # the envelope is still checked before sending
            client.lms.batch_upsert_content({"items": []})


def test_errors_arrive_as_typed_exceptions(server: Server) -> None:
    with server.client("errors", retry=Retry.none()) as client:
        with pytest.raises(NotFoundError) as caught:
            client.lms.get_completion("no-such-completion")
        assert caught.value.status_code == 404 and caught.value.body.statusCode == 404
        assert "no-such-completion" in caught.value.message

        with pytest.raises(BadRequestError, match="page_size"):
            client.lms.list_completions(page_size=0)
        with pytest.raises(BadRequestError, match="cursor") as bad_cursor:
            client.lms.list_completions(next="not-a-cursor")
        assert bad_cursor.value.body.data.message  # the 400 body carries StackOne's data object

        client.lms.upsert_content({"external_reference": "taken"})
        other = client.lms.upsert_content({"external_reference": "mine"}).data.id
        with pytest.raises(ConflictError, match="taken"):
            client.lms.update_content(other, {"external_reference": "taken"})

        with pytest.raises(NotFoundError, match="x-account-id"):
            client.lms.list_users(account_id="no-such-account")
        with pytest.raises(PreconditionFailedError, match="disabled"):
            client.lms.list_users(account_id=server.accounts["disabled"])
        with pytest.raises(NotImplementedByProviderError, match="ghost-lms"):
            client.lms.list_users(account_id=server.accounts["ghost"])

    with Client("lmsg_not-a-key-of-this-server", server_url=server.base, account_id=server.accounts["errors"],
                retry=Retry.none()) as stranger, pytest.raises(UnauthorizedError):
        stranger.lms.list_users()


def test_idempotency_keys_and_asynchronous_writes_pass_through(server: Server) -> None:
    body = {"learning_object_external_reference": "course-async", "completed_at": "2024-05-01T00:00:00Z"}
    with server.client("errors", retry=Retry.none()) as client:
        first = client.lms.create_user_completion("learner-idem", body, idempotency_key="import-line-7")
        replay = client.lms.create_user_completion("learner-idem", body, idempotency_key="import-line-7")
        assert isinstance(first, CreateResult) and replay.data.id == first.data.id
        with pytest.raises(UnprocessableEntityError, match="Idempotency-Key"):
            client.lms.create_user_completion("learner-idem", {**body, "completed_at": "2024-05-02T00:00:00Z"},
                                              idempotency_key="import-line-7")

        queued = client.lms.create_user_completion("learner-async", body, prefer_async=True)
        assert isinstance(queued, Accepted) and queued.status_code == 202
        assert queued.location == f"/deliveries/{queued.body['data']['id']}"

        deadline = time.monotonic() + 30  # the embedded worker delivers it into the store
        while not client.lms.list_user_completions("learner-async").data:
            assert time.monotonic() < deadline, "the queued completion was never delivered"
            time.sleep(0.2)


def _settled(client: Client, delivery: str, timeout: float = 30) -> Delivery:
    """The delivery once the embedded worker has delivered it or given up."""
    deadline = time.monotonic() + timeout
    while True:
        found = client.deliveries.get_delivery(delivery).data
        if found.status in ("delivered", "dead"):
            return found
        assert time.monotonic() < deadline, f"delivery {delivery} still {found.status}"
        time.sleep(0.1)


def test_idempotent_replays_are_told_apart(server: Server) -> None:
    body = {"learning_object_external_reference": "course-replay", "completed_at": "2024-06-01T00:00:00Z"}
    with server.client("deliveries", retry=Retry.none()) as client:
        first = client.lms.create_user_completion("learner-replay", body, idempotency_key='line "8"')
        again = client.lms.create_user_completion("learner-replay", body, idempotency_key='line "8"')
        first_info, again_info = response_info(first), response_info(again)
        assert first_info is not None and again_info is not None
        assert (first_info.replayed, again_info.replayed) == (False, True)
        assert again.data.id == first.data.id and again_info.status_code == 201
        assert response_info(client.lms.create_user_completion("learner-replay", body)).replayed is False

        queued = client.lms.create_user_completion("learner-replay-async", body, prefer_async=True,
                                                   idempotency_key="async-9")
        replayed = client.lms.create_user_completion("learner-replay-async", body, prefer_async=True,
                                                     idempotency_key="async-9")
        assert isinstance(queued, Accepted) and isinstance(replayed, Accepted)
        assert queued.delivery is not None and queued.delivery.operation == "create_user_completion"
        assert not queued.replayed and replayed.replayed and replayed.delivery_id == queued.delivery_id
        assert queued.location == f"/deliveries/{queued.delivery_id}"


def test_deliveries_are_followed_listed_paged_and_retried(server: Server) -> None:
    account = server.accounts["deliveries"]
    with server.client("deliveries", retry=Retry.none()) as client:
        # the embedded LMS answers 404 for a completion it does not have: dead at once
        doomed = [client.lms.delete_user_completion("learner-dlv", f"no-such-{i}", prefer_async=True)
                  for i in range(4)]
        assert all(isinstance(d, Accepted) for d in doomed)
        dead = [_settled(client, d) for d in doomed]  # by Accepted, as returned
        assert {d.status for d in dead} == {"dead"}
        one = client.deliveries.get_delivery(dead[0].id)
        assert isinstance(one, DeliveryResult) and one.data.attempts and one.data.attempts[0].outcome == "dead"
        assert one.data.last_error is not None and one.data.last_error["status"] == 404

        page = client.deliveries.list_deliveries(status="dead", account_id=account, page_size=1)
        assert isinstance(page, DeliveriesPaginated) and len(page.data) == 1 and page.next
        pages: list[str] = []
        hooks = {"request": [lambda request: pages.append(str(request.url))]}
        with Client(server.key, server_url=server.base, http_client=httpx.Client(event_hooks=hooks)) as bare:
            ids = [d.id for d in bare.deliveries.iter_deliveries(status="dead", account_id=account, page_size=1)]
        assert ids == [d.id for d in dead] and len(pages) >= 4  # no account_id on the client: none needed
        assert client.deliveries.list_deliveries(status="dead", account_id=account,
                                                 created_after=datetime(2999, 1, 1, tzinfo=timezone.utc)).data == []

        again = client.deliveries.retry_delivery(dead[0].id)
        assert isinstance(again, DeliveryResult) and again.data.id == dead[0].id
        assert _settled(client, dead[0].id).attempt_count == 2
        bulk = client.deliveries.retry_deliveries(account_id=account)
        assert isinstance(bulk, RetryDeliveriesResult) and bulk.data == {"retried": 4}
        assert client.deliveries.retry_deliveries({"status": "dead", "account_id": "no-such-account"}
                                                  ).data == {"retried": 0}
        with pytest.raises(InvalidRequestError, match="not both"):
            client.deliveries.retry_deliveries({"status": "dead"}, account_id=account)

        delivered = client.lms.create_user_completion(
            "learner-dlv", {"learning_object_external_reference": "course-dlv"}, prefer_async=True)
        assert isinstance(delivered, Accepted) and _settled(client, delivered).status == "delivered"
        assert _settled(client, delivered).result is not None
        with pytest.raises(ConflictError, match="already delivered"):
            client.deliveries.retry_delivery(delivered)
        with pytest.raises(NotFoundError):
            client.deliveries.get_delivery("no-such-delivery")
        with pytest.raises(BadRequestError, match="page_size"):
            client.deliveries.list_deliveries(page_size=5000)

        settings = client.deliveries.update_delivery_settings(account, {"max_attempts": 3})
        assert settings.data.max_attempts == 3 and settings.data.overrides == {"max_attempts": 3}
        assert client.deliveries.get_delivery_settings(account).data.max_attempts == 3
        client.deliveries.update_delivery_settings(account, {"max_attempts": None})

    async def main() -> list[str]:
        async with server.async_client("deliveries") as aclient:
            got = await aclient.deliveries.get_delivery(dead[1].id)
            assert got.data.id == dead[1].id
            return [d.id async for d in aclient.deliveries.iter_deliveries(account_id=account, page_size=2)]

    assert set(anyio.run(main)) >= {d.id for d in dead} | {delivered.delivery_id}


def test_rate_limited_requests_are_retried_after_the_servers_wait(tmp_path: Path) -> None:
    env, key, accounts = _seed(tmp_path, rate_limit=60)  # a bucket of 60, one more per second
    statuses: list[int] = []
    with serving(tmp_path, env) as (base, _):
        with Client(key, server_url=base, account_id=accounts["limits"], retry=Retry.none()) as impatient:
            with pytest.raises(RateLimitedError) as caught:
                for _ in range(61):
                    impatient.lms.list_users(page_size=1)
            assert caught.value.retry_after is not None and caught.value.retry_after >= 1
            assert caught.value.body is not None and caught.value.body.statusCode == 429

        hooks = {"response": [lambda r: statuses.append(r.status_code)]}
        started = time.monotonic()
        with Client(key, server_url=base, account_id=accounts["limits"],
                    http_client=httpx.Client(event_hooks=hooks)) as patient:
            for _ in range(3):
                assert patient.lms.list_users(page_size=1).data == []
        elapsed = time.monotonic() - started
    assert statuses.count(200) == 3 and 429 in statuses  # each refusal was followed by a retry
    assert statuses[-1] == 200
    assert elapsed >= 0.9 * statuses.count(429)  # Retry-After (1 s) was waited each time
