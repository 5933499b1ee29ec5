"""Unified completions ↔ xAPI statements (xAPI 1.0.3 and 2.0).

completion → statement
    verb         ``passed`` for result Pass, ``failed`` for Fail, ``completed`` otherwise
                 (``http://adlnet.gov/expapi/verbs/…``)
    id           UUID v5 of (account, user, learning object, completed_at) under
                 :data:`NAMESPACE`: the same completion always gets the same id, so a retry is
                 an identical statement and the LRS stores it once
    actor        ``mbox: mailto:<user>`` when the user id is an email address (its domain in
                 lower case, as LRSs keep it), otherwise
                 ``account: {homePage: <actor_homepage>, name: <user id>}``
    object.id    ``<activity_base_iri><external reference>``, the reference percent-encoded
    timestamp    ``completed_at`` (omitted when absent; the LRS then uses its stored time)
    result       ``completion: true``; ``success`` true/false for Pass/Fail;
                 ``duration`` from ``time_spent`` rounded to 0.01 s (see :func:`duration_to_xapi`);
                 ``score.scaled`` = percentage / 100; ``score.raw/min/max`` = a, 0, b when
                 ``raw_value`` reads "a / b" with 0 ≤ a ≤ b and b > 0
    context      ``extensions[urn:lmsgate:completion]`` keeps what xAPI has no place for:
                 learning_object_id, the original result, raw_value and the exact percentage
    passthrough  merged last, deeply, over the statement: it may add to it (``actor.name``,
                 ``object.definition``, ``context``, ``result.extensions`` …) but not change
                 what lmsgate derives from the completion (:data:`DERIVED`)

statement → completion: the same rules backwards; statements written by other systems read
as well as lmsgate's own, minus what only the extension carries.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import quote, unquote

from lmsgate.errors import BadRequest
from lmsgate.schema import LmsCreateCompletionRequestDto
from lmsgate.schema.types import Duration, format_datetime, parse_datetime

Statement = dict[str, Any]
Wire = dict[str, Any]

NAMESPACE = uuid.UUID("42ae9da7-fdf4-4d28-a97f-5f350516d428")
"""The UUID v5 namespace of lmsgate's statement ids. Never change it: ids would change too."""

ADL_VERBS = "http://adlnet.gov/expapi/verbs/"
VERB_PASSED = ADL_VERBS + "passed"
VERB_FAILED = ADL_VERBS + "failed"
VERB_COMPLETED = ADL_VERBS + "completed"
COMPLETION_VERBS = (VERB_PASSED, VERB_FAILED, VERB_COMPLETED)
_VERB_OF_RESULT = {"Pass": VERB_PASSED, "Fail": VERB_FAILED}
_RESULT_OF_VERB = {VERB_PASSED: "Pass", VERB_FAILED: "Fail"}

EXTENSION = "urn:lmsgate:completion"
"""Context extension holding the unified fields xAPI has no property for."""

PASSTHROUGH_KEYS = ("actor", "verb", "object", "result", "context", "timestamp", "attachments")
"""Top-level statement properties ``passthrough`` may add to."""

DERIVED: dict[tuple[str, ...], str] = {
    **{("actor", key): "the user id" for key in ("objectType", "mbox", "mbox_sha1sum", "openid", "account", "member")},
    ("verb", "id"): "result.value",
    ("object", "id"): "learning_object_external_reference",
    ("object", "objectType"): "learning_object_external_reference",
    ("timestamp",): "completed_at",
    ("result", "success"): "result.value",
    ("result", "completion"): "the completion",
    ("result", "duration"): "time_spent",
    ("result", "score"): "score",
    ("context", "extensions", EXTENSION): "the completion",
}
"""What lmsgate derives from the completion, by path, and from what. ``passthrough`` may not
set these: the statement id is derived from the same fields (an override would store a
statement that the id, lists and reads no longer find), and the result would contradict the
completion's own fields."""

_EMAIL = re.compile(r"^(?!\.)(?!.*\.\.)[^@\s]+(?<!\.)@[^@\s]+\.[^@\s]+$")
"""An address an LRS takes as an mbox: no dot at either end of the local part, none doubled
(an LRS refuses ``a..b@example.com``; such an id is sent as an account instead)."""
_RAW_VALUE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)\s*$", re.ASCII)
_CENTI = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class XapiMapping:
    """The account settings the mapping needs."""

    activity_base_iri: str
    actor_homepage: str

    @property
    def activity_prefix(self) -> str:
        base = self.activity_base_iri
        return base if base.endswith(("/", "#", ":", "=")) else base + "/"


# ---------------------------------------------------------------- ids, actors, activities


def learner(user_id: str) -> str:
    """The user id as the LRS identifies the learner: an email address with its domain in
    lower case (domains are case-insensitive, and LRSs store them so: ``bob@Example.com`` and
    ``bob@example.com`` are one learner there, and so one here), any other id as it is."""
    if _EMAIL.match(user_id):
        local, _, domain = user_id.rpartition("@")
        return f"{local}@{domain.lower()}"
    return user_id


