"""Keeping credentials out of logs, ``raw`` logs and ``provider_errors``.

Two layers, because a secret can travel in ways no single rule sees:

* by **value**: every credential of the account (and the forms it is sent in, such as the
  base64 of a Basic ``user:password`` pair, or a bearer token once obtained) is replaced
  wherever it appears, in any string, however deeply nested;
* by **name**: headers such as ``Authorization`` and ``Cookie``, query parameters and JSON
  keys such as ``password``, ``client_secret`` or ``access_token`` are masked whatever their
  value, which covers secrets lmsgate never knew (a token a provider hands out).

:func:`install_log_redaction` adds the value layer to the ``lmsgate``, ``httpx`` and
``httpcore`` loggers as a logging filter, as a last line of defence.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import re
import threading
from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

__all__ = ["MASK", "Redactor", "install_log_redaction", "mask_in_context", "masked_text", "remember_secrets"]

MASK = "[REDACTED]"
_MIN_SECRET = 4
"""Shorter values are not replaced by value (they would mangle ordinary text); names still mask them."""

SENSITIVE_HEADERS = frozenset({
    "authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key",
    "x-auth-token", "x-access-token", "x-csrf-token", "www-authenticate",
})
_SENSITIVE_NAME = re.compile(
    r"(pass(?!through)(word)?|secret|token|api[_-]?key|apikey|authorization|credential|private[_-]?key|"
    r"signature|session|cookie|client[_-]?secret|assertion)",
    re.IGNORECASE,
)


@functools.lru_cache(maxsize=4096)
def is_sensitive_name(name: str) -> bool:
    return bool(_SENSITIVE_NAME.search(name))


def _masked_key(key: object, value: object) -> bool:
    return isinstance(key, str) and is_sensitive_name(key) and value not in (None, "")


def _has_sensitive_key(value: Any) -> bool:
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str) or is_sensitive_name(k):
                return True
            if isinstance(v, (dict, list)) and _has_sensitive_key(v):
                return True
    elif isinstance(value, list):
        return any(isinstance(v, (dict, list)) and _has_sensitive_key(v) for v in value)
    return False


_SENSITIVE_WORDS = ("pass", "secret", "token", "key", "authorization", "credential", "signature", "session",
                    "cookie", "assertion")
"""A word every name :data:`_SENSITIVE_NAME` matches contains (``api_key`` has ``key``)."""
_KEY_VALUE = re.compile(
    r"""(?<![\w.\-])(?P<q>["']?)(?P<key>[\w.\-]{1,64})(?P=q)(?P<sep>\s*[:=]\s*)"""
    r"""(?P<value>"(?:[^"\\]|\\.)*"?|'[^']*'?|[^\s&,;}\]?]+)"""
)
"""A ``key: value`` or ``key=value`` pair in text that is not parsed: JSON cut at a size
limit, a form, a header line. Tried only at the start of a word, and only on text where a
secret-sounding name appears at all, so a long body costs one scan. An unquoted value stops at
``?`` too, so that in ``https://host/cb?access_token=…`` the scan, going on after each pair,
meets ``access_token`` (a secret's value goes on past a ``?``: :data:`_REST`)."""
_REST = re.compile(r"[^\s&,;}\]]*")


_AUTH_SCHEMES = frozenset({"basic", "bearer", "token", "digest", "negotiate", "mac", "hoba", "apikey"})
_NEXT_WORD = re.compile(r"[ \t]+[^\s,;&]+")


def _closing(text: str, start: int) -> int:
    """The end of the JSON-like object or array opening at ``text[start]``: after its closing
    bracket, or the end of the text when it was cut first. Brackets inside strings are skipped."""
    depth, in_string, escaped = 0, False, False
    for i in range(start, len(text)):
        c = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "{[":
            depth += 1
        elif c in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
    return len(text)


def _forms(secret: str) -> set[str]:
    """The secret as it may appear in text lmsgate shows: as it is, percent-encoded the ways
    clients and servers do (``quote`` with and without ``/`` kept, ``+`` for spaces, JavaScript's
    ``encodeURIComponent``, which keeps ``!'()*``; escapes in upper or lower case), escaped
    inside a JSON string (``\\"``, ``\\u00fc``, PHP's ``\\/``), and base64-encoded."""
    encoded = {quote(secret, safe=""), quote(secret), quote_plus(secret), quote(secret, safe="!'()*"),
               quote_plus(secret, safe="!'()*")}
    encoded |= {_LOWER_ESCAPES.sub(lambda m: m[0].lower(), f) for f in encoded}
    escaped = {json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    escaped |= {f.replace("/", "\\/") for f in escaped}
    forms = {secret, *encoded, *escaped, base64.b64encode(secret.encode()).decode()}
    return {f for f in forms if len(f) >= _MIN_SECRET}


_LOWER_ESCAPES = re.compile("%[0-9A-F]{2}")


class Redactor:
    """Masks the given secrets (and sensitive names) in strings, URLs, headers and JSON."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._headers: dict[tuple[str, str], tuple[str, str]] = {}
        self.add(*secrets)

    def add(self, *secrets: str | None) -> None:
        for s in secrets:
            if s:
                self._values |= _forms(s)
        if self._values:
            ordered = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))
        self._headers = {}

    def add_basic_pair(self, username: str, password: str) -> None:
        """Also mask the base64 form of a Basic auth pair (and its halves)."""
        self.add(username, password, base64.b64encode(f"{username}:{password}".encode()).decode())

    def leaves_alone(self, raw_json: bytes, value: Any) -> bool:
        """Whether :meth:`data` would return ``value``, parsed from ``raw_json``, unchanged: no
        key has a sensitive name and no secret appears in the text. Text with escapes (``\\``)
        is never judged so, since an escaped secret does not appear in it as written."""
        if b"\\" in raw_json or _has_sensitive_key(value):
            return False
        if self._pattern is None:
            return True
        try:
            return self._pattern.search(raw_json.decode("utf-8")) is None
        except UnicodeDecodeError:
            return False

    def text(self, value: str) -> str:
        if self._pattern is None or not value:
            return value
        return self._pattern.sub(MASK, value)

    def unparsed(self, value: str) -> str:
        """Text that may hold structured data this process could not parse (a body cut at a
        size limit, a form, a provider's text error): secrets masked by value, and by name where
        a secret-sounding name is followed by ``:`` or ``=``; an object or array under such a
        name is masked whole, to its closing bracket (or the end of the text)."""
        lowered = value.lower()
        if any(word in lowered for word in _SENSITIVE_WORDS):  # str.find in C; the regex is slower
            out: list[str] = []
            at = 0
            while (m := _KEY_VALUE.search(value, at)) is not None:  # each character read once or twice
                if not is_sensitive_name(m["key"]):
                    out.append(value[at:m.end()])
                    at = m.end()
                    continue
                found = m["value"]
                quote_char = found[:1] if found[:1] in "\"'" else ""
                if found[:1] in "{[":
                    end = _closing(value, m.start("value"))
                elif found.lower() in _AUTH_SCHEMES:  # "Authorization: Bearer <token>": the token too
                    following = _NEXT_WORD.match(value, m.end())
                    end = following.end() if following else m.end()
                elif quote_char:
                    end = m.end()
                else:  # unquoted: up to where it ends, "?" included
                    end = _REST.match(value, m.end()).end()  # type: ignore[union-attr]  # matches empty
                out.append(value[at:m.start()])
                out.append(f"{m['q']}{m['key']}{m['q']}{m['sep']}{quote_char}{MASK}{quote_char}")
                at = end
            value = "".join(out) + value[at:]
        return self.text(value)

    def url(self, url: str) -> str:
        if ("?" not in url and "@" not in url and "#" not in url and url.isprintable()
                and not url.startswith(" ")):  # nothing urlsplit would mask, drop or rewrite
            return self.text(url)
        return self._split_url(url)

    def _split_url(self, url: str) -> str:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            netloc = MASK + "@" + netloc.rsplit("@", 1)[1]
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            masked = [(k, MASK if is_sensitive_name(k) else v) for k, v in pairs]
            query = urlencode(masked, safe=":/[]{}\"',@")
        return self.text(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))

    def headers(self, headers: Iterable[tuple[str, str]]) -> dict[str, str]:
        out: dict[str, str] = {}
        seen = self._headers  # most headers repeat from call to call: each is masked once
        for pair in headers:
            masked = seen.get(pair)
            if masked is None:
                name, value = pair
                key = name.lower()
                if key in SENSITIVE_HEADERS or is_sensitive_name(key):
                    out[key] = MASK  # not remembered: the value may be a secret
                    continue
                masked = (key, self.unparsed(value))  # a Location's or Link's ?access_token=… too
                if len(seen) >= 1024:
                    seen.clear()
                seen[pair] = masked
            out[masked[0]] = masked[1]
        return out

    def data(self, value: Any) -> Any:
        """A JSON-like value with secrets masked by value and by key name."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): MASK if _masked_key(k, v) else self.data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.data(v) for v in value]
        return value


# ---------------------------------------------------------------- process-wide log filter

_known = Redactor()
_known_lock = threading.Lock()
_in_context: ContextVar[tuple[Redactor, ...]] = ContextVar("lmsgate_masked_in_context", default=())


def remember_secrets(*secrets: str | None) -> None:
    """Add secrets to the process-wide set the log filter masks: the operator's own (an API key
    given in the environment), not a tenant's (see :func:`mask_in_context`)."""
    with _known_lock:
        _known.add(*secrets)


def mask_in_context(redactor: Redactor) -> None:
    """Mask ``redactor``'s secrets (an account's credentials, and the tokens it obtains later)
    in every log line written from now on by the current task, and the threads it starts.

    Per task, not process-wide: a process-wide set grew with every account ever called (the
    pattern was compiled again for each, and every log line of every request was matched
    against all of them: 6.4 ms a line at 6,000 accounts), and one tenant could blank words out
    of every other tenant's log lines by linking an account with those words as its password."""
    current = _in_context.get()
    if not any(r is redactor for r in current):
        _in_context.set((*current, redactor))


def masked_text(text: str) -> str:
    """``text`` with the process's secrets and those of the current task masked."""
    text = _known.text(text)
    for redactor in _in_context.get():
        text = redactor.text(text)
    return text


class _RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is not ours to fix here
            return True
        cleaned = masked_text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_LOGGERS = ("lmsgate", "lmsgate.http", "lmsgate.api", "lmsgate.connectors", "lmsgate.service", "httpx",
            "httpcore", "httpcore.connection", "httpcore.http11",
            "httpcore.http2", "httpcore.proxy", "hpack", "uvicorn.error")
_installed = False


def install_log_redaction() -> None:
    """Attach the masking filter to the loggers that may see provider traffic (idempotent)."""
    global _installed
    if _installed:
        return
    filt = _RedactingFilter()
    for name in _LOGGERS:
        logging.getLogger(name).addFilter(filt)
    _installed = True
