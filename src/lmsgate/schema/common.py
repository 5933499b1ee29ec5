"""Building blocks shared by every resource: base models, open enums, envelopes and errors.

Class names are the component names of StackOne's OpenAPI document, so lmsgate's own
``/openapi.json`` lines up with it name for name. Descriptions are lmsgate's own.

Open enums
    StackOne wraps provider enums as ``{value, source_value}``. ``value`` is *open*: the
    known members are listed, but any other string is kept as given (the official SDK
    accepts it too). When a caller sends an unknown ``value`` without a ``source_value``,
    lmsgate copies the original into ``source_value`` (see :func:`open_enum_normalised`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, ClassVar, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, WithJsonSchema, model_validator

from lmsgate.schema.languages import LANGUAGE_CODES
from lmsgate.schema.types import UtcDateTime

SOURCE_VALUE_SCHEMA = {
    "oneOf": [
        {"type": "string"},
        {"type": "number"},
        {"type": "boolean"},
        {"type": "object"},
        {"type": "array", "items": {}},
    ],
    "description": "The value as the provider (or the caller) gave it, before mapping.",
}
SourceValue = Annotated[Any, WithJsonSchema(SOURCE_VALUE_SCHEMA)]
BoolLike = Annotated[
    bool | Literal["true", "false"] | None,
    WithJsonSchema({"anyOf": [
        {"oneOf": [{"type": "boolean"}, {"type": "string", "enum": ["true", "false"]}]},
        {"type": "null"},
    ]}),
]
"""A boolean, or its string form as some providers send it; null when unknown."""
FreeForm = dict[str, Any]


def find_nul(value: Any, path: str = "") -> str | None:
    """The path of the first string (or key) holding a NUL character, if any.

    PostgreSQL cannot store NUL in text, and no LMS field needs it, so it is refused
    everywhere instead of failing at the database.
    """
    if not path:
        # Almost no body holds a NUL: one serialisation in C proves that at once. JSON writes
        # NUL as \u0000, so its absence from the output is proof; its presence (or a value
        # JSON cannot hold) means the walk below decides.
        try:
            if b"\\u0000" not in orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS):
                return None
        except (orjson.JSONEncodeError, TypeError):
            pass
    if isinstance(value, str):
        return (path or "<value>") if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            sub = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and "\x00" in key:
                return sub
            found = find_nul(item, sub)
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = find_nul(item, f"{path}[{i}]")
            if found:
                return found
    return None


MAX_JSON_DEPTH = 64
"""The deepest a request body may nest objects and arrays (the body itself is level 1).
Deeper values could not be stored (serialisers stop near 255 levels: a 500) and no LMS
field needs them."""


def too_deep(value: Any, limit: int = MAX_JSON_DEPTH) -> str | None:
    """The top-level key under which ``value`` (a request body) nests objects and arrays more
    than ``limit`` levels deep, if any. Walks without recursion, so any depth is safe."""
    if isinstance(value, dict):
        tops: Iterable[tuple[Any, Any]] = value.items()
    elif isinstance(value, list):
        tops = enumerate(value)
    else:
        return None
    for key, item in tops:
        stack = [(item, 2)]
        while stack:
            node, depth = stack.pop()
            if isinstance(node, dict):
                children: Iterable[Any] = node.values()
            elif isinstance(node, list):
                children = node
            else:
                continue
            if depth > limit:
                return str(key)
            stack.extend((child, depth + 1) for child in children)
    return None


def shallow_text(text: str | bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether JSON ``text`` surely nests no deeper than ``limit``: it has no more brackets
    than that (a count in C; the walk of :func:`too_deep` is for the rare text that does)."""
    if isinstance(text, bytes):
        return text.count(b"{") + text.count(b"[") <= limit
    return text.count("{") + text.count("[") <= limit


def too_deep_message(key: str | None) -> str:
    return f"{key or 'body'}: nested more than {MAX_JSON_DEPTH} levels of objects and arrays deep"


