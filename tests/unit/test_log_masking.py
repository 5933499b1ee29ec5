"""Log lines: secrets masked in values, never in the line's own fields or in keys."""

from __future__ import annotations

import io
import json
import logging
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
