"""Request-scoped dependencies: authentication, the linked account, common parameters."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from fastapi import Request
from starlette.datastructures import QueryParams

from lmsgate.api.observe import note_caller
from lmsgate.api.params import common_params
from lmsgate.api.prefer import RESPOND_ASYNC, prefers
from lmsgate.bootstrap import Container
from lmsgate.connectors.base import CallContext
from lmsgate.errors import BadRequest, Unauthorized
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


def basic_username(header: str | None) -> str | None:
    """The username of an ``Authorization: Basic …`` header value; None when there is no header.

    Raises :class:`~lmsgate.errors.Unauthorized` for another scheme or undecodable credentials.
    """
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        raise Unauthorized("Unauthorized: use HTTP Basic auth with the API key as the username")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, ValueError):  # ValueError: a value with non-ASCII characters; UnicodeDecodeError is one
        raise Unauthorized("Unauthorized: the Basic credentials are not valid base64") from None
    return decoded.partition(":")[0]


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
