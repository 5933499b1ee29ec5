"""The unified LMS operations of the synchronous client (``client.lms``).

Generated from ``_lms_async.py`` by ``scripts/unasync.py``: do not edit, edit that file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from pydantic import BaseModel

from lmsgate.client import _request as r
from lmsgate.client._request import Accepted
from lmsgate.client._retry import Retry
from lmsgate.schema import (
    Assignment,
    AssignmentResult,
    AssignmentsPaginated,
    BatchResultApiModel,
    CategoriesPaginated,
    Category,
    CategoryResult,
    Completion,
    CompletionResult,
    CompletionsPaginated,
    Content,
    ContentPaginated,
    ContentResult,
    Course,
    CoursePaginated,
    CourseResult,
    CreateResult,
    DeleteResult,
    LmsBatchUpsertContentRequestDto,
    LmsCreateAssignmentRequestDto,
    LmsCreateCompletionRequestDto,
    LmsCreateContentRequestDto,
    LmsUpsertContentRequestDto,
    LmsUpsertCourseRequestDto,
    LmsUpsertUserRequestDto,
    LmsUser,
    SkillResult,
    Skills,
    SkillsPaginated,
    UpdateResult,
    UpsertResult,
    UserResult,
    UsersPaginated,
)

if TYPE_CHECKING:
    from lmsgate.client._client_sync import Client

M = TypeVar("M", bound=BaseModel)
Item = TypeVar("Item")
Body = Mapping[str, Any]
Fields = Iterable[str] | str
Instant = datetime | str
_LMS = "/unified/lms"


def _merged(filter: Mapping[str, Any] | None, **named: Any) -> dict[str, Any]:
    """``filter={...}`` with the filters given by name on top; a name left out (None) keeps
    the same entry of ``filter``, so ``filter={"email": ...}`` and ``email=...`` both filter."""
    return {**(filter or {}), **{k: v for k, v in named.items() if v is not None}}


class Lms:
    """The operations of StackOne's unified LMS API, named as in the official SDKs
    (``createUserCompletion`` is :meth:`create_user_completion`), plus lmsgate's two
    extensions :meth:`upsert_course` and :meth:`upsert_user`.

    Bodies are the server's own request models (or dicts, validated into them before
    anything is sent); answers are parsed into the server's response models. Error statuses
    raise the exceptions of :mod:`lmsgate.client` (``NotFoundError``, ``RateLimitedError``, …).

    Keyword arguments every operation takes:
        account_id: the linked account, when not the client's.
        retry: a :class:`~lmsgate.client.Retry` for this call only.

    Writes also take:
        idempotency_key: sent as ``Idempotency-Key``: the server answers a repeat with the
            first answer instead of doing the work again (where supported).
        prefer_async: sends ``Prefer: respond-async``. A server that queues the write answers
            202, returned as :class:`~lmsgate.client.Accepted` (its ``delivery_id`` is followed
            with ``client.deliveries``); otherwise the usual result. An lmsgate account with
            ``fallback_to_async`` may answer 202 without being asked, to a write its provider
            failed on: that is an :class:`~lmsgate.client.Accepted` too.

    Whether an answer was a replay of an earlier request with the same key
    (``Idempotent-Replayed: true``), and its status and headers, are in
    :func:`~lmsgate.client.response_info` of the result.

    Reads also take ``fields`` (only these fields come back), ``raw`` (add the provider call
    log) and ``proxy`` (query parameters handed to the provider). Lists take ``page_size``
    (25 by default, at most 1,000 on lmsgate), ``next`` (the cursor of the previous page),
    ``updated_after`` and ``filter`` (further ``filter[name]`` values). Each list has an
    ``iter_…`` twin that follows ``next`` and yields the records of every page.
    """

    def __init__(self, client: Client) -> None:
        self._client = client

    # ------------------------------------------------------------------ plumbing
    def _write(self, method: str, path: str, result: type[M], body_model: type[BaseModel] | None,
                     body: BaseModel | Body | None, account_id: str | None, idempotency_key: str | None,
                     prefer_async: bool, retry: Retry | None, empty_ok: bool = False) -> Any:
        if body_model is LmsBatchUpsertContentRequestDto:
            content = r.batch_body(body)  # type: ignore[arg-type]
        else:
            content = r.body(body_model, body) if body_model is not None and body is not None else None
        call = r.Call(method, path, result, content=content, empty_ok=empty_ok, accept_async=prefer_async,
                      headers=self._client._headers_for(account_id, json_body=content is not None,
                                                        idempotency_key=idempotency_key,
                                                        prefer_async=prefer_async))
        return self._client._send(call, retry)

    def _get(self, path: str, result: type[M], account_id: str | None, retry: Retry | None,
                   **params: Any) -> M:
        call = r.Call("GET", path, result, params=r.query(**params), headers=self._client._headers_for(account_id))
        return self._client._send(call, retry)  # type: ignore[no-any-return]

    def _list(self, path: str, result: type[M], *, updated_after: Instant | None,
                    filter: Mapping[str, Any] | None, flat: Mapping[str, Any] | None = None,
                    account_id: str | None, retry: Retry | None, **params: Any) -> M:
        filters = _merged(filter, updated_after=updated_after)
        return self._get(path, result, account_id, retry, filter=filters, flat=flat, **params)

    @staticmethod
    def _pages(fetch: Callable[[str | None], Any]) -> Iterator[Any]:
        cursor: str | None = None
        while True:
            page = fetch(cursor)
            for item in page.data:
                yield item
            cursor = page.next
            if not cursor or not isinstance(cursor, str):
                return

    # ------------------------------------------------------------------ completions
    @overload
    def create_user_completion(
        self, user_id: str, body: LmsCreateCompletionRequestDto | Body, *, account_id: str | None = ...,
        idempotency_key: str | None = ..., prefer_async: Literal[False] = ..., retry: Retry | None = ...,
    ) -> CreateResult: ...
    @overload
    def create_user_completion(
        self, user_id: str, body: LmsCreateCompletionRequestDto | Body, *, account_id: str | None = ...,
        idempotency_key: str | None = ..., prefer_async: bool, retry: Retry | None = ...,
    ) -> CreateResult | Accepted: ...
    def create_user_completion(
        self, user_id: str, body: LmsCreateCompletionRequestDto | Body, *, account_id: str | None = None,
        idempotency_key: str | None = None, prefer_async: bool = False, retry: Retry | None = None,
    ) -> CreateResult | Accepted:
        """Record that a learner completed a learning object.

        ``POST /unified/lms/users/{user_id}/completions``. Posting the same learner, learning
        object and ``completed_at`` again answers with the first record's id (on lmsgate).
        """
        return self._write("POST", f"{_LMS}/users/{r.segment(user_id)}/completions", CreateResult,
                                 LmsCreateCompletionRequestDto, body, account_id, idempotency_key,
                                 prefer_async, retry)

    def list_completions(
        self, *, updated_after: Instant | None = None, page_size: int | None = None, next: str | None = None,
        fields: Fields | None = None, raw: bool | None = None, proxy: Mapping[str, Any] | None = None,
        filter: Mapping[str, Any] | None = None, account_id: str | None = None, retry: Retry | None = None,
    ) -> CompletionsPaginated:
        """One page of the account's completions (``GET /unified/lms/completions``)."""
        return self._list(f"{_LMS}/completions", CompletionsPaginated, updated_after=updated_after,
                                filter=filter, account_id=account_id, retry=retry, page_size=page_size,
                                next=next, fields=fields, raw=raw, proxy=proxy)

    def iter_completions(
        self, *, updated_after: Instant | None = None, page_size: int | None = None, fields: Fields | None = None,
        proxy: Mapping[str, Any] | None = None, filter: Mapping[str, Any] | None = None,
        account_id: str | None = None, retry: Retry | None = None,
    ) -> Iterator[Completion]:
        """Every completion of the account, page after page (see :meth:`list_completions`)."""
        for item in self._pages(lambda cursor: self.list_completions(
                updated_after=updated_after, page_size=page_size, next=cursor, fields=fields, proxy=proxy,
                filter=filter, account_id=account_id, retry=retry)):
            yield item

    def get_completion(
        self, completion_id: str, *, fields: Fields | None = None, raw: bool | None = None,
        proxy: Mapping[str, Any] | None = None, account_id: str | None = None, retry: Retry | None = None,
    ) -> CompletionResult:
        """One completion (``GET /unified/lms/completions/{completion_id}``)."""
        return self._get(f"{_LMS}/completions/{r.segment(completion_id)}", CompletionResult, account_id,
                               retry, fields=fields, raw=raw, proxy=proxy)

    def list_user_completions(
        self, user_id: str, *, updated_after: Instant | None = None, page_size: int | None = None,
        next: str | None = None, fields: Fields | None = None, raw: bool | None = None,
        proxy: Mapping[str, Any] | None = None, filter: Mapping[str, Any] | None = None,
        account_id: str | None = None, retry: Retry | None = None,
    ) -> CompletionsPaginated:
        """One page of a learner's completions (``GET /unified/lms/users/{user_id}/completions``)."""
        return self._list(f"{_LMS}/users/{r.segment(user_id)}/completions", CompletionsPaginated,
                                updated_after=updated_after, filter=filter, account_id=account_id, retry=retry,
                                page_size=page_size, next=next, fields=fields, raw=raw, proxy=proxy)

    def iter_user_completions(
        self, user_id: str, *, updated_after: Instant | None = None, page_size: int | None = None,
        fields: Fields | None = None, proxy: Mapping[str, Any] | None = None,
        filter: Mapping[str, Any] | None = None, account_id: str | None = None,
        retry: Retry | None = None,
    ) -> Iterator[Completion]:
        """Every completion of a learner, page after page (see :meth:`list_user_completions`)."""
        for item in self._pages(lambda cursor: self.list_user_completions(
                user_id, updated_after=updated_after, page_size=page_size, next=cursor, fields=fields,
                proxy=proxy, filter=filter, account_id=account_id, retry=retry)):
            yield item

    def get_user_completion(
        self, user_id: str, completion_id: str, *, fields: Fields | None = None, raw: bool | None = None,
        proxy: Mapping[str, Any] | None = None, account_id: str | None = None, retry: Retry | None = None,
    ) -> CompletionResult:
        """One of a learner's completions (``GET /unified/lms/users/{user_id}/completions/{completion_id}``)."""
        return self._get(f"{_LMS}/users/{r.segment(user_id)}/completions/{r.segment(completion_id)}",
                               CompletionResult, account_id, retry, fields=fields, raw=raw, proxy=proxy)

    @overload
    def delete_user_completion(
        self, user_id: str, completion_id: str, *, account_id: str | None = ...,
        idempotency_key: str | None = ..., prefer_async: Literal[False] = ..., retry: Retry | None = ...,
    ) -> DeleteResult | None: ...
    @overload
    def delete_user_completion(
        self, user_id: str, completion_id: str, *, account_id: str | None = ...,
        idempotency_key: str | None = ..., prefer_async: bool, retry: Retry | None = ...,
    ) -> DeleteResult | Accepted | None: ...
    def delete_user_completion(
        self, user_id: str, completion_id: str, *, account_id: str | None = None,
        idempotency_key: str | None = None, prefer_async: bool = False, retry: Retry | None = None,
    ) -> DeleteResult | Accepted | None:
        """Delete one of a learner's completions. None when the server answers 204 (no body).

        ``DELETE /unified/lms/users/{user_id}/completions/{completion_id}``.
        """
        return self._write("DELETE", f"{_LMS}/users/{r.segment(user_id)}/completions/{r.segment(completion_id)}",
                                 DeleteResult, None, None, account_id, idempotency_key, prefer_async, retry,
                                 empty_ok=True)

    # ------------------------------------------------------------------ assignments
    @overload
    def create_user_assignment(
        self, user_id: str, body: LmsCreateAssignmentRequestDto | Body, *, account_id: str | None = ...,
        idempotency_key: str | None = ..., prefer_async: Literal[False] = ..., retry: Retry | None = ...,
    ) -> CreateResult: ...
    @overload
    def create_user_assignment(
        self, user_id: str, body: LmsCreateAssignmentRequestDto | Body, *, account_id: str | None = ...,
        idempotency_key: str | None = ..., prefer_async: bool, retry: Retry | None = ...,
    ) -> CreateResult | Accepted: ...
    def create_user_assignment(
        self, user_id: str, body: LmsCreateAssignmentRequestDto | Body, *, account_id: str | None = None,
        idempotency_key: str | None = None, prefer_async: bool = False, retry: Retry | None = None,
    ) -> CreateResult | Accepted:
        """Assign a learning object to a learner (``POST /unified/lms/users/{user_id}/assignments``)."""
        return self._write("POST", f"{_LMS}/users/{r.segment(user_id)}/assignments", CreateResult,
                                 LmsCreateAssignmentRequestDto, body, account_id, idempotency_key,
                                 prefer_async, retry)

    def list_assignments(
        self, *, status: str | None = None, user_id: str | None = None, remote_user_id: str | None = None,
        updated_after: Instant | None = None, page_size: int | None = None, next: str | None = None,
        fields: Fields | None = None, raw: bool | None = None, proxy: Mapping[str, Any] | None = None,
        filter: Mapping[str, Any] | None = None, account_id: str | None = None, retry: Retry | None = None,
    ) -> AssignmentsPaginated:
        """One page of the account's assignments (``GET /unified/lms/assignments``).

        ``status`` is one of ``pending``, ``in_progress``, ``completed``, ``unmapped_value``.
        """
        return self._list(f"{_LMS}/assignments", AssignmentsPaginated, updated_after=updated_after,
                                filter=_merged(filter, status=status),
                                flat={"user_id": user_id, "remote_user_id": remote_user_id},
                                account_id=account_id, retry=retry, page_size=page_size, next=next,
                                fields=fields, raw=raw, proxy=proxy)

    def iter_assignments(
        self, *, status: str | None = None, user_id: str | None = None, remote_user_id: str | None = None,
        updated_after: Instant | None = None, page_size: int | None = None, fields: Fields | None = None,
        proxy: Mapping[str, Any] | None = None, filter: Mapping[str, Any] | None = None,
        account_id: str | None = None, retry: Retry | None = None,
    ) -> Iterator[Assignment]:
        """Every assignment of the account, page after page (see :meth:`list_assignments`)."""
        for item in self._pages(lambda cursor: self.list_assignments(
                status=status, user_id=user_id, remote_user_id=remote_user_id, updated_after=updated_after,
                page_size=page_size, next=cursor, fields=fields, proxy=proxy, filter=filter,
                account_id=account_id, retry=retry)):
            yield item

    def get_assignment(
        self, assignment_id: str, *, fields: Fields | None = None, raw: bool | None = None,
        proxy: Mapping[str, Any] | None = None, account_id: str | None = None, retry: Retry | None = None,
    ) -> AssignmentResult:
        """One assignment (``GET /unified/lms/assignments/{assignment_id}``)."""
        return self._get(f"{_LMS}/assignments/{r.segment(assignment_id)}", AssignmentResult, account_id,
                               retry, fields=fields, raw=raw, proxy=proxy)

    def list_user_assignments(
        self, user_id: str, *, status: str | None = None, updated_after: Instant | None = None,
        page_size: int | None = None, next: str | None = None, fields: Fields | None = None,
        raw: bool | None = None, proxy: Mapping[str, Any] | None = None,
        filter: Mapping[str, Any] | None = None, account_id: str | None = None,
        retry: Retry | None = None,
    ) -> AssignmentsPaginated:
        """One page of a learner's assignments (``GET /unified/lms/users/{user_id}/assignments``)."""
        return self._list(f"{_LMS}/users/{r.segment(user_id)}/assignments", AssignmentsPaginated,
                                updated_after=updated_after, filter=_merged(filter, status=status),
                                account_id=account_id, retry=retry, page_size=page_size, next=next,
                                fields=fields, raw=raw, proxy=proxy)

    def iter_user_assignments(
        self, user_id: str, *, status: str | None = None, updated_after: Instant | None = None,
        page_size: int | None = None, fields: Fields | None = None, proxy: Mapping[str, Any] | None = None,
        filter: Mapping[str, Any] | None = None, account_id: str | None = None,
        retry: Retry | None = None,
    ) -> Iterator[Assignment]:
        """Every assignment of a learner, page after page (see :meth:`list_user_assignments`)."""
        for item in self._pages(lambda cursor: self.list_user_assignments(
                user_id, status=status, updated_after=updated_after, page_size=page_size, next=cursor,
                fields=fields, proxy=proxy, filter=filter, account_id=account_id, retry=retry)):
            yield item

    def get_user_assignment(
        self, user_id: str, assignment_id: str, *, fields: Fields | None = None, raw: bool | None = None,
        proxy: Mapping[str, Any] | None = None, account_id: str | None = None, retry: Retry | None = None,
    ) -> AssignmentResult:
        """One of a learner's assignments (``GET /unified/lms/users/{user_id}/assignments/{assignment_id}``)."""
        return self._get(f"{_LMS}/users/{r.segment(user_id)}/assignments/{r.segment(assignment_id)}",
                               AssignmentResult, account_id, retry, fields=fields, raw=raw, proxy=proxy)

    # ------------------------------------------------------------------ content
    @overload
    def upsert_content(
        self, body: LmsUpsertContentRequestDto | Body, *, account_id: str | None = ...,
        idempotency_key: str | None = ..., prefer_async: Literal[False] = ..., retry: Retry | None = ...,
    ) -> UpsertResult: ...
    @overload
    def upsert_content(
        self, body: LmsUpsertContentRequestDto | Body, *, account_id: str | None = ...,
        idempotency_key: str | None = ..., prefer_async: bool, retry: Retry | None = ...,
    ) -> UpsertResult | Accepted: ...
    def upsert_content(
        self, body: LmsUpsertContentRequestDto | Body, *, account_id: str | None = None,
        idempotency_key: str | None = None, prefer_async: bool = False, retry: Retry | None = None,
    ) -> UpsertResult | Accepted:
        """Create content, or replace the content with the same ``external_reference``.

        ``PUT /unified/lms/content``. Fields left out are cleared: send the whole record.
        """
        return self._write("PUT", f"{_LMS}/content", UpsertResult, LmsUpsertContentRequestDto, body,
                                 account_id, idempotency_key, prefer_async, retry)

    @overload
    def batch_upsert_content(
        self, body: LmsBatchUpsertContentRequestDto | Body, *, account_id: str | None = ...,
        idempotency_key: str | None = ..., prefer_async: Literal[False] = ..., retry: Retry | None = ...,
    ) -> BatchResultApiModel: ...
    @overload
    def batch_upsert_content(
        self, body: LmsBatchUpsertContentRequestDto | Body, *, account_id: str | None = ...,
        idempotency_key: str | None = ..., prefer_async: bool, retry: Retry | None = ...,
    ) -> BatchResultApiModel | Accepted: ...
    def batch_upsert_content(
        self, body: LmsBatchUpsertContentRequestDto | Body, *, account_id: str | None = None,
        idempotency_key: str | None = None, prefer_async: bool = False, retry: Retry | None = None,
    ) -> BatchResultApiModel | Accepted:
        """Upsert up to 1,000 contents: ``{"items": [...]}`` (``POST /unified/lms/content/batch``).

        The server answers 202; on lmsgate ``errors[i]`` lists the problems of item ``i``
        (empty when it was stored), and the valid items are stored even when others are not.
        """
        return self._write("POST", f"{_LMS}/content/batch", BatchResultApiModel,
                                 LmsBatchUpsertContentRequestDto, body, account_id, idempotency_key,
                                 prefer_async, retry)

    @overload
    def update_content(
        self, content_id: str, body: LmsCreateContentRequestDto | Body, *, account_id: str | None = ...,
        idempotency_key: str | None = ..., prefer_async: Literal[False] = ..., retry: Retry | None = ...,
    ) -> UpdateResult: ...
    @overload
    def update_content(
        self, content_id: str, body: LmsCreateContentRequestDto | Body, *, account_id: str | None = ...,
        idempotency_key: str | None = ..., prefer_async: bool, retry: Retry | None = ...,
    ) -> UpdateResult | Accepted: ...
    def update_content(
        self, content_id: str, body: LmsCreateContentRequestDto | Body, *, account_id: str | None = None,
        idempotency_key: str | None = None, prefer_async: bool = False, retry: Retry | None = None,
    ) -> UpdateResult | Accepted:
        """Change only the fields sent (``PATCH /unified/lms/content/{content_id}``).

        The operation of SDK 4.28.0 (``updateContent``); later StackOne SDKs dropped it.
        """
        return self._write("PATCH", f"{_LMS}/content/{r.segment(content_id)}", UpdateResult,
                                 LmsCreateContentRequestDto, body, account_id, idempotency_key, prefer_async,
                                 retry)

    def get_content(
        self, content_id: str, *, fields: Fields | None = None, raw: bool | None = None,
        proxy: Mapping[str, Any] | None = None, account_id: str | None = None, retry: Retry | None = None,
    ) -> ContentResult:
        """One content (``GET /unified/lms/content/{content_id}``)."""
        return self._get(f"{_LMS}/content/{r.segment(content_id)}", ContentResult, account_id, retry,
                               fields=fields, raw=raw, proxy=proxy)

    def list_content(
        self, *, active: bool | None = None, updated_after: Instant | None = None, page_size: int | None = None,
        next: str | None = None, fields: Fields | None = None, raw: bool | None = None,
        proxy: Mapping[str, Any] | None = None, filter: Mapping[str, Any] | None = None,
        account_id: str | None = None, retry: Retry | None = None,
    ) -> ContentPaginated:
        """One page of the account's content (``GET /unified/lms/content``); ``active=True``
        keeps only active content."""
        return self._list(f"{_LMS}/content", ContentPaginated, updated_after=updated_after,
                                filter=_merged(filter, active=active), account_id=account_id, retry=retry,
                                page_size=page_size, next=next, fields=fields, raw=raw, proxy=proxy)

    def iter_content(
        self, *, active: bool | None = None, updated_after: Instant | None = None, page_size: int | None = None,
        fields: Fields | None = None, proxy: Mapping[str, Any] | None = None,
        filter: Mapping[str, Any] | None = None, account_id: str | None = None,
        retry: Retry | None = None,
    ) -> Iterator[Content]:
        """Every content of the account, page after page (see :meth:`list_content`)."""
        for item in self._pages(lambda cursor: self.list_content(
                active=active, updated_after=updated_after, page_size=page_size, next=cursor, fields=fields,
                proxy=proxy, filter=filter, account_id=account_id, retry=retry)):
            yield item

    # ------------------------------------------------------------------ courses
    def get_course(
        self, course_id: str, *, fields: Fields | None = None, raw: bool | None = None,
        proxy: Mapping[str, Any] | None = None, account_id: str | None = None, retry: Retry | None = None,
    ) -> CourseResult:
        """One course (``GET /unified/lms/courses/{course_id}``)."""
        return self._get(f"{_LMS}/courses/{r.segment(course_id)}", CourseResult, account_id, retry,
                               fields=fields, raw=raw, proxy=proxy)

    def list_courses(
        self, *, external_reference: str | None = None, active: bool | None = None,
        updated_after: Instant | None = None, page_size: int | None = None, next: str | None = None,
        fields: Fields | None = None, raw: bool | None = None, proxy: Mapping[str, Any] | None = None,
        filter: Mapping[str, Any] | None = None, account_id: str | None = None, retry: Retry | None = None,
    ) -> CoursePaginated:
        """One page of the account's courses (``GET /unified/lms/courses``)."""
        return self._list(f"{_LMS}/courses", CoursePaginated, updated_after=updated_after,
                                filter=_merged(filter, external_reference=external_reference, active=active),
                                account_id=account_id, retry=retry, page_size=page_size, next=next,
                                fields=fields, raw=raw, proxy=proxy)

    def iter_courses(
        self, *, external_reference: str | None = None, active: bool | None = None,
        updated_after: Instant | None = None, page_size: int | None = None, fields: Fields | None = None,
        proxy: Mapping[str, Any] | None = None, filter: Mapping[str, Any] | None = None,
        account_id: str | None = None, retry: Retry | None = None,
    ) -> Iterator[Course]:
        """Every course of the account, page after page (see :meth:`list_courses`)."""
        for item in self._pages(lambda cursor: self.list_courses(
                external_reference=external_reference, active=active, updated_after=updated_after,
                page_size=page_size, next=cursor, fields=fields, proxy=proxy, filter=filter,
                account_id=account_id, retry=retry)):
            yield item

    @overload
    def upsert_course(
        self, body: LmsUpsertCourseRequestDto | Body, *, account_id: str | None = ...,
        idempotency_key: str | None = ..., prefer_async: Literal[False] = ..., retry: Retry | None = ...,
    ) -> UpsertResult: ...
    @overload
    def upsert_course(
        self, body: LmsUpsertCourseRequestDto | Body, *, account_id: str | None = ...,
        idempotency_key: str | None = ..., prefer_async: bool, retry: Retry | None = ...,
    ) -> UpsertResult | Accepted: ...
    def upsert_course(
        self, body: LmsUpsertCourseRequestDto | Body, *, account_id: str | None = None,
        idempotency_key: str | None = None, prefer_async: bool = False, retry: Retry | None = None,
    ) -> UpsertResult | Accepted:
        """Create or replace a course by ``external_reference`` (``PUT /unified/lms/courses``).

        lmsgate's extension, for its embedded LMS; StackOne has no such operation, and other
        providers answer 501 (:class:`~lmsgate.client.NotImplementedByProviderError`).
        """
        return self._write("PUT", f"{_LMS}/courses", UpsertResult, LmsUpsertCourseRequestDto, body,
                                 account_id, idempotency_key, prefer_async, retry)

    # ------------------------------------------------------------------ users
    def get_user(
        self, user_id: str, *, fields: Fields | None = None, raw: bool | None = None,
        proxy: Mapping[str, Any] | None = None, account_id: str | None = None, retry: Retry | None = None,
    ) -> UserResult:
        """One learner (``GET /unified/lms/users/{user_id}``)."""
        return self._get(f"{_LMS}/users/{r.segment(user_id)}", UserResult, account_id, retry,
                               fields=fields, raw=raw, proxy=proxy)

    def list_users(
        self, *, email: str | None = None, external_reference: str | None = None,
        updated_after: Instant | None = None, page_size: int | None = None, next: str | None = None,
        fields: Fields | None = None, raw: bool | None = None, proxy: Mapping[str, Any] | None = None,
        filter: Mapping[str, Any] | None = None, account_id: str | None = None, retry: Retry | None = None,
    ) -> UsersPaginated:
        """One page of the account's learners (``GET /unified/lms/users``)."""
        return self._list(f"{_LMS}/users", UsersPaginated, updated_after=updated_after,
                                filter=_merged(filter, email=email, external_reference=external_reference),
                                account_id=account_id, retry=retry, page_size=page_size, next=next,
                                fields=fields, raw=raw, proxy=proxy)

    def iter_users(
        self, *, email: str | None = None, external_reference: str | None = None,
        updated_after: Instant | None = None, page_size: int | None = None, fields: Fields | None = None,
        proxy: Mapping[str, Any] | None = None, filter: Mapping[str, Any] | None = None,
        account_id: str | None = None, retry: Retry | None = None,
    ) -> Iterator[LmsUser]:
        """Every learner of the account, page after page (see :meth:`list_users`)."""
        for item in self._pages(lambda cursor: self.list_users(
                email=email, external_reference=external_reference, updated_after=updated_after,
                page_size=page_size, next=cursor, fields=fields, proxy=proxy, filter=filter,
                account_id=account_id, retry=retry)):
            yield item

    @overload
    def upsert_user(
        self, user_id: str, body: LmsUpsertUserRequestDto | Body, *, account_id: str | None = ...,
        idempotency_key: str | None = ..., prefer_async: Literal[False] = ..., retry: Retry | None = ...,
    ) -> UpsertResult: ...
    @overload
    def upsert_user(
        self, user_id: str, body: LmsUpsertUserRequestDto | Body, *, account_id: str | None = ...,
        idempotency_key: str | None = ..., prefer_async: bool, retry: Retry | None = ...,
    ) -> UpsertResult | Accepted: ...
    def upsert_user(
        self, user_id: str, body: LmsUpsertUserRequestDto | Body, *, account_id: str | None = None,
        idempotency_key: str | None = None, prefer_async: bool = False, retry: Retry | None = None,
    ) -> UpsertResult | Accepted:
        """Create or update a learner (``PUT /unified/lms/users/{user_id}``).

        lmsgate's extension, for its embedded LMS; StackOne has no user write, and other
        providers answer 501 (:class:`~lmsgate.client.NotImplementedByProviderError`).
        """
        return self._write("PUT", f"{_LMS}/users/{r.segment(user_id)}", UpsertResult,
                                 LmsUpsertUserRequestDto, body, account_id, idempotency_key, prefer_async, retry)

    # ------------------------------------------------------------------ categories and skills
    def get_category(
        self, category_id: str, *, fields: Fields | None = None, raw: bool | None = None,
        proxy: Mapping[str, Any] | None = None, account_id: str | None = None, retry: Retry | None = None,
    ) -> CategoryResult:
        """One category (``GET /unified/lms/categories/{category_id}``)."""
        return self._get(f"{_LMS}/categories/{r.segment(category_id)}", CategoryResult, account_id, retry,
                               fields=fields, raw=raw, proxy=proxy)

    def list_categories(
        self, *, updated_after: Instant | None = None, page_size: int | None = None, next: str | None = None,
        fields: Fields | None = None, raw: bool | None = None, proxy: Mapping[str, Any] | None = None,
        filter: Mapping[str, Any] | None = None, account_id: str | None = None, retry: Retry | None = None,
    ) -> CategoriesPaginated:
        """One page of the account's categories (``GET /unified/lms/categories``)."""
        return self._list(f"{_LMS}/categories", CategoriesPaginated, updated_after=updated_after,
                                filter=filter, account_id=account_id, retry=retry, page_size=page_size,
                                next=next, fields=fields, raw=raw, proxy=proxy)

    def iter_categories(
        self, *, updated_after: Instant | None = None, page_size: int | None = None, fields: Fields | None = None,
        proxy: Mapping[str, Any] | None = None, filter: Mapping[str, Any] | None = None,
        account_id: str | None = None, retry: Retry | None = None,
    ) -> Iterator[Category]:
        """Every category of the account, page after page (see :meth:`list_categories`)."""
        for item in self._pages(lambda cursor: self.list_categories(
                updated_after=updated_after, page_size=page_size, next=cursor, fields=fields, proxy=proxy,
                filter=filter, account_id=account_id, retry=retry)):
            yield item

    def get_skill(
        self, skill_id: str, *, fields: Fields | None = None, raw: bool | None = None,
        proxy: Mapping[str, Any] | None = None, account_id: str | None = None, retry: Retry | None = None,
    ) -> SkillResult:
        """One skill (``GET /unified/lms/skills/{skill_id}``)."""
        return self._get(f"{_LMS}/skills/{r.segment(skill_id)}", SkillResult, account_id, retry,
                               fields=fields, raw=raw, proxy=proxy)

    def list_skills(
        self, *, updated_after: Instant | None = None, page_size: int | None = None, next: str | None = None,
        fields: Fields | None = None, raw: bool | None = None, proxy: Mapping[str, Any] | None = None,
        filter: Mapping[str, Any] | None = None, account_id: str | None = None, retry: Retry | None = None,
    ) -> SkillsPaginated:
        """One page of the account's skills (``GET /unified/lms/skills``)."""
        return self._list(f"{_LMS}/skills", SkillsPaginated, updated_after=updated_after, filter=filter,
                                account_id=account_id, retry=retry, page_size=page_size, next=next,
                                fields=fields, raw=raw, proxy=proxy)

    def iter_skills(
        self, *, updated_after: Instant | None = None, page_size: int | None = None, fields: Fields | None = None,
        proxy: Mapping[str, Any] | None = None, filter: Mapping[str, Any] | None = None,
        account_id: str | None = None, retry: Retry | None = None,
    ) -> Iterator[Skills]:
        """Every skill of the account, page after page (see :meth:`list_skills`)."""
        for item in self._pages(lambda cursor: self.list_skills(
                updated_after=updated_after, page_size=page_size, next=cursor, fields=fields, proxy=proxy,
                filter=filter, account_id=account_id, retry=retry)):
            yield item
