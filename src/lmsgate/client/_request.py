"""Building requests and reading answers, shared by the sync and async clients. No I/O here.

Wire rules follow the official StackOne SDKs: HTTP Basic auth with the API key as the user
name and an empty password, the linked account in ``x-account-id``, path parameters
percent-encoded whole, ``filter[...]`` and ``proxy[...]`` as deep objects, date-times sent
with a ``Z``. Bodies and answers go through the same pydantic models the server uses.
"""

from __future__ import annotations

import base64
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError

from lmsgate import __version__
from lmsgate.client._exceptions import InvalidRequestError, ResponseValidationError, error_class
from lmsgate.jsontext import dumps
from lmsgate.schema import ERROR_MODELS, BadRequestResponse, ProviderError
from lmsgate.schema.content import (
    MAX_BATCH_ITEMS,
    LmsBatchUpsertContentRequestDto,
    LmsUpsertContentRequestDto,
)
from lmsgate.schema.deliveries import Delivery, DeliveryAccepted
from lmsgate.schema.types import format_datetime

M = TypeVar("M", bound=BaseModel)

USER_AGENT = f"lmsgate-python/{__version__}"
_PROVIDER_ERRORS = TypeAdapter(list[ProviderError])


class Accepted(BaseModel):
    """A write the server took for asynchronous delivery: answered 202, nothing done yet.

    It comes back when the call asked for it (``prefer_async=True``, sent as
    ``Prefer: respond-async``) and also, whatever was asked, when an lmsgate account with
    ``fallback_to_async`` keeps a write its provider failed on.

    ``location`` is where the delivery can be followed (``/deliveries/{id}`` on lmsgate), and
    :attr:`delivery_id` its id for ``client.deliveries.get_delivery(…)``. ``delivery`` is the
    delivery as lmsgate answered it (None from a server whose 202 body has another shape);
    ``body`` is the answer's JSON as sent. ``replayed`` is True when the server answered with
    the stored answer of an earlier request with the same ``Idempotency-Key``
    (``Idempotent-Replayed: true``): no second delivery was made.
    """

    status_code: int
    location: str | None = None
    body: Any = None
    delivery: Delivery | None = None
    replayed: bool = False

    @property
    def delivery_id(self) -> str | None:
        """The delivery's id, from the body or else from the ``Location``; None if neither names it."""
        if self.delivery is not None:
            return self.delivery.id
        if self.location and "/deliveries/" in self.location:
            return self.location.rstrip("/").rsplit("/", 1)[-1] or None
        return None


@dataclass(frozen=True, slots=True)
class ResponseInfo:
    """What the HTTP answer said beside its body (see :func:`response_info`)."""

    status_code: int
    headers: httpx.Headers
    replayed: bool
    """``Idempotent-Replayed: true``: the stored answer to an earlier request with the same
    ``Idempotency-Key``, sent again; the request did nothing this time."""

    @property
    def location(self) -> str | None:
        return self.headers.get("location")


_INFO: dict[int, ResponseInfo] = {}


def _remember(result: Any, response: httpx.Response) -> None:
    key = id(result)
    _INFO[key] = ResponseInfo(response.status_code, response.headers, replayed(response))
    weakref.finalize(result, _INFO.pop, key, None)


def response_info(result: BaseModel) -> ResponseInfo | None:
    """The status, headers and replay flag of the answer ``result`` was read from.

    Works for every model an operation returned (``CreateResult``, ``DeliveryResult``, …) and
    for :class:`Accepted`; None for anything else. For instance, whether a write sent with an
    ``idempotency_key`` was done now or answered from the first request's stored answer::

        created = client.lms.create_user_completion("learner-42", body, idempotency_key="line-7")
        if response_info(created).replayed:
            ...  # the first request did the work; this one changed nothing
    """
    return _INFO.get(id(result))


def replayed(response: httpx.Response) -> bool:
    return response.headers.get("idempotent-replayed", "").strip().lower() == "true"