def statement_id(account_id: str, user_id: str, learning_object_ref: str,
                 completed_at: datetime | None) -> str:
    name = "\x00".join([account_id, learner(user_id), learning_object_ref,
                        format_datetime(completed_at) if completed_at else ""])
    return str(uuid.uuid5(NAMESPACE, name))


def actor_for(user_id: str, m: XapiMapping) -> dict[str, Any]:
    if _EMAIL.match(user_id):
        return {"objectType": "Agent", "mbox": f"mailto:{learner(user_id)}"}
    return {"objectType": "Agent", "account": {"homePage": m.actor_homepage, "name": user_id}}


def actor_query(user_id: str, m: XapiMapping) -> dict[str, Any]:
    """The ``agent`` query parameter value that finds ``user_id``'s statements."""
    actor = actor_for(user_id, m)
    actor.pop("objectType")
    return actor


def user_from_actor(actor: Any, m: XapiMapping) -> str | None:
    if not isinstance(actor, dict):
        return None
    mbox = actor.get("mbox")
    if isinstance(mbox, str) and mbox.startswith("mailto:"):
        return mbox[len("mailto:"):]
    account = actor.get("account")
    if isinstance(account, dict) and isinstance(account.get("name"), str):
        if account.get("homePage") == m.actor_homepage:
            return account["name"]
        return f"{account.get('homePage')}#{account['name']}"
    for key in ("openid", "mbox_sha1sum"):
        if isinstance(actor.get(key), str):
            return actor[key]
    return None


def activity_iri(ref: str, m: XapiMapping) -> str:
    return m.activity_prefix + quote(ref, safe="")


def ref_from_activity(iri: str, m: XapiMapping) -> str:
    prefix = m.activity_prefix
    return unquote(iri[len(prefix):]) if iri.startswith(prefix) else iri


# ---------------------------------------------------------------- durations and scores


def duration_to_xapi(time_spent: str) -> str:
    """``time_spent`` as an xAPI duration: seconds rounded to 0.01 s, halves away from zero.

    xAPI allows at most 0.01 s precision (xAPI 1.0.3, Data §4.6; 2.0 keeps the rule), so
    ``PT0.125S`` is sent as ``PT0.13S`` and ``PT0.004S`` as ``PT0S``. Years and months are
    kept as they are; days, hours and minutes are written as hours, minutes and seconds.
    """
    parsed = Duration.parse(time_spent)
    seconds = parsed.seconds.quantize(_CENTI, rounding=ROUND_HALF_UP)
    return Duration(months=parsed.months, seconds=seconds).isoformat()


