"""Process logging: one JSON object per line (or plain text), secrets masked, request ids attached.

``configure_logging`` is called once by ``lmsgate serve``. Every line carries ``ts`` (UTC, ISO
8601), ``level``, ``logger`` and ``msg``; a line written while a request is being served also
carries its ``request_id`` (the ``x-request-id`` answered to the client), and fields passed in
``extra={"fields": {...}}`` are merged in (the access log uses that).

Masking happens on the handler, so it covers every logger, the libraries' included: the
credentials of linked accounts and the tokens lmsgate obtained (the set kept by
:mod:`lmsgate.http`), and anything shaped like an lmsgate API key (``lmsg_…``), are replaced
by ``[REDACTED]`` in every value of the line (message, extra fields, traceback), never in
its keys, time, level or logger name. lmsgate never
logs a request body in the first place. httpcore's wire-level trace (raw headers, cookies
and tokens a provider hands out among them) is left out even at ``debug``.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

from lmsgate.http._redact import MASK, masked_text

__all__ = ["JsonFormatter", "configure_logging", "request_id_var"]

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("lmsgate_request_id", default=None)
"""The id of the request being served in this context (set by ``lmsgate.api.observe``)."""

_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "color_message"}


_API_KEY = re.compile(r"lmsg_[A-Za-z0-9_\-]{16,}")
"""The shape of the API keys lmsgate issues (a pinned ``LMSGATE_API_KEY`` is masked by value)."""


def _masked(text: str) -> str:
    return masked_text(_API_KEY.sub(MASK, text))


def _masked_value(value: Any) -> Any:
    """A line's value with secrets masked, strings inside dicts and lists too. Keys and the
    line's own fields (time, level, logger) are left alone: a credential that happens to
    read ``info`` must not rewrite them."""
    if isinstance(value, str):
        return _masked(value)
    if isinstance(value, dict):
        return {k: _masked_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_masked_value(v) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return _masked(str(value))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": _masked(record.getMessage()),
        }
        request_id = request_id_var.get()
        if request_id:
            line["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update({k: _masked_value(v) for k, v in fields.items()})
        for key, value in record.__dict__.items():  # other ``extra=`` values
            if key not in _RESERVED and key != "fields" and not key.startswith("_"):
                line.setdefault(key, _masked_value(value))
        if record.exc_info:
            line["exc"] = _masked(self.formatException(record.exc_info))
        return orjson.dumps(line, default=str).decode()


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        head = f"{self.formatTime(record)} {record.levelname} {record.name} "
        text = super().format(record)
        if text.startswith(head):  # the time, level and logger stay as they are
            text = head + _masked(text[len(head):])
        else:
            text = _masked(text)
        request_id = request_id_var.get()
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            text += " " + " ".join(f"{k}={_masked_value(v)}" for k, v in fields.items())
        return f"{text} request_id={request_id}" if request_id else text


def make_handler(fmt: str, stream: Any = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else
                         _TextFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    return handler


def configure_logging(level: str = "info", fmt: str = "json", stream: Any = None) -> None:
    """Send every log record to standard error in ``fmt``, from ``level`` up."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(make_handler(fmt, stream))
    root.setLevel(level.upper())
    logging.getLogger("alembic").setLevel(logging.WARNING)
    for name in ("httpcore", "hpack"):  # their debug lines are raw wire traces, headers and all
        logging.getLogger(name).setLevel(max(logging.INFO, root.level))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):  # uvicorn's own handlers would print twice
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
