"""Running schemathesis against lmsgate in-process, and counting what it did.

Schemathesis's engine (the one behind ``schemathesis run``) is driven from a test: every phase
(examples, coverage, fuzzing, stateful), both data-generation modes (positive: requests the
spec allows; negative: requests it forbids), against the ASGI app through Starlette's test
client. The test then asserts on the failures the checks found.

Checks, besides schemathesis's own (chosen per spec by the caller):

* ``lmsgate_no_server_error`` replaces ``not_a_server_error``: any 5xx fails, except a 408 or
  502 in which lmsgate reports that a *remote* provider failed (``The xapi provider …``). The
  fuzzer links xAPI accounts to hosts that do not exist here (``lrs.example.com``), and then
  502 is the documented, correct answer; lmsgate's own faults (500, 501 on the local LMS, …)
  still fail.
* ``lmsgate_error_shape``: every 4xx and 5xx body is StackOne's ``{statusCode, message,
  timestamp}`` with ``statusCode`` equal to the HTTP status.
* ``lmsgate_request_id``: every answer carries ``x-request-id``.

Open enums: StackOne marks enums that may carry values beyond the listed ones with
``x-speakeasy-unknown-values: allow`` (its SDKs accept any string there, and lmsgate keeps a
provider's unknown value, copying it to ``source_value``). JSON Schema knows nothing of that
extension, so :func:`open_enums` drops the ``enum`` list where it is set before a run.

The budget is ``LMSGATE_FUZZ_EXAMPLES`` examples per operation and mode in the fuzzing phase
(CI's default is small; set it to 100 or more for a long run). The coverage phase is
deterministic and always runs in full.
"""

from __future__ import annotations

import collections
import os
import re
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from schemathesis.engine import events, from_schema

FUZZ_EXAMPLES = int(os.environ.get("LMSGATE_FUZZ_EXAMPLES", "6"))
_REMOTE_PROVIDER_FAILURE = re.compile(r"^The (?!local\b)[a-z0-9_]+ provider")


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:  # not JSON (json.JSONDecodeError is a ValueError)
        return None


def open_enums(node: Any) -> Any:
    """A copy of an OpenAPI document in which enums marked open accept any string."""
    if isinstance(node, list):
        return [open_enums(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: open_enums(v) for k, v in node.items()}
    if out.get("x-speakeasy-unknown-values") == "allow":
        out.pop("enum", None)
    return out


@schemathesis.check
def lmsgate_no_server_error(ctx: Any, response: Any, case: Any) -> bool | None:
    if response.status_code < 500:
        return None
    body = _json(response)
    message = body.get("message", "") if isinstance(body, dict) else ""
    if response.status_code in (408, 502) and _REMOTE_PROVIDER_FAILURE.match(message):
        return None
    raise AssertionError(f"lmsgate answered {response.status_code}: {response.text[:500]}")


@schemathesis.check
def lmsgate_error_shape(ctx: Any, response: Any, case: Any) -> bool | None:
    if response.status_code < 400:
        return None
    body = _json(response)
    ok = (isinstance(body, dict) and body.get("statusCode") == response.status_code
          and isinstance(body.get("message"), str) and body["message"]
          and isinstance(body.get("timestamp"), str) and body["timestamp"].endswith("Z"))
    if not ok:
        raise AssertionError(f"not StackOne's error shape for {response.status_code}: {response.text[:300]}")
    return None


@schemathesis.check
def lmsgate_request_id(ctx: Any, response: Any, case: Any) -> bool | None:
    if not response.headers.get("x-request-id"):
        raise AssertionError("the answer has no x-request-id header")
    return None


OURS = ["lmsgate_no_server_error", "lmsgate_error_shape", "lmsgate_request_id"]


@dataclass
class FuzzReport:
    """What one run did: calls per (operation, phase, mode) and the distinct failures."""

    calls: collections.Counter[tuple[str, str, str]] = field(default_factory=collections.Counter)
    failures: dict[tuple[str, str, str], str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def per_operation(self) -> dict[str, int]:
        totals: collections.Counter[str] = collections.Counter()
        for (operation, _phase, _mode), n in self.calls.items():
            totals[operation] += n
        return dict(sorted(totals.items()))

    def table(self) -> str:
        modes: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        for (operation, phase, mode), n in self.calls.items():
            modes[operation][mode] += n
            modes[operation][phase] += n
        lines = [f"{'operation':60} {'cases':>6} {'positive':>8} {'negative':>8} {'stateful':>8}"]
        for operation, total in self.per_operation().items():
            m = modes[operation]
            lines.append(f"{operation:60} {total:6} {m['positive']:8} {m['negative']:8} {m['stateful']:8}")
        lines.append(f"{'total':60} {sum(self.calls.values()):6}")
        return "\n".join(lines)


def run(schema: Any, *, checks: list[str], max_examples: int = FUZZ_EXAMPLES) -> FuzzReport:
    """Run every phase of schemathesis on ``schema`` with only ``checks``; collect a report."""
    schema.config.generation.update(max_examples=max_examples, deterministic=False)
    schema.config.checks.update(included_check_names=checks)
    report = FuzzReport()

    @schema.hook("after_call")
    def _count(context: Any, case: Any, response: Any) -> None:
        meta = case.meta
        phase = meta.phase.name.value if meta is not None else "unknown"
        mode = meta.generation.mode.value if meta is not None else "unknown"
        report.calls[(case.operation.label, phase, mode)] += 1

    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            for nodes in event.recorder.checks.values():
                for node in nodes:
                    if node.failure_info is None:
                        continue
                    failure = node.failure_info.failure
                    key = (event.recorder.label, node.name, failure.title)
                    report.failures.setdefault(
                        key, f"{failure.title}: {str(failure.message)[:1500]}\n{node.failure_info.code_sample[:3000]}")
        elif isinstance(event, events.NonFatalError):
            report.errors.append(f"{event.label}: {event.value!r}"[:2000])
        elif isinstance(event, events.FatalError):
            report.errors.append(f"fatal: {event.exception!r}"[:2000])
    return report