def duration_from_xapi(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return Duration.parse(value).isoformat()
    except ValueError:
        return None


def _number(d: Decimal) -> int | float:
    return int(d) if d == d.to_integral_value() else float(d)


def _format(value: Any) -> str:
    d = Decimal(str(value))
    return str(int(d)) if d == d.to_integral_value() else format(d.normalize(), "f")


def parse_raw_value(text: str | None) -> tuple[int | float, int, int | float] | None:
    """``(raw, min, max)`` from "a / b" with 0 ≤ a ≤ b and b > 0; ``None`` for anything else."""
    if not text:
        return None
    match = _RAW_VALUE.match(text)
    if not match:
        return None
    raw, top = Decimal(match[1]), Decimal(match[2])
    if top <= 0 or raw > top:
        return None
    return _number(raw), 0, _number(top)


def score_to_xapi(percentage: float | None, raw_value: str | None) -> dict[str, Any] | None:
    score: dict[str, Any] = {}
    if percentage is not None:
        score["scaled"] = _number(Decimal(str(percentage)) / 100)
    parts = parse_raw_value(raw_value)
    if parts:
        score["raw"], score["min"], score["max"] = parts
    return score or None


def score_from_xapi(score: Any, raw_value: str | None, percentage_sent: Any = None) -> dict[str, Any] | None:
    """The unified score. ``percentage_sent`` is the percentage lmsgate kept in its extension:
    read back instead of ``scaled`` × 100 when the two agree, because a percentage with 17
    significant digits does not always survive the division and the JSON number in between
    (30.336851093291763 came back as 30.33685109329176)."""
    if not isinstance(score, dict):
        return {"percentage": None, "raw_value": raw_value} if raw_value else None
    percentage = None
    scaled = score.get("scaled")
    if isinstance(scaled, (int, float)) and not isinstance(scaled, bool):
        percentage = float(Decimal(str(scaled)) * 100)
        if (type(percentage_sent) in (int, float) and not isinstance(percentage_sent, bool)
                and abs(percentage_sent - percentage) <= 1e-9 * max(1.0, abs(percentage))):
            percentage = float(percentage_sent)
    numbers = (int, float)
    if raw_value is None and isinstance(score.get("raw"), numbers) and isinstance(score.get("max"), numbers):
        raw_value = f"{_format(score['raw'])} / {_format(score['max'])}"
    if percentage is None and raw_value is None:
        return None
    return {"percentage": percentage, "raw_value": raw_value}


# ---------------------------------------------------------------- whole statements


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def check_passthrough(passthrough: dict[str, Any] | None) -> None:
    """400 naming the key when ``passthrough`` would break the statement or contradict it."""
    for key, value in (passthrough or {}).items():
        if key == "id":
            raise BadRequest("body.passthrough.id: the statement id is derived from the completion "
                             "(that is what makes retries safe); it cannot be overridden")
        if key not in PASSTHROUGH_KEYS:
            raise BadRequest(f"body.passthrough.{key}: not an xAPI statement property lmsgate can merge; "
                             f"one of: {', '.join(PASSTHROUGH_KEYS)}")
        if key not in ("attachments", "timestamp") and not isinstance(value, dict):
            raise BadRequest(f"body.passthrough.{key}: must be an object, merged into the statement's {key}")
    for path, source in DERIVED.items():
        node: Any = passthrough or {}
        for part in path:
            node = node.get(part, _ABSENT) if isinstance(node, dict) else _ABSENT
        if node is not _ABSENT:
            raise BadRequest(f"body.passthrough.{'.'.join(path)}: lmsgate sets it from {source}; "
                             "passthrough may add to the statement, not change it")


_ABSENT = object()


def completion_to_statement(account_id: str, user_id: str, body: LmsCreateCompletionRequestDto,
                            m: XapiMapping) -> tuple[str, Statement]:
    check_passthrough(body.passthrough)
    ref = body.learning_object_external_reference
    sid = statement_id(account_id, user_id, ref, body.completed_at)
    value = body.result.value if body.result else None
    verb = _VERB_OF_RESULT.get(value or "", VERB_COMPLETED)
    result: dict[str, Any] = {"completion": True}
    if verb != VERB_COMPLETED:
        result["success"] = verb == VERB_PASSED
    if body.time_spent:
        result["duration"] = duration_to_xapi(body.time_spent)
    score = score_to_xapi(body.score.percentage if body.score else None,
                          body.score.raw_value if body.score else None)
    if score:
        result["score"] = score
    extension: dict[str, Any] = {}
    if body.learning_object_id:
        extension["learning_object_id"] = body.learning_object_id
    if body.result is not None:
        extension["result"] = {"value": body.result.value, "source_value": body.result.source_value}
    if body.score is not None and body.score.raw_value is not None:
        extension["score_raw_value"] = body.score.raw_value
    if body.score is not None and body.score.percentage is not None:
        extension["score_percentage"] = body.score.percentage
    statement: Statement = {
        "id": sid,
        "actor": actor_for(user_id, m),
        "verb": {"id": verb, "display": {"en-US": verb.rsplit("/", 1)[1]}},
        "object": {"objectType": "Activity", "id": activity_iri(ref, m)},
        "result": result,
    }
    if body.completed_at:
        statement["timestamp"] = format_datetime(body.completed_at)
    if extension:
        statement["context"] = {"extensions": {EXTENSION: extension}}
    if body.passthrough:
        statement = _merge(statement, body.passthrough)
        statement["id"] = sid
    return sid, statement


def _dt(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return format_datetime(parse_datetime(value))
    except ValueError:
        return None


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def statement_to_completion(statement: Any, m: XapiMapping) -> Wire | None:
    """The unified completion for a statement, or ``None`` if it does not record a completion."""
    if not isinstance(statement, dict):
        return None
    verb = _object(statement.get("verb")).get("id")
    if verb not in COMPLETION_VERBS:
        return None
    ext = _object(_object(_object(statement.get("context")).get("extensions")).get(EXTENSION))
    result = _object(statement.get("result"))
    obj = _object(statement.get("object"))
    sid = statement.get("id")
    iri = obj.get("id") if isinstance(obj.get("id"), str) else None
    ref = ref_from_activity(iri, m) if iri else None
    lo_id = ext.get("learning_object_id")
    if isinstance(ext.get("result"), dict):
        unified_result: Wire | None = {"value": ext["result"].get("value"),
                                       "source_value": ext["result"].get("source_value")}
    elif verb in _RESULT_OF_VERB:
        unified_result = {"value": _RESULT_OF_VERB[verb], "source_value": verb}
    else:
        unified_result = None
    raw_value = ext.get("score_raw_value") if isinstance(ext.get("score_raw_value"), str) else None
    user = user_from_actor(statement.get("actor"), m)
    return {
        "id": sid,
        "remote_id": sid,
        "user_id": user,
        "remote_user_id": user,
        "learning_object_id": lo_id,
        "remote_learning_object_id": iri,
        "learning_object_external_reference": ref,
        "learning_object_type": None,
        "result": unified_result,
        "score": score_from_xapi(result.get("score"), raw_value, ext.get("score_percentage")),
        "completed_at": _dt(statement.get("timestamp")),
        "created_at": _dt(statement.get("stored")),
        "updated_at": _dt(statement.get("stored")),
        "time_spent": duration_from_xapi(result.get("duration")),
        "certificate_url": None,
        "unified_custom_fields": None,
        "external_reference": ref,
        "external_id": ref,
        "remote_external_id": iri,
        "content_external_reference": ref,
        "content_id": lo_id,
        "remote_content_id": iri,
        "course_id": None,
        "remote_course_id": None,
    }
