"""Completion ↔ statement conversions of the xAPI connector, both ways."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lmsgate.connectors.xapi import mapping as m
from lmsgate.errors import BadRequest
from lmsgate.schema import LmsCreateCompletionRequestDto

M = m.XapiMapping(activity_base_iri="https://content.example.com/activities", actor_homepage="https://lms.example.com")


def dto(**fields: object) -> LmsCreateCompletionRequestDto:
    return LmsCreateCompletionRequestDto.model_validate(
        {"learning_object_external_reference": "lo-1", "completed_at": "2021-07-21T14:00:00Z", **fields})


@pytest.mark.parametrize(
    ("time_spent", "xapi"),
    [
        ("PT1H30M45S", "PT1H30M45S"),
        ("PT1H30M45.125S", "PT1H30M45.13S"),  # halves round away from zero
        ("PT0.004S", "PT0S"),
        ("PT0.005S", "PT0.01S"),
        ("PT59.999S", "PT1M"),
        ("PT90M", "PT1H30M"),
        ("P1DT2H", "PT26H"),
        ("P1Y2M", "P1Y2M"),
        ("P1MT0.255S", "P1MT0.26S"),
    ],
)
def test_durations_are_rounded_to_hundredths(time_spent: str, xapi: str) -> None:
    assert m.duration_to_xapi(time_spent) == xapi
    assert m.duration_from_xapi(xapi) == xapi


@pytest.mark.parametrize(
    ("raw_value", "parts"),
    [
        ("87 / 100", (87, 0, 100)),
        ("87/100", (87, 0, 100)),
        (" 7.5 / 10 ", (7.5, 0, 10)),
        ("0 / 3", (0, 0, 3)),
        ("101 / 100", None),  # raw above max: no valid xAPI score
        ("5 / 0", None),
        ("-1 / 10", None),
        ("A+", None),
        ("", None),
        (None, None),
    ],
)
def test_raw_values_parse_as_a_over_b(raw_value: str | None, parts: tuple | None) -> None:
    assert m.parse_raw_value(raw_value) == parts


@pytest.mark.parametrize(
    ("percentage", "raw_value", "score"),
    [
        (87, "87 / 100", {"scaled": 0.87, "raw": 87, "min": 0, "max": 100}),
        (87.5, None, {"scaled": 0.875}),
        (100, None, {"scaled": 1}),
        (0, None, {"scaled": 0}),
        (33.33, None, {"scaled": 0.3333}),
        (None, "3 / 4", {"raw": 3, "min": 0, "max": 4}),
        (None, "great", None),
        (None, None, None),
    ],
)
def test_scores_both_ways(percentage: float | None, raw_value: str | None, score: dict | None) -> None:
    assert m.score_to_xapi(percentage, raw_value) == score
    back = m.score_from_xapi(score, None)
    if percentage is not None:
        assert back["percentage"] == percentage  # exact: decimal arithmetic, no 87.00000000000001
    if score and "raw" in score:
        assert back["raw_value"] == raw_value.replace(" ", "").replace("/", " / ")


@given(st.floats(min_value=0, max_value=100, allow_nan=False).map(lambda f: round(f, 4)))
def test_percentages_survive_the_round_trip(percentage: float) -> None:
    assert m.score_from_xapi(m.score_to_xapi(percentage, None), None)["percentage"] == percentage


def test_statement_ids_are_deterministic() -> None:
    when = datetime(2021, 7, 21, 14, 0, tzinfo=timezone.utc)
    a = m.statement_id("acct", "user", "lo", when)
    assert a == m.statement_id("acct", "user", "lo", when)
    assert len({a, m.statement_id("acct2", "user", "lo", when), m.statement_id("acct", "user2", "lo", when),
                m.statement_id("acct", "user", "lo2", when), m.statement_id("acct", "user", "lo", None)}) == 5
    assert a[14] == "5"  # UUID version 5


@pytest.mark.parametrize(
    ("value", "verb", "success"),
    [("Pass", "passed", True), ("Fail", "failed", False), ("unmapped_value", "completed", None),
     ("Incomplete", "completed", None), (None, "completed", None)],
)
def test_the_verb_follows_the_result(value: str | None, verb: str, success: bool | None) -> None:
    body = dto(result={"value": value} if value else None)
    _, statement = m.completion_to_statement("acct", "u1", body, M)
    assert statement["verb"]["id"] == m.ADL_VERBS + verb
    assert statement["result"]["completion"] is True
    assert statement["result"].get("success") is success
    back = m.statement_to_completion(statement, M)
    if value is None:
        assert back["result"] is None
    else:
        assert back["result"]["value"] == value


def test_a_full_completion_round_trips() -> None:
    body = dto(learning_object_id="internal-9", time_spent="PT1H2M3.456S",
               result={"value": "Pass", "source_value": "PASSED"}, score={"percentage": 87, "raw_value": "87 / 100"},
               passthrough={"context": {"platform": "Acme", "extensions": {"https://acme.test/x": 1}}})
    sid, statement = m.completion_to_statement("acct", "learner 7", body, M)
    assert statement["id"] == sid
    assert statement["actor"] == {"objectType": "Agent",
                                  "account": {"homePage": "https://lms.example.com", "name": "learner 7"}}
    assert statement["object"] == {"objectType": "Activity", "id": "https://content.example.com/activities/lo-1"}
    assert statement["timestamp"] == "2021-07-21T14:00:00.000Z"
    assert statement["context"]["platform"] == "Acme"
    assert statement["context"]["extensions"]["https://acme.test/x"] == 1
    assert statement["context"]["extensions"][m.EXTENSION]["learning_object_id"] == "internal-9"
    back = m.statement_to_completion({**statement, "stored": "2024-05-01T10:00:00.123456+00:00"}, M)
    assert back["id"] == back["remote_id"] == sid
    assert back["user_id"] == "learner 7"
    assert back["learning_object_external_reference"] == "lo-1"
    assert back["learning_object_id"] == "internal-9"
    assert back["result"] == {"value": "Pass", "source_value": "PASSED"}
    assert back["score"] == {"percentage": 87.0, "raw_value": "87 / 100"}
    assert back["time_spent"] == "PT1H2M3.46S"
    assert back["completed_at"] == "2021-07-21T14:00:00.000Z"
    assert back["created_at"] == "2024-05-01T10:00:00.123456Z"


def test_email_users_are_mboxes() -> None:
    assert m.actor_for("ada@example.com", M) == {"objectType": "Agent", "mbox": "mailto:ada@example.com"}
    assert m.user_from_actor({"mbox": "mailto:ada@example.com"}, M) == "ada@example.com"
    assert m.user_from_actor({"account": {"homePage": "https://other.test", "name": "x"}}, M) == "https://other.test#x"


@given(st.text(min_size=1, max_size=40).filter(lambda s: "\x00" not in s))
def test_activity_iris_round_trip(ref: str) -> None:
    iri = m.activity_iri(ref, M)
    assert iri.startswith("https://content.example.com/activities/")
    assert " " not in iri
    assert m.ref_from_activity(iri, M) == ref


def test_statements_of_other_verbs_are_not_completions() -> None:
    assert m.statement_to_completion({"verb": {"id": m.ADL_VERBS + "experienced"}}, M) is None
    assert m.statement_to_completion("not a statement", M) is None


@pytest.mark.parametrize(("passthrough", "mention"), [
    ({"id": "x"}, "body.passthrough.id"), ({"other_known_names": "John"}, "body.passthrough.other_known_names"),
])
def test_passthrough_may_not_break_the_statement(passthrough: dict, mention: str) -> None:
    with pytest.raises(BadRequest, match=mention.replace(".", r"\.")):
        m.completion_to_statement("acct", "u1", dto(passthrough=passthrough), M)


@pytest.mark.parametrize(("passthrough", "mention"), [
    ({"actor": {"mbox": "mailto:someone@else.test"}}, "body.passthrough.actor.mbox"),
    ({"actor": {"account": {"name": "someone-else"}}}, "body.passthrough.actor.account"),
    ({"verb": {"id": "http://adlnet.gov/expapi/verbs/attempted"}}, "body.passthrough.verb.id"),
    ({"object": {"id": "https://elsewhere.test/x"}}, "body.passthrough.object.id"),
    ({"timestamp": "2020-01-01T00:00:00Z"}, "body.passthrough.timestamp"),
    ({"result": {"success": False}}, "body.passthrough.result.success"),
    ({"result": {"score": {"scaled": 2}}}, "body.passthrough.result.score"),
    ({"result": {"duration": "PT1H"}}, "body.passthrough.result.duration"),
    ({"context": {"extensions": {m.EXTENSION: {"learning_object_id": "x"}}}},
     f"body.passthrough.context.extensions.{m.EXTENSION}"),
    ({"actor": "someone"}, "body.passthrough.actor: must be an object"),
])
def test_passthrough_may_add_to_the_statement_but_not_change_it(passthrough: dict, mention: str) -> None:
    """Each of these was stored: a statement the id, the lists and the reads no longer found
    (another verb or actor), a completion recorded for someone else, a ``passed`` statement
    with ``success: false``, a score of 200 %."""
    with pytest.raises(BadRequest, match=mention.replace(".", r"\.")):
        m.completion_to_statement("acct", "u1", dto(passthrough=passthrough), M)


def test_what_passthrough_may_add() -> None:
    extra = {"actor": {"name": "Ada Lovelace"}, "verb": {"display": {"fr-FR": "terminé"}},
             "object": {"definition": {"name": {"en-US": "Fire safety"}}},
             "result": {"response": "B", "extensions": {"https://acme.test/r": 1}},
             "context": {"registration": "9a2f4d3e-1c5b-4a8e-9f00-1234567890ab"}, "attachments": []}
    sid, statement = m.completion_to_statement("acct", "u1", dto(passthrough=extra), M)
    assert statement["actor"] == {"objectType": "Agent", "name": "Ada Lovelace",
                                  "account": {"homePage": "https://lms.example.com", "name": "u1"}}
    assert statement["verb"]["id"] == m.VERB_COMPLETED and statement["verb"]["display"]["fr-FR"] == "terminé"
    assert statement["object"]["definition"]["name"] == {"en-US": "Fire safety"}
    assert statement["result"]["completion"] is True and statement["result"]["response"] == "B"
    assert statement["context"]["registration"].startswith("9a2f") and statement["id"] == sid


def test_an_email_domain_is_one_learner_whatever_its_case() -> None:
    """An LRS keeps an mbox's domain in lower case: bob@Example.com and bob@example.com were two
    statements for one learner there, and a read by the id as posted found nothing."""
    when = datetime(2024, 5, 1, 9, 0, tzinfo=timezone.utc)
    upper, lower = (m.completion_to_statement("acct", user, dto(completed_at=when), M)
                    for user in ("Bob.Smith@Example.COM", "Bob.Smith@example.com"))
    assert upper[0] == lower[0]
    assert upper[1]["actor"] == {"objectType": "Agent", "mbox": "mailto:Bob.Smith@example.com"}
    assert m.learner("Bob.Smith@Example.COM") == "Bob.Smith@example.com"  # the local part keeps its case
    assert m.learner("Learner-7") == "Learner-7"


@pytest.mark.parametrize("user", ["a..b@example.com", ".a@example.com", "a.@example.com"])
def test_an_address_an_lrs_refuses_as_an_mbox_is_sent_as_an_account(user: str) -> None:
    assert m.actor_for(user, M) == {"objectType": "Agent", "account": {"homePage": "https://lms.example.com",
                                                                       "name": user}}


def test_a_raw_value_reads_ascii_digits_only() -> None:
    assert m.parse_raw_value("８７/100") is None
    assert m.parse_raw_value("87/100") == (87, 0, 100)


@given(st.floats(min_value=0, max_value=100, allow_nan=False))
def test_any_percentage_reads_back_exactly(percentage: float) -> None:
    """scaled × 100 alone gave 30.33685109329176 for 30.336851093291763: the percentage sent
    is kept beside it and read back when the two agree."""
    _, statement = m.completion_to_statement("acct", "u1", dto(score={"percentage": percentage}), M)
    assert m.statement_to_completion(statement, M)["score"]["percentage"] == percentage
    statement["result"]["score"]["scaled"] = 0.5  # changed by another system: scaled wins
    assert m.statement_to_completion(statement, M)["score"]["percentage"] == 50


def test_big_integers_go_to_a_remote_server_as_they_are() -> None:
    """The SDK encoded bodies with orjson, which refuses integers past 64 bits: a remote import
    of such a passthrough stopped."""
    import json as stdlib_json

    from lmsgate.client._request import body

    sent = body(LmsCreateCompletionRequestDto, {"learning_object_external_reference": "c",
                                                "passthrough": {"n": 123456789012345678901234567890}})
    assert stdlib_json.loads(sent)["passthrough"]["n"] == 123456789012345678901234567890
