"""Request-scoped dependencies: authentication, the linked account, common parameters."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from fastapi import Request
from starlette.datastructures import QueryParams

from lmsgate.api.basic_auth import basic_username
from lmsgate.api.observe import note_caller
from lmsgate.api.params import common_params
from lmsgate.api.prefer import RESPOND_ASYNC, prefers
from lmsgate.bootstrap import Container
from lmsgate.connectors.base import CallContext
from lmsgate.errors import BadRequest
from lmsgate.schema.common import find_nul


_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(slots=True)
class Call:
    """Everything a route needs about the caller: the context and the sparse fieldset."""

    ctx: CallContext
    fields: list[str] | None
    container: Container


def container(request: Request) -> Container:
    return request.app.state.container


def api_key_from(request: Request) -> str | None:
    """The API key is the username of HTTP Basic auth; the password is ignored (StackOne sends "")."""
    return basic_username(request.headers.get("authorization"))


async def project_id(request: Request) -> str:
    # async: FastAPI runs a plain ``def`` dependency in a worker thread, a hop per request
    # (and a turn on the interpreter lock) for work that only reads caches.
    c = container(request)
    project = c.resolver.project_for_key(api_key_from(request))
    note_caller(project)
    return project


def _refuse_nul(items: Iterable[tuple[str, str]]) -> None:
    for name, value in items:
        if find_nul(value) or "\x00" in name:
            raise BadRequest(f"{name}: NUL characters are not allowed")


async def lms_call(request: Request) -> Call:
    respond_async = request.method in _WRITES and prefers(request.headers.getlist("prefer"), RESPOND_ASYNC)
    return make_call(container(request), request.headers.get("authorization"), request.headers.get("x-account-id"),
                     request.path_params, request.query_params, respond_async=respond_async)


def make_call(c: Container, authorization: str | None, account_id: str | None, path_params: Mapping[str, str],
              query: QueryParams, *, respond_async: bool = False) -> Call:
    """The caller's project and linked account, checked, with the common query parameters
    (``raw``, ``proxy``, ``fields``). Shared by the routes and the fast lane."""
    project = c.resolver.project_for_key(basic_username(authorization))
    note_caller(project)
    account = c.resolver.account(project, account_id)
    note_caller(project, account)
    _refuse_nul([*path_params.items(), *query.multi_items()])
    common = common_params(query)
    return Call(
        ctx=CallContext(account=account, want_raw=common.raw, proxy=common.proxy, respond_async=respond_async),
        fields=common.fields,
        container=c,
    )
