"""Cases the schemathesis runs (tests/fuzz) found, kept as plain tests.

1. A ``next`` cursor with non-ASCII characters answered 500: the signature check compared
   ``str`` values with ``hmac.compare_digest``, which refuses non-ASCII ``str``.
2. ``POST /accounts/{id}/test`` on a ``local`` account answered 501 in an early run (the
   embedded LMS had no credential check then); it reads lmsgate's own database now.
3. ``page_size=²`` (a long run, ``LMSGATE_FUZZ_EXAMPLES=60``) answered 500: ``str.isdigit``
   accepts Unicode digits that ``int`` refuses. The same test guarded ``page``, the accounts and
   deliveries lists, and a provider's ``Retry-After`` and token ``expires_in``.
4. A query of hundreds of ``filter[updated_after][...]`` keys passed the URL limit and was
   answered 414, which the OpenAPI document did not list (a CI run on PostgreSQL). The answer
   was right; the document now lists 413, 414 and 431 for every operation.
"""

from __future__ import annotations

import pytest

from support import SEED_COMPLETION, Tenant, assert_stackone_error

LISTS = ["/unified/lms/users/learner-1/completions", "/unified/lms/completions", "/unified/lms/content",
         "/unified/lms/assignments", "/unified/lms/users", "/unified/lms/courses", "/unified/lms/categories",
         "/unified/lms/skills", "/requests/logs"]


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("cursor", [".\U000a3923\x94\xec\xc3\x91\x0e\x93", "é.é", "\x00", "a" * 3000])
def test_a_cursor_that_is_not_ours_is_a_400_naming_next(tenant: Tenant, path: str, cursor: str) -> None:
    if "\x00" in cursor and path != "/requests/logs":
        expected = "NUL"
    else:
        expected = "next"
    resp = tenant.get(path, params={"next": cursor})
    assert_stackone_error(resp, 400, expected)


def test_testing_a_local_account_reads_the_database(tenant: Tenant) -> None:
    assert tenant.post("/unified/lms/users/learner-1/completions", json=SEED_COMPLETION).status_code == 201
    resp = tenant.post(f"/accounts/{tenant.account_id}/test")
    assert resp.status_code == 200, resp.text
    assert resp.json()["data"]["provider"] == "local"


PAGED = [(path, name) for path in [*LISTS, "/accounts"] for name in ("page_size", "page")
         if not (path == "/requests/logs" and name == "page")] + [("/deliveries", "page_size")]


@pytest.mark.parametrize(("path", "name"), PAGED)
def test_a_unicode_digit_is_not_a_number(tenant: Tenant, path: str, name: str) -> None:
    """``page_size=²`` answered 500: ``"²".isdigit()`` is true, and ``int("²")`` raises."""
    resp = tenant.get(path, params={name: "²"})
    assert_stackone_error(resp, 400, name)


def test_a_provider_retry_after_in_unicode_digits_is_ignored() -> None:
    from lmsgate.http import parse_retry_after

    assert parse_retry_after("²") is None
    assert parse_retry_after("3") == 3.0


def test_every_operation_documents_the_size_refusals(tenant: Tenant) -> None:
    spec = tenant.client.get("/openapi.json").json()
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            assert {"413", "414", "431"} <= set(operation["responses"]), f"{method.upper()} {path}"


def test_a_query_of_many_filter_keys_past_the_url_limit_is_a_documented_414(tenant: Tenant) -> None:
    params = {f"filter[updated_after][k{i}][0]": "x" * 20 for i in range(400)}
    resp = tenant.get("/unified/lms/categories", params=params)
    assert_stackone_error(resp, 414, "url:")
