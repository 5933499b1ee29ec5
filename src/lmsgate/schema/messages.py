"""How a body that fails validation is described in an error: one line that names each field
at fault, the same for the API (``400``), the completion fast lane and a bulk import's report.

Kept apart from the API package so that an import's worker processes, which validate with the
same models, need not load the web framework.
"""

from __future__ import annotations

from typing import Any

__all__ = ["describe_validation_errors"]


def _location(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item in ("function-after", "function-before", "function-plain", "function-wrap"):
            continue
        elif isinstance(item, str) and ("[" in item or item.startswith(("function-", "json-or-python"))):
            continue
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "body"


_NOT_AN_OBJECT = frozenset({"model_attributes_type", "model_type", "dict_type"})


def describe_validation_errors(errors: list[dict[str, Any]]) -> str:
    messages = []
    for err in errors[:10]:
        msg = err.get("msg", "invalid")
        if err.get("type") == "json_invalid":
            messages.append(f"body: malformed JSON ({err.get('ctx', {}).get('error', msg)})")
            continue
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        if tuple(err.get("loc", ())) == ("body",) and err.get("type") in _NOT_AN_OBJECT:
            # a body sent as text (text/plain, a form) or a JSON value that is no object: pydantic
            # says "a valid dictionary or object to extract fields from", which says neither
            msg = "must be a JSON object, sent with Content-Type: application/json"
        messages.append(f"{_location(tuple(err.get('loc', ())))}: {msg}")
    more = len(errors) - 10
    if more > 0:
        messages.append(f"and {more} more")
    return "; ".join(dict.fromkeys(messages))