NUL_FREE: dict[str, Any] = {"nul_free": True}
"""Validation context (``model_validate(data, context=NUL_FREE)``) from a caller that has
seen the whole text the data was read from, and found no NUL in it (as ``\\u0000`` either,
for JSON) and no more brackets than :data:`MAX_JSON_DEPTH` (:func:`shallow_text`): both
checks below are skipped. A bulk import reads each record's text anyway."""


class RequestModel(BaseModel):
    """Base for request bodies: strict JSON types, unknown keys ignored (as the SDK does)."""

    model_config = ConfigDict(strict=True, extra="ignore", populate_by_name=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any, info: ValidationInfo) -> Any:
        if info.context is NUL_FREE:  # the caller saw the text the data came from: no NUL in it
            return data
        deep = too_deep(data)  # first: the NUL walk below recurses
        if deep:
            raise ValueError(too_deep_message(deep))
        where = find_nul(data)
        if where:
            raise ValueError(f"{where}: NUL characters are not allowed")
        return data


class ResponseModel(BaseModel):
    """Base for response bodies. Every field is optional and nullable unless stated.

    Strict too: the same models parse responses in the Python client, and a string where a
    number belongs is as wrong coming back as going in.
    """

    model_config = ConfigDict(strict=True, extra="ignore", populate_by_name=True, allow_inf_nan=False)


def _open_enum_schema(values: tuple[str, ...], description: str) -> dict[str, Any]:
    return {
        "type": "string",
        "enum": [*values, None],
        "nullable": True,
        "x-speakeasy-unknown-values": "allow",
        "description": description,
    }


class _OpenEnum(BaseModel):
    """``{value, source_value}`` with an open ``value``."""

    model_config = ConfigDict(strict=True, extra="ignore", allow_inf_nan=False)
    known: ClassVar[tuple[str, ...]] = ()

    value: str | None = None
    source_value: SourceValue | None = None

    @model_validator(mode="after")
    def _keep_original(self) -> _OpenEnum:
        return open_enum_normalised(self)


def open_enum_normalised(enum: _OpenEnum) -> _OpenEnum:
    """Copy an unknown ``value`` into ``source_value`` when the caller gave none."""
    if enum.value is not None and enum.value not in enum.known and enum.source_value is None:
        enum.source_value = enum.value
    return enum


def open_enum(name: str, values: tuple[str, ...], description: str) -> type[_OpenEnum]:
    """Create a named open-enum model (named so the OpenAPI component matches StackOne's)."""
    value_type = Annotated[str | None, WithJsonSchema(_open_enum_schema(values, description))]
    cls = type(
        name,
        (_OpenEnum,),
        {
            "__annotations__": {"value": value_type},
            "value": None,
            "known": values,
            "__doc__": description,
            "__module__": __name__,
        },
    )
    return cls


ResultStatusEnum = open_enum(
    "ResultStatusEnum", ("Pass", "Fail", "unmapped_value"), "Outcome of the learning record."
)
AssignmentStatusEnum = open_enum(
    "AssignmentStatusEnum",
    ("pending", "in_progress", "completed", "unmapped_value"),
    "Where the learner stands on an assigned learning object.",
)
LearningObjectTypeEnum = open_enum(
    "LearningObjectTypeEnum",
    ("content", "course", "collection", "unmapped_value"),
    "The kind of learning object a record refers to.",
)
ContentTypeEnum = open_enum(
    "ContentTypeEnum",
    ("video", "quiz", "document", "audio", "article", "unmapped_value"),
    "The media kind of a piece of content.",
)
WriteContentTypeEnum = open_enum(
    "WriteContentTypeEnum",
    (
        "video", "quiz", "document", "audio", "article", "book", "event", "course",
        "collection", "interactive", "unmapped_value",
    ),
    "The media kind of a piece of content being written.",
)
CategoryLevelEnumModel = open_enum(
    "CategoryLevelEnumModel",
    ("primary", "secondary", "tertiary", "unmapped_value"),
    "Rank of a category within its taxonomy.",
)
SkillLevelEnum = open_enum(
    "SkillLevelEnum",
    ("primary", "secondary", "tertiary", "unmapped_value"),
    "Rank of a skill within its taxonomy.",
)
LanguageEnum = open_enum("LanguageEnum", LANGUAGE_CODES, "A locale, such as en_GB.")


