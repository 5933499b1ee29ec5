"""Process logging: one JSON object per line (or plain text), secrets masked, request ids attached.

``configure_logging`` is called once by ``lmsgate serve``. Every line carries ``ts`` (UTC, ISO
8601), ``level``, ``logger`` and ``msg``; a line written while a request is being served also
carries its ``request_id`` (the ``x-request-id`` answered to the client), and fields passed in
``extra={"fields": {...}}`` are merged in (the access log uses that).

Masking happens on the handler, so it covers every logger, the libraries' included: the
credentials of linked accounts and the tokens lmsgate obtained (the set kept by
:mod:`lmsgate.http`), and anything shaped like an lmsgate API key (``lmsg_…``), are replaced
by ``[REDACTED]`` in the finished line, extra fields and tracebacks included. lmsgate never
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

from lmsgate.http._redact import MASK, _known, _RedactingFilter

__all__ = ["JsonFormatter", "configure_logging", "request_id_var"]

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("lmsgate_request_id", default=None)
"""The id of the request being served in this context (set by ``lmsgate.api.observe``)."""

_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "color_message"}


_API_KEY = re.compile(r"lmsg_[A-Za-z0-9_\-]{16,}")
"""The shape of the API keys lmsgate issues (a pinned ``LMSGATE_API_KEY`` is masked by value)."""


def _masked(line: str) -> str:
    return _known.text(_API_KEY.sub(MASK, line))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return _masked(self._format(record))

    def _format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            line["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        for key, value in record.__dict__.items():  # other ``extra=`` values
            if key not in _RESERVED and key != "fields" and not key.startswith("_"):
                line.setdefault(key, value)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        request_id = request_id_var.get()
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            text += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        return _masked(f"{text} request_id={request_id}" if request_id else text)


class _MaskLine(logging.Filter):
    """Mask known secrets in the finished line of any logger (a handler filter)."""

    def __init__(self) -> None:
        super().__init__()
        self._mask = _RedactingFilter()

    def filter(self, record: logging.LogRecord) -> bool:
        return self._mask.filter(record)


def make_handler(fmt: str, stream: Any = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else
                         _TextFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(_MaskLine())
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
