"""Ids with a ``/`` in them, sent percent-encoded as ``%2F``.

Learner ids are the caller's own, and some are IRIs (``https://idp.example.com/users/42``,
the usual xAPI account name). The ASGI server hands over the path already decoded, so
``/unified/lms/users/https%3A%2F%2Fidp.example.com%2Fusers%2F42/completions`` would route as
if the id were several segments, and match nothing. When the raw path holds an encoded
slash, :func:`protect_encoded_slashes` decodes it segment by segment instead and writes each
slash inside a segment as :data:`SLASH`; the routes' string parameters turn it back into
``/`` (:func:`restore_slashes_in_parameters`), and so does the fast lane.

``SLASH`` is a lone surrogate code point, which no decoded path can hold: the server (and
this module) decode invalid UTF-8 to U+FFFD. So it cannot be mistaken for anything a client
sent, and a NUL sent as ``%00`` still reaches the NUL check and gets its 400.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from fastapi.routing import iter_route_contexts
from starlette.convertors import StringConvertor
from starlette.types import Scope

SLASH = "\ud800"


def protect_encoded_slashes(scope: Scope) -> None:
    """Rewrite ``scope["path"]`` when the raw path holds ``%2F`` (see the module docstring)."""
    raw = scope.get("raw_path")
    if not raw or b"%2" not in raw or (b"%2f" not in raw and b"%2F" not in raw):
        return
    if b"?" in raw:  # a query string in raw_path: not what ASGI servers send
        return
    segments = raw.decode("latin-1").split("/")
    scope["path"] = "/".join(unquote(segment).replace("/", SLASH)  # as uvicorn decodes
                             for segment in segments)


def restore(value: str) -> str:
    """A path parameter with its encoded slashes back as ``/``."""
    return value.replace(SLASH, "/")


def as_sent(path: str) -> str:
    """A decoded path written back as the client sent its special characters, for logs and
    records: an id's own slash as ``%2F``, and a NUL as ``%00`` (PostgreSQL text refuses NUL)."""
    return path.replace(SLASH, "%2F").replace("\x00", "%00")


class _SlashAware(StringConvertor):
    """A ``{name}`` path parameter whose encoded slashes come back as ``/``."""

    def convert(self, value: str) -> str:
        return restore(value)


def restore_slashes_in_parameters(routes: Any) -> None:
    """Give every plain string path parameter of ``routes`` the slash-aware conversion."""
    for context in iter_route_contexts(routes):
        # FastAPI matches on the route as included (its prefix added), and keeps the route too
        for owner in (context, context.route, getattr(context, "starlette_route", None)):
            convertors = getattr(owner, "param_convertors", None) or {}
            for name, convertor in list(convertors.items()):
                if type(convertor) is StringConvertor:
                    convertors[name] = _SlashAware()
