"""Validate lmsgate's answers against StackOne's response schemas, as strictly as the SDK.

StackOne's document says OpenAPI 3.1 but marks nullability the 3.0 way (``nullable: true``),
which a JSON Schema 2020-12 validator ignores; each such schema is rewritten as
``anyOf: [<schema>, {type: null}]`` first. ``date-time`` is checked the SDK's way: a ``T``
separator and an offset are required.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

CONTRACT = Path(__file__).parent / "contract" / "stackone-lms-contract.json"
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$")

format_checker = FormatChecker(formats=())


@format_checker.checks("date-time")
def _is_date_time(value: object) -> bool:
    return not isinstance(value, str) or bool(_DATE_TIME.match(value))


def _denull(node: Any) -> Any:
    if isinstance(node, list):
        return [_denull(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _denull(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") is True:
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
        return {"anyOf": [out, {"type": "null"}]}
    return out


@cache
def contract() -> dict[str, Any]:
    return json.loads(CONTRACT.read_text())


@cache
def _components() -> dict[str, Any]:
    return _denull(contract()["components"])


def validator_for(schema_name: str) -> Draft202012Validator:
    root = {"$ref": f"#/components/schemas/{schema_name}", "components": _components()}
    return Draft202012Validator(root, format_checker=format_checker)


def response_schema(path: str, method: str, status: int) -> str:
    """The component name of the documented response body for an operation and status."""
    responses = contract()["paths"][path][method.lower()]["responses"]
    ref = responses[str(status)]["content"]["application/json"]["schema"]["$ref"]
    return ref.rsplit("/", 1)[-1]


def operations() -> list[tuple[str, str, str]]:
    """(operationId, method, path) for every operation in the contract."""
    return sorted(
        (op["operationId"], method.upper(), path)
        for path, item in contract()["paths"].items()
        for method, op in item.items()
    )


def errors_in(schema_name: str, body: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in validator_for(schema_name).iter_errors(body)]