@dataclass(slots=True)
class Call(Generic[M]):
    """One operation, ready to send."""

    method: str
    path: str
    model: type[M] | None
    """What a success answer is parsed into."""
    params: list[tuple[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None
    empty_ok: bool = False
    """A 204 without body is a success (delete), answered as None."""
    accept_async: bool = False
    """A 202 is a success, answered as :class:`Accepted`."""


def repeatable(call: Call[Any]) -> bool:
    """Whether ``call`` may take effect twice harmlessly, should a broken connection leave it
    unknown whether the server got it (see :class:`~lmsgate.client.Retry`)."""
    headers = {name.lower(): value for name, value in call.headers.items()}
    if "idempotency-key" in headers or call.method == "GET":
        return True
    return call.method != "DELETE" and "respond-async" not in headers.get("prefer", "").lower()


def segment(value: str) -> str:
    """A path parameter, percent-encoded whole (``a b/c`` → ``a%20b%2Fc``). An id that is
    ``.`` or ``..`` has its dots encoded too: as they are, the URL would be resolved to the
    segment above (``/users/../completions/1`` is ``/completions/1``, another learner's)."""
    if not isinstance(value, str) or not value:
        raise InvalidRequestError(f"path parameter: must be a non-empty string, got {value!r}")
    if value in (".", ".."):
        return value.replace(".", "%2E")
    return quote(value, safe="")


def request_of(error: httpx.TransportError) -> httpx.Request | None:
    try:
        return error.request
    except RuntimeError:  # raised by httpx when the error carries no request
        return None


def basic_auth(api_key: str) -> str:
    return "Basic " + base64.b64encode(f"{api_key}:".encode()).decode()


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return format_datetime(value)
    return str(value)


def query(
    *,
    fields: Iterable[str] | str | None = None,
    raw: bool | None = None,
    proxy: Mapping[str, Any] | None = None,
    filter: Mapping[str, Any] | None = None,
    page_size: int | None = None,
    next: str | None = None,
    flat: Mapping[str, Any] | None = None,
) -> list[tuple[str, str]]:
    """Query parameters in the official SDKs' encoding; None values are left out."""
    params: list[tuple[str, str]] = []
    if fields is not None:
        params.append(("fields", fields if isinstance(fields, str) else ",".join(fields)))
    if raw is not None:
        params.append(("raw", _text(raw)))
    for name, value in (filter or {}).items():
        if value is not None:
            params.append((f"filter[{name}]", _text(value)))
    for name, value in (proxy or {}).items():
        if value is not None:
            params.append((f"proxy[{name}]", _text(value)))
    for name, value in (flat or {}).items():
        if value is not None:
            params.append((name, _text(value)))
    if page_size is not None:
        params.append(("page_size", str(page_size)))
    if next is not None:
        params.append(("next", next))
    return params


def body(model: type[M], value: M | Mapping[str, Any]) -> bytes:
    """The JSON of a request body. A mapping is first validated into ``model``, so a bad body
    fails here (:class:`InvalidRequestError`) and is never sent. Only the fields that were
    set go on the wire, as the official SDKs leave out what the caller did not give."""
    if isinstance(value, Mapping):
        try:
            value = model.model_validate(value)
        except ValidationError as exc:
            raise InvalidRequestError(f"{model.__name__}: {_describe(exc)}", list(exc.errors())) from exc
    elif not isinstance(value, model):
        raise InvalidRequestError(f"body: expected {model.__name__} or a dict, got {type(value).__name__}")
    return _json(value.model_dump(mode="json", exclude_unset=True))


def _json(value: Any) -> bytes:
    """JSON bytes, an integer past 64 bits included (the server keeps it)."""
    return dumps(value).encode()


def batch_body(value: LmsBatchUpsertContentRequestDto | Mapping[str, Any]) -> bytes:
    """The JSON of a content batch. Only the envelope is checked here (``items``, 1 to 1,000
    of them): the server stores the valid items and reports each invalid one in ``errors``,
    so an invalid item is sent as given instead of failing the whole call."""
    if isinstance(value, LmsBatchUpsertContentRequestDto):
        return body(LmsBatchUpsertContentRequestDto, value)
    if not isinstance(value, Mapping):
        raise InvalidRequestError(f"body: expected LmsBatchUpsertContentRequestDto or a dict, "
                                  f"got {type(value).__name__}")
    items = value.get("items")
    if not isinstance(items, (list, tuple)) or not 1 <= len(items) <= MAX_BATCH_ITEMS:
        raise InvalidRequestError(f"LmsBatchUpsertContentRequestDto: items: must be a list of 1 to "
                                  f"{MAX_BATCH_ITEMS} items")
    sent: list[Any] = []
    for item in items:
        if isinstance(item, LmsUpsertContentRequestDto):
            sent.append(item.model_dump(mode="json", exclude_unset=True))
            continue
        try:
            sent.append(LmsUpsertContentRequestDto.model_validate(item).model_dump(mode="json", exclude_unset=True))
        except ValidationError:
            sent.append(item)  # the server names what is wrong with it, in errors[i]
    try:
        return _json({"items": sent})
    except TypeError as exc:
        raise InvalidRequestError(f"LmsBatchUpsertContentRequestDto: items: {exc}") from exc


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "body"
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {msg}")
    return "; ".join(parts)


def idempotency_header(key: str) -> str:
    """The ``Idempotency-Key`` value for ``key``: as it is when it is a plain token, else as a
    quoted RFC 8941 string (so keys with quotes or backslashes arrive unchanged). A key no
    server can take (empty, over 255 characters, not printable ASCII) fails before sending."""
    if not isinstance(key, str) or not 1 <= len(key) <= 255 or not all(" " <= ch <= "~" for ch in key):
        raise InvalidRequestError(
            f"idempotency_key: must be 1 to 255 printable ASCII characters, got {key!r}")
    if '"' in key or "\\" in key or key != key.strip():
        return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return key


def headers(api_key: str | None, account_id: str | None, *, json_body: bool = False,
            idempotency_key: str | None = None, prefer_async: bool = False, need_account: bool = True,
            extra: Mapping[str, str] | None = None) -> dict[str, str]:
    if not account_id and need_account:
        raise InvalidRequestError(
            "account_id: name the linked account, on the client (account_id=…) or on the call"
        )
    out = {"Accept": "application/json", "User-Agent": USER_AGENT}
    if account_id:
        out["x-account-id"] = account_id
    if api_key:
        out["Authorization"] = basic_auth(api_key)
    if json_body:
        out["Content-Type"] = "application/json"
    if idempotency_key is not None:
        out["Idempotency-Key"] = idempotency_header(idempotency_key)
    if prefer_async:
        out["Prefer"] = "respond-async"
    if extra:
        out.update(extra)
    return out


def read(response: httpx.Response, call: Call[M]) -> M | Accepted | None:
    """The answer as the call's model; raises the :class:`APIStatusError` of an error status."""
    status = response.status_code
    if not 200 <= status < 300:
        raise status_error(response)
    if status == 202 and call.method != "GET":
        # Asked for (prefer_async), or not: an lmsgate account with fallback_to_async answers
        # 202 with a delivery to a write its provider failed on. Other 202s (StackOne's batch
        # upsert answers 202 as its success) are the call's model, as usual.
        data = _json_or_none(response.content)
        try:
            delivery = DeliveryAccepted.model_validate(data).data if isinstance(data, dict) else None
        except ValidationError:
            delivery = None  # another server's 202: its body stays in ``body``
        location = response.headers.get("location")
        # Asked for, a 202 is Accepted when the server says it queued the write (a delivery or
        # a Location to follow) or when the body is not the call's usual answer; lmsgate's
        # batch upsert, say, answers its usual 202 even when asked, having done the work.
        if delivery is None and location is None and call.accept_async and call.model is not None:
            try:
                result = call.model.model_validate_json(response.content)
            except ValidationError:
                pass  # not the usual answer: an Accepted, below
            else:
                _remember(result, response)
                return result
        if delivery is not None or call.accept_async:
            accepted = Accepted(status_code=status, location=location, body=data,
                                delivery=delivery, replayed=replayed(response))
            _remember(accepted, response)
            return accepted
    if status == 204 and call.empty_ok:
        return None
    if call.model is None:
        return None
    try:
        result = call.model.model_validate_json(response.content)
        _remember(result, response)
        return result
    except ValidationError as exc:
        raise ResponseValidationError(
            f"{call.method} {call.path} answered {status} with a body that is not a {call.model.__name__}: "
            f"{_describe(exc)}",
            status_code=status, body=response.text, errors=list(exc.errors()),
        ) from exc


def _json_or_none(content: bytes) -> Any:
    try:
        return orjson.loads(content) if content.strip() else None
    except orjson.JSONDecodeError:
        return None


def status_error(response: httpx.Response) -> Exception:
    """The typed exception for an error answer, carrying StackOne's error body if it is one."""
    status = response.status_code
    data = _json_or_none(response.content)
    model = ERROR_MODELS.get(status, BadRequestResponse)
    parsed: BaseModel | None = None
    provider_errors: list[ProviderError] = []
    if isinstance(data, dict):
        try:
            parsed = model.model_validate(data)
        except ValidationError:
            parsed = None
        try:
            provider_errors = _PROVIDER_ERRORS.validate_python(data.get("provider_errors") or [])
        except ValidationError:
            provider_errors = []
    message = getattr(parsed, "message", None)
    if not message:
        snippet = response.text.strip()[:200]
        message = f"{response.reason_phrase or 'error'}" + (f": {snippet}" if snippet else "")
    return error_class(status)(message, response=response, body=parsed, provider_errors=provider_errors)
