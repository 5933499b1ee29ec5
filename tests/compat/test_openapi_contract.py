"""lmsgate's ``/openapi.json`` against StackOne's published Unified LMS spec.

For each of StackOne's 23 operations the test checks that lmsgate has the same path, method
and operationId, the same parameters (name, location, required, and their schemas), the same
request body, and the same success and error responses. Schemas are compared structurally,
property by property, through every ``$ref`` reachable from those places: property names,
JSON types, ``required``, nullability, ``date-time`` formats, enum values and union variants.

The two documents spell the same thing differently, so both are normalised first:

* nullability: StackOne writes ``nullable: true`` (OpenAPI 3.0 style) and puts ``null`` into
  enums; pydantic writes ``anyOf: [X, {"type": "null"}]`` or ``type: [X, "null"]``;
* ``allOf: [{$ref}]`` wrappers (StackOne's way of adding a description to a reference);
* ``$ref`` is resolved, with sibling keys kept; ``const`` counts as a one-value enum.

lmsgate may offer more than StackOne, and the allow-list below says exactly what: operations
whose id starts with ``lmsgate_``, ``lms_update_content`` (kept for SDK 4.28.0), and optional
properties or parameters StackOne does not have. Everything else that differs fails the test,
which prints the differences as a table first.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
STACKONE_SPEC = REPO_ROOT.parent / "shared" / "reference" / "stackone-lms-openapi.json"
KEPT_CONTRACT = REPO_ROOT / "tests" / "contract" / "stackone-lms-contract.json"

ALLOWED_EXTRA_OPERATION_PREFIX = "lmsgate_"
ALLOWED_EXTRA_OPERATIONS = frozenset({"lms_update_content"})
METHODS = ("get", "put", "post", "delete", "patch")

Schema = dict[str, Any]


# ---------------------------------------------------------------- normalising


@dataclass
class Flat:
    """One schema with references, wrappers and nullability resolved."""

    name: str | None
    """The component it came from, when it was a ``$ref``."""
    schema: Schema
    nullable: bool


def flatten(doc: Schema, schema: Schema) -> Flat:
    s = dict(schema)
    name: str | None = None
    nullable = False
    for _ in range(50):
        if "$ref" in s:
            ref = s.pop("$ref")
            name = ref.rsplit("/", 1)[-1]
            s = {**resolve(doc, ref), **s}
            continue
        if isinstance(s.get("allOf"), list) and len(s["allOf"]) == 1:
            inner = s.pop("allOf")[0]
            s = {**inner, **s} if "$ref" not in inner else {**s, **inner}
            continue
        union_key = next((k for k in ("anyOf", "oneOf") if isinstance(s.get(k), list)), None)
        if union_key and any(v == {"type": "null"} for v in s[union_key]):
            rest = [v for v in s.pop(union_key) if v != {"type": "null"}]
            nullable = True
            if len(rest) == 1:
                s = {**s, **rest[0]} if "$ref" in rest[0] else {**rest[0], **s}
            else:
                s[union_key] = rest
            continue
        break
    if s.pop("nullable", False):
        nullable = True
    kind = s.get("type")
    if isinstance(kind, list):
        if "null" in kind:
            nullable = True
        kinds = [k for k in kind if k != "null"]
        s["type"] = kinds[0] if len(kinds) == 1 else kinds
    if "const" in s:
        s["enum"] = [s.pop("const")]
    if isinstance(s.get("enum"), list) and None in s["enum"]:
        nullable = True
        s["enum"] = [v for v in s["enum"] if v is not None]
    if "anyOf" in s and "oneOf" not in s:
        s["oneOf"] = s.pop("anyOf")
    return Flat(name, s, nullable)


def resolve(doc: Schema, ref: str) -> Schema:
    if not ref.startswith("#/"):
        raise AssertionError(f"only local references are supported, got {ref}")
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def type_of(doc: Schema, flat: Flat) -> str:
    """A short signature for matching union variants: the JSON type(s)."""
    s = flat.schema
    if "oneOf" in s:
        return "oneOf(" + ",".join(sorted(type_of(doc, flatten(doc, v)) for v in s["oneOf"])) + ")"
    kind = s.get("type")
    if kind is None and "properties" in s:
        kind = "object"
    if isinstance(kind, list):
        return "|".join(sorted(kind))
    return kind or "any"


def describe(doc: Schema, flat: Flat) -> str:
    text = type_of(doc, flat)
    if flat.schema.get("format") == "date-time":
        text += "(date-time)"
    return text + (" nullable" if flat.nullable else "")


# ---------------------------------------------------------------- comparing


@dataclass
class Report:
    differences: list[tuple[str, str, str, str]] = field(default_factory=list)
    """(where, what, StackOne, lmsgate)."""
    extras: list[tuple[str, str]] = field(default_factory=list)
    """Allowed lmsgate-only additions: (where, what)."""
    compared: set[tuple[str, str]] = field(default_factory=set)

    def differ(self, where: str, what: str, stackone: Any, lmsgate: Any) -> None:
        row = (where, what, str(stackone), str(lmsgate))
        if row not in self.differences:
            self.differences.append(row)

    def extra(self, where: str, what: str) -> None:
        if (where, what) not in self.extras:
            self.extras.append((where, what))


class Comparer:
    def __init__(self, stackone: Schema, lmsgate: Schema) -> None:
        self.st = stackone
        self.lg = lmsgate
        self.report = Report()

    # -- schemas
    def schema(self, where: str, st_schema: Schema, lg_schema: Schema) -> None:
        a, b = flatten(self.st, st_schema), flatten(self.lg, lg_schema)
        if a.name:
            where = a.name
            pair = (a.name, b.name or "")
            if pair in self.report.compared:
                return
            self.report.compared.add(pair)
        if describe(self.st, a) != describe(self.lg, b):
            self.report.differ(where, "type", describe(self.st, a), describe(self.lg, b))
            return
        self._enum(where, a.schema.get("enum"), b.schema.get("enum"))
        if "oneOf" in a.schema:
            self._variants(where, a.schema["oneOf"], b.schema["oneOf"])
        if "items" in a.schema or "items" in b.schema:
            self.schema(f"{where}[]", a.schema.get("items", {}), b.schema.get("items", {}))
        if "properties" in a.schema or "properties" in b.schema:
            self._object(where, a.schema, b.schema)

    def _enum(self, where: str, a: list[Any] | None, b: list[Any] | None) -> None:
        if a is None and b is None:
            return
        if a is None or b is None:
            self.report.differ(where, "enum", a, b)
            return
        missing, extra = sorted(set(a) - set(b), key=str), sorted(set(b) - set(a), key=str)
        if missing or extra:
            self.report.differ(where, "enum values", f"missing in lmsgate: {missing}",
                               f"extra in lmsgate: {extra}")

    def _variants(self, where: str, a: list[Schema], b: list[Schema]) -> None:
        by_type = {type_of(self.lg, flatten(self.lg, v)): v for v in b}
        for variant in a:
            key = type_of(self.st, flatten(self.st, variant))
            if key in by_type:
                self.schema(f"{where}<{key}>", variant, by_type[key])

    def _object(self, where: str, a: Schema, b: Schema) -> None:
        a_props, b_props = a.get("properties", {}), b.get("properties", {})
        a_req, b_req = set(a.get("required", [])), set(b.get("required", []))
        for name, sub in a_props.items():
            if name not in b_props:
                self.report.differ(f"{where}.{name}", "property", "present", "missing")
                continue
            if (name in a_req) != (name in b_req):
                self.report.differ(f"{where}.{name}", "required", name in a_req, name in b_req)
            self.schema(f"{where}.{name}", sub, b_props[name])
        for name in b_props:
            if name in a_props:
                continue
            if name in b_req:
                self.report.differ(f"{where}.{name}", "property", "missing", "present and required")
            else:
                self.report.extra(f"{where}.{name}", "optional property")

    # -- operations
    def operations(self) -> None:
        lg_ops = dict(self._operations(self.lg))
        st_ops = dict(self._operations(self.st))
        for key, st_op in st_ops.items():
            method, path = key
            where = f"{method.upper()} {path}"
            lg_op = lg_ops.get(key)
            if lg_op is None:
                self.report.differ(where, "operation", st_op.get("operationId"), "missing")
                continue
            if st_op.get("operationId") != lg_op.get("operationId"):
                self.report.differ(where, "operationId", st_op.get("operationId"), lg_op.get("operationId"))
            where = st_op.get("operationId", where)
            self._parameters(where, st_op.get("parameters", []), lg_op.get("parameters", []))
            self._body(where, st_op.get("requestBody"), lg_op.get("requestBody"))
            self._responses(where, st_op.get("responses", {}), lg_op.get("responses", {}))
        for key, lg_op in lg_ops.items():
            if key in st_ops:
                continue
            op_id = lg_op.get("operationId", "")
            where = f"{key[0].upper()} {key[1]}"
            if op_id.startswith(ALLOWED_EXTRA_OPERATION_PREFIX) or op_id in ALLOWED_EXTRA_OPERATIONS:
                self.report.extra(where, f"operation {op_id}")
            else:
                self.report.differ(where, "operation", "missing", op_id)

    @staticmethod
    def _operations(doc: Schema) -> Iterator[tuple[tuple[str, str], Schema]]:
        for path, item in doc.get("paths", {}).items():
            for method in METHODS:
                if method in item:
                    yield (method, path), item[method]

    def _parameters(self, where: str, a: list[Schema], b: list[Schema]) -> None:
        def key(p: Schema) -> tuple[str, str]:
            name = p["name"].lower() if p["in"] == "header" else p["name"]
            return p["in"], name

        theirs = {key(self._param(self.st, p)): self._param(self.st, p) for p in a}
        ours = {key(self._param(self.lg, p)): self._param(self.lg, p) for p in b}
        for k, p in theirs.items():
            q = ours.get(k)
            label = f"{where} {k[0]} parameter {p['name']}"
            if q is None:
                self.report.differ(label, "parameter", "present", "missing")
                continue
            if bool(p.get("required")) != bool(q.get("required")):
                self.report.differ(label, "required", bool(p.get("required")), bool(q.get("required")))
            self.schema(label, p.get("schema", {}), q.get("schema", {}))
        for k, q in ours.items():
            if k in theirs:
                continue
            label = f"{where} {k[0]} parameter {q['name']}"
            if q.get("required"):
                self.report.differ(label, "parameter", "missing", "present and required")
            else:
                self.report.extra(label, "optional parameter")

    @staticmethod
    def _param(doc: Schema, p: Schema) -> Schema:
        return resolve(doc, p["$ref"]) if "$ref" in p else p

    def _body(self, where: str, a: Schema | None, b: Schema | None) -> None:
        if a is None and b is None:
            return
        if a is None or b is None:
            self.report.differ(f"{where} request body", "presence", a is not None, b is not None)
            return
        if bool(a.get("required")) != bool(b.get("required")):
            self.report.differ(f"{where} request body", "required", a.get("required"), b.get("required"))
        self._content(f"{where} request body", a.get("content", {}), b.get("content", {}))

    def _content(self, where: str, a: Schema, b: Schema) -> None:
        a_json, b_json = a.get("application/json"), b.get("application/json")
        if a_json is None and b_json is None:
            return
        if a_json is None or b_json is None:
            self.report.differ(where, "application/json content", a_json is not None, b_json is not None)
            return
        self.schema(where, a_json.get("schema", {}), b_json.get("schema", {}))

    def _responses(self, where: str, a: Schema, b: Schema) -> None:
        for status, resp in a.items():
            label = f"{where} response {status}"
            if status not in b:
                self.report.differ(label, "response", "present", "missing")
                continue
            self._content(label, resp.get("content", {}), b[status].get("content", {}))
        for status in b:
            if status not in a and status.startswith("2"):
                self.report.differ(f"{where} response {status}", "success status", "absent", "present")


def compare(stackone: Schema, lmsgate: Schema) -> Report:
    comparer = Comparer(stackone, lmsgate)
    comparer.operations()
    return comparer.report


def table(rows: list[tuple[str, ...]], headers: tuple[str, ...]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

    out = [line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    return "\n".join(out)


# ---------------------------------------------------------------- the tests


@pytest.fixture(scope="module")
def stackone_spec() -> Schema:
    """StackOne's published spec where it lies beside the repository (../shared/reference/);
    in a clone without it, the contract kept in the repository (tests/contract/), the same
    facts without StackOne's prose. test_the_kept_contract_is_the_published_spec_s_facts
    checks that the two agree whenever both are there."""
    import json

    if STACKONE_SPEC.is_file():
        return json.loads(STACKONE_SPEC.read_text())
    return json.loads(KEPT_CONTRACT.read_text())


def test_the_kept_contract_is_the_published_spec_s_facts() -> None:
    """The contract in the repository is what refresh_contract.py makes of the published spec
    (checked only where the spec lies beside the repository; the comparisons above run on
    whichever is there)."""
    import json

    from contract.refresh_contract import contract_of

    kept = json.loads(KEPT_CONTRACT.read_text())
    if STACKONE_SPEC.is_file():
        assert contract_of(json.loads(STACKONE_SPEC.read_text())) == kept, \
            "tests/contract/stackone-lms-contract.json is stale: run tests/contract/refresh_contract.py"


@pytest.fixture(scope="module")
def lmsgate_spec(lmsgate_server: Any) -> Schema:
    resp = httpx.get(f"{lmsgate_server.url}/openapi.json", timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_stackone_spec_has_the_23_operations(stackone_spec: Schema) -> None:
    ops = [op["operationId"] for _, op in Comparer._operations(stackone_spec)]
    assert len(ops) == 23, ops
    assert all(op.startswith("lms_") for op in ops)


def test_lmsgate_openapi_matches_stackone(stackone_spec: Schema, lmsgate_spec: Schema) -> None:
    report = compare(stackone_spec, lmsgate_spec)
    print(f"\nCompared {len(report.compared)} schema pairs across 23 StackOne operations.")
    print(f"\nAllowed lmsgate-only additions ({len(report.extras)}):")
    print(table([(w, what) for w, what in sorted(report.extras)], ("where", "addition")))
    print(f"\nIncompatibilities ({len(report.differences)}):")
    print(table(sorted(report.differences), ("where", "what", "StackOne", "lmsgate")))
    assert not report.differences, (
        f"{len(report.differences)} incompatibilities between lmsgate's /openapi.json and StackOne's spec; "
        "see the table printed above (run pytest with -s)"
    )


def test_the_comparison_catches_changes(stackone_spec: Schema) -> None:
    """The comparer is not blind: a copy of StackOne's spec with defects must be flagged."""
    import copy

    broken = copy.deepcopy(stackone_spec)
    schemas = broken["components"]["schemas"]
    schemas["Completion"]["properties"].pop("completed_at")
    schemas["CreateResult"]["required"].remove("timestamp")
    schemas["ScoreModel"]["properties"]["percentage"] = {"type": "string", "nullable": True}
    schemas["ResultStatusEnum"]["properties"]["value"]["enum"].remove("Fail")
    schemas["LmsUser"]["properties"]["email"].pop("nullable")
    schemas["Course"]["properties"]["extra_required"] = {"type": "string"}
    schemas["Course"].setdefault("required", []).append("extra_required")
    broken["paths"]["/unified/lms/users"]["get"]["parameters"].pop(1)
    report = compare(stackone_spec, broken)
    found = {(w, what) for w, what, _, _ in report.differences}
    assert ("Completion.completed_at", "property") in found
    assert ("CreateResult.timestamp", "required") in found
    assert ("ScoreModel.percentage", "type") in found
    assert ("ResultStatusEnum.value", "enum values") in found
    assert ("LmsUser.email", "type") in found
    assert ("Course.extra_required", "property") in found
    assert any(what == "parameter" and "lms_list_users" in w for w, what in found)
    assert compare(stackone_spec, stackone_spec).differences == []
