"""Log lines: secrets masked in values, never in the line's own fields or in keys."""

from __future__ import annotations

import io
import json
import logging
import re
import secrets

import pytest

from lmsgate.http import remember_secrets
from lmsgate.logs import make_handler


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_a_secret_is_masked_in_values_but_a_logger_name_that_holds_it_is_not(fmt: str) -> None:
    """A credential that happens to be a word of the line (a logger's name, a field's name)
    once rewrote it: the whole finished line was masked, and the access log lost its logger."""
    word = "qq" + secrets.token_hex(4)
    remember_secrets(word)
    stream = io.StringIO()
    logger = logging.getLogger(f"lmsgate.test.{word}")
    logger.propagate = False
    logger.addHandler(make_handler(fmt, stream))
    logger.setLevel(logging.INFO)
    key = "lmsg_" + secrets.token_urlsafe(24)
    try:
        raise ValueError(f"failed with {word}")
    except ValueError:
        logger.exception("saw %s", word, extra={"fields": {word: f"path?key={key}", "n": 3}})
    text = stream.getvalue()
    assert word not in text.replace(f"lmsgate.test.{word}", "").replace(f"{word}=", "").replace(f'"{word}":', "")
    assert key not in text
    if fmt == "json":
        line = json.loads(text)
        assert line["logger"] == f"lmsgate.test.{word}"
        assert line["msg"] == "saw [REDACTED]" and line[word] == "path?key=[REDACTED]" and line["n"] == 3
        assert "[REDACTED]" in line["exc"]
    else:
        assert f" lmsgate.test.{word} saw [REDACTED]" in text


def test_a_provider_text_is_masked_before_it_is_cut() -> None:
    """A provider's text answer is kept up to 2,000 characters. Cut first, a secret that
    straddled the cut no longer matched, and its first half was shown."""
    from types import SimpleNamespace

    import httpx

    from lmsgate.http import Redactor
    from lmsgate.http._client import RAW_TEXT_LIMIT, ProviderResponse, ProviderSession

    secret = "Pw-Zq8vL3xN7rT2kS9"
    session = SimpleNamespace(redactor=Redactor([secret]))
    content = ("x" * (RAW_TEXT_LIMIT - 9) + secret + " and more").encode()
    resp = ProviderResponse(status=400, url="https://lrs.example/xapi/statements",
                            headers=httpx.Headers({"content-type": "text/plain"}), content=content,
                            _session=None)  # type: ignore[arg-type]
    entry = ProviderSession.error_entry(session, resp)  # type: ignore[arg-type]
    raw = ProviderSession._raw_response(session, resp)  # type: ignore[arg-type]
    for shown in (entry["raw"]["body"], raw):
        assert secret[:9] not in shown and len(shown) <= RAW_TEXT_LIMIT


@pytest.mark.parametrize("shown", [
    "quote-default", "lower-escapes", "encodeURIComponent", "json-escaped", "json-ascii", "php-slashes", "base64",
])
def test_a_secret_is_masked_in_the_forms_clients_and_servers_write_it(shown: str) -> None:
    """Only the raw form and two percent-encodings were known: a provider echoing the password
    URL-encoded by JavaScript, in lower-case escapes, JSON-escaped in a text body or in base64
    showed it to the caller and stored it in the request log."""
    import base64
    from urllib.parse import quote

    from lmsgate.http import Redactor

    secret = 'Dl/v3ry*Pw(1) "ü"!'
    forms = {
        "quote-default": quote(secret), "lower-escapes": re.sub("%[0-9A-F]{2}", lambda m: m[0].lower(), quote(secret, safe="")),
        "encodeURIComponent": quote(secret, safe="!'()*"), "json-escaped": json.dumps(secret, ensure_ascii=False)[1:-1],
        "json-ascii": json.dumps(secret)[1:-1], "php-slashes": json.dumps(secret)[1:-1].replace("/", "\\/"),
        "base64": base64.b64encode(secret.encode()).decode(),
    }
    text = f"error: next={forms[shown]}; more"
    assert Redactor([secret]).text(text) == "error: next=[REDACTED]; more"


def test_secret_names_are_masked_in_text_bodies_headers_and_cut_objects() -> None:
    """By name, whatever the value: in a provider's text error, in a Location's or Link's query,
    and for an object under a secret name in a request-log body cut at its size limit (only its
    opening brace was masked)."""
    from lmsgate.http import Redactor

    r = Redactor()
    text = "password=plainpw99 token: UNKNOWN-TOKEN-VALUE; Authorization: Bearer BEARER-XYZ"
    masked = r.unparsed(text)
    assert not any(s in masked for s in ("plainpw99", "UNKNOWN-TOKEN-VALUE", "BEARER-XYZ")), masked
    headers = r.headers([("Location", "https://sso.example/cb?access_token=TOKEN-1&password=pw-2&next=/home"),
                         ("Link", '<https://lrs.example/x?api_key=KEY-3>; rel="next"'), ("Content-Type", "text/html")])
    assert not any(s in str(headers) for s in ("TOKEN-1", "pw-2", "KEY-3")), headers
    assert "next=/home" in headers["location"] and headers["content-type"] == "text/html"
    cut = '{"provider": "xapi",\n "credentials": {\n  "username": "LRSKEY-USERNAME",\n  "password": "x"\n }, "label": "ok", "pad": "abc'
    masked = r.unparsed(cut)
    assert "LRSKEY-USERNAME" not in masked and '"label": "ok"' in masked and '"provider": "xapi"' in masked
    assert r.unparsed('{"secret": {"a": "}", "b": [1, {"c": 2}]}, "after": 1}') == '{"secret": [REDACTED], "after": 1}'


def test_a_tenants_secret_is_masked_only_in_its_own_calls_log_lines() -> None:
    """Process-wide, every account ever called masked every log line of every tenant: linking an
    account with the password "completions" blanked that word out of everyone's logs, and the
    one pattern of all secrets grew with each account (6.4 ms a line at 6,000 accounts)."""
    import contextvars

    from lmsgate.http import Redactor
    from lmsgate.http._redact import mask_in_context, masked_text

    password = "completions-" + secrets.token_hex(2)
    line = f"GET /unified/lms/{password} 200"

    def in_call() -> str:
        mask_in_context(Redactor([password]))
        return masked_text(line)

    assert contextvars.copy_context().run(in_call) == "GET /unified/lms/[REDACTED] 200"
    assert contextvars.copy_context().run(lambda: masked_text(line)) == line  # another task: untouched


def test_masking_by_name_takes_time_in_proportion_to_the_text() -> None:
    """Searching again inside every value made crafted text (``a:a:a:…`` after a secret-sounding
    word) quadratic: 6 s for 64 KB, on the event loop for a provider's text error."""
    import time

    from lmsgate.http import Redactor

    r = Redactor(["s3cret-value"])
    for text in ("key " + "a:" * 100_000, "key " + "?a:" * 70_000, "token=" + "{" * 200_000):
        started = time.perf_counter()
        r.unparsed(text)
        assert time.perf_counter() - started < 1.0  # linear: about 0.02 s each here; quadratic took minutes
    assert r.unparsed("go https://h/cb?access_token=T-1?x&password=p?w rest") == \
        "go https://h/cb?access_token=[REDACTED]&password=[REDACTED] rest"