class ScoreModel(ResponseModel):
    """A score. ``percentage`` runs from 0 to 100; ``raw_value`` is the provider's text."""

    percentage: float | None = Field(default=None, ge=0, le=100, examples=[87.5])
    raw_value: str | None = Field(default=None, examples=["87 / 100"])


class AuthorModel(ResponseModel):
    id: str | None = None
    name: str | None = None


class LocalizationModel(ResponseModel):
    title: str | None = None
    description: str | None = None
    language: LanguageEnum | None = None
    tags: list[str] | None = None


class AdditionalData(ResponseModel):
    id: str | None = None
    remote_id: str | None = None
    value: str | list[str] | None = None


# ---------------------------------------------------------------- raw provider log


class RawResponse(ResponseModel):
    """One provider call made to answer the request, returned when ``raw=true``."""

    method: str
    url: str
    body: str | dict[str, Any] | list[int] | None = None
    response: dict[str, Any] | list[Any] | str | None = None


# ---------------------------------------------------------------- write envelopes


class CreateResultDataApiModel(ResponseModel):
    id: str | None = None
    remote_id: str | None = None


class CreateResult(ResponseModel):
    statusCode: float
    message: str
    timestamp: UtcDateTime
    data: CreateResultDataApiModel


class UpsertResultDataExternalReferenceModel(ResponseModel):
    id: str | None = None
    remote_id: str | None = None
    external_reference: str | None = None


class UpsertResult(ResponseModel):
    statusCode: float
    message: str
    timestamp: UtcDateTime
    data: UpsertResultDataExternalReferenceModel


class DeleteResult(ResponseModel):
    statusCode: float
    message: str
    timestamp: UtcDateTime


class UpdateResult(ResponseModel):
    """Answer to ``PATCH /unified/lms/content/{id}`` (SDK 4.28.0's ``updateContent``)."""

    statusCode: float
    message: str
    timestamp: UtcDateTime


class BatchResultApiModel(ResponseModel):
    """Answer to a batch upsert. ``errors[i]`` lists the problems of item ``i`` (empty if none)."""

    statusCode: float | None = None
    message: str | None = None
    timestamp: UtcDateTime | None = None
    errors: list[list[str]] | None = None


# ---------------------------------------------------------------- errors


class UnifiedError(ResponseModel):
    statusCode: float | None = None
    message: str | None = None
    headers: dict[str, Any] | None = None


class ProviderError(ResponseModel):
    """A provider's own error answer, with secrets removed."""

    status: float | None = None
    url: str | None = None
    raw: dict[str, Any] | None = None
    headers: dict[str, Any] | None = None


class _ErrorBody(ResponseModel):
    statusCode: float
    message: str
    timestamp: UtcDateTime


class BadRequestResponse(_ErrorBody):
    data: UnifiedError | None = None
    provider_errors: list[ProviderError] | None = None


ERROR_MODELS: dict[int, type[_ErrorBody]] = {400: BadRequestResponse}
for _status, _name in {
    401: "UnauthorizedResponse",
    403: "ForbiddenResponse",
    404: "NotFoundResponse",
    408: "RequestTimedOutResponse",
    409: "ConflictResponse",
    412: "PreconditionFailedResponse",
    413: "PayloadTooLargeResponse",
    414: "UriTooLongResponse",
    422: "UnprocessableEntityResponse",
    429: "TooManyRequestsResponse",
    431: "RequestHeaderFieldsTooLargeResponse",
    500: "InternalServerErrorResponse",
    501: "NotImplementedResponse",
    502: "BadGatewayResponse",
}.items():
    ERROR_MODELS[_status] = type(_name, (_ErrorBody,), {"__module__": __name__})
