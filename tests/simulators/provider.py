"""A misbehaving provider: a small xAPI LRS over real HTTP on 127.0.0.1, with scripted faults.

It keeps statements in memory and answers the parts of xAPI the connector uses:
``PUT /xapi/statements?statementId=…`` (204, or 409 for a different statement under the same
id), ``GET /xapi/statements`` (by ``statementId``, or filtered by ``verb``, ``agent``,
``activity`` and ``since``, paged with ``limit`` and ``more``), and an OAuth 2.0 client
credentials token endpoint at ``POST /oauth/token``.

Before answering, it takes the next scripted fault, if any: a status with headers and body,
a connection reset (RST, no answer at all), a body that is not JSON, or a delay. Every request
is recorded with its arrival time, so tests can measure what lmsgate waited.
"""

from __future__ import annotations

import base64
import itertools
import json
import secrets
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit


@dataclass
class Fault:
    kind: str  # "status" | "reset" | "not_json" | "delay"
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    seconds: float = 0.0
    path: str | None = None
    """Only requests whose path ends with this take the fault; others pass it by."""


def status(code: int, headers: dict[str, str] | None = None, body: Any = None, path: str | None = None) -> Fault:
    return Fault("status", status=code, headers=headers or {}, body=body, path=path)


def reset(path: str | None = None) -> Fault:
    return Fault("reset", path=path)


def not_json(path: str | None = None) -> Fault:
    return Fault("not_json", path=path)


def delay(seconds: float, path: str | None = None) -> Fault:
    return Fault("delay", seconds=seconds, path=path)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (lmsgate's timeout) breaks the pipe; that is the point


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    at: float
    body: bytes


class ProviderSimulator:
    def __init__(self, username: str, password: str, client_id: str = "sim-client",
                 client_secret: str = "", token_lifetime: int = 3600) -> None:
        self.username, self.password = username, password
        self.client_id = client_id
        self.client_secret = client_secret or "cs-" + secrets.token_hex(8)
        self.token_lifetime = token_lifetime
        self.statements: dict[str, dict[str, Any]] = {}
        self.order: list[str] = []
        self.faults: deque[Fault] = deque()
        self.seen: list[Seen] = []
        self.tokens: set[str] = set()
        self.issued: list[str] = []
        self.lock = threading.Lock()
        self._counter = itertools.count(1)
        self.server = _QuietServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # ------------------------------------------------------------ control

    def __enter__(self) -> ProviderSimulator:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def endpoint(self) -> str:
        return self.base + "/xapi/"

    @property
    def token_url(self) -> str:
        return self.base + "/oauth/token"

    def script(self, *faults: Fault) -> None:
        with self.lock:
            self.faults.extend(faults)

    def clear(self) -> None:
        with self.lock:
            self.faults.clear()
            self.seen.clear()

    def revoke_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    def requests_to(self, suffix: str, method: str | None = None) -> list[Seen]:
        return [s for s in self.seen if s.path.endswith(suffix) and (method is None or s.method == method)]

    def _next_fault(self, path: str) -> Fault | None:
        with self.lock:
            for i, fault in enumerate(self.faults):
                if fault.path is None or path.endswith(fault.path):
                    del self.faults[i]
                    return fault
        return None

    # ------------------------------------------------------------ HTTP

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        sim = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def finish(self) -> None:
                try:
                    super().finish()
                except OSError:
                    pass

            def _answer(self, code: int, body: Any = None, headers: dict[str, str] | None = None,
                        raw: bytes | None = None, content_type: str = "application/json") -> None:
                data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
                self.send_response(code)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                if data:
                    self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)
                self.close_connection = True

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                seen = Seen(self.command, parts.path, parse_qs(parts.query), dict(self.headers.items()),
                            time.monotonic(), body)
                with sim.lock:
                    sim.seen.append(seen)
                fault = sim._next_fault(parts.path)
                if fault is not None:
                    if fault.kind == "reset":
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        self.connection.close()
                        self.close_connection = True
                        return
                    if fault.kind == "not_json":
                        self._answer(200, raw=b"<html><body>Service temporarily in maintenance</body></html>",
                                     content_type="text/html")
                        return
                    if fault.kind == "status":
                        self._answer(fault.status, fault.body, fault.headers)
                        return
                    if fault.kind == "delay":
                        time.sleep(fault.seconds)
                if parts.path == "/oauth/token":
                    self._token(body)
                    return
                if not self._authorised():
                    self._answer(401, {"error": "unauthorised"}, {"WWW-Authenticate": 'Basic realm="lrs"'})
                    return
                if parts.path == "/xapi/statements" and self.command == "PUT":
                    self._put(seen)
                elif parts.path == "/xapi/statements" and self.command == "GET":
                    self._get(seen)
                else:
                    self._answer(404, {"error": "no such resource"})

            do_GET = do_PUT = do_POST = _handle

            def _authorised(self) -> bool:
                auth = self.headers.get("Authorization") or ""
                if auth.startswith("Bearer "):
                    with sim.lock:
                        return auth[7:] in sim.tokens
                basic = base64.b64encode(f"{sim.username}:{sim.password}".encode()).decode()
                return auth == f"Basic {basic}"

            def _token(self, body: bytes) -> None:
                expected = base64.b64encode(f"{sim.client_id}:{sim.client_secret}".encode()).decode()
                form = parse_qs(body.decode())
                if self.headers.get("Authorization") != f"Basic {expected}":
                    self._answer(401, {"error": "invalid_client"})
                    return
                if form.get("grant_type") != ["client_credentials"]:
                    self._answer(400, {"error": "unsupported_grant_type"})
                    return
                token = f"tok-{next(sim._counter)}-{secrets.token_hex(8)}"
                with sim.lock:
                    sim.tokens.add(token)
                    sim.issued.append(token)
                self._answer(200, {"access_token": token, "token_type": "Bearer",
                                   "expires_in": sim.token_lifetime})

            def _put(self, seen: Seen) -> None:
                sid = (seen.query.get("statementId") or [""])[0]
                statement = json.loads(seen.body)
                statement.setdefault("id", sid)
                with sim.lock:
                    existing = sim.statements.get(sid)
                    if existing is not None:
                        same = {k: v for k, v in existing.items() if k != "stored"} == statement
                        self._answer(204 if same else 409, None if same else {"error": "conflict"})
                        return
                    sim.statements[sid] = {**statement, "stored": "2024-01-01T00:00:00.000Z"}
                    sim.order.append(sid)
                self._answer(204)

            def _get(self, seen: Seen) -> None:
                q = {k: v[0] for k, v in seen.query.items()}
                if "statementId" in q:
                    found = sim.statements.get(q["statementId"])
                    if found is None:
                        self._answer(404, {"error": "not found"})
                    else:
                        self._answer(200, found, {"X-Experience-API-Consistent-Through": "2024-01-01T00:00:00Z"})
                    return
                agent = json.loads(q["agent"]) if "agent" in q else None
                with sim.lock:
                    rows = [sim.statements[i] for i in sim.order]
                rows = [s for s in rows
                        if ("verb" not in q or s["verb"]["id"] == q["verb"])
                        and ("activity" not in q or s["object"]["id"] == q["activity"])
                        and (agent is None or {k: v for k, v in s["actor"].items() if k != "objectType"} == agent)
                        and ("since" not in q or s.get("stored", "") > q["since"])]
                start = int(q.get("from", 0))
                limit = int(q.get("limit", 0)) or len(rows)
                page = rows[start:start + limit]
                body: dict[str, Any] = {"statements": page, "more": ""}
                if start + limit < len(rows):
                    rest = {**q, "from": str(start + limit)}
                    body["more"] = "/xapi/statements?" + urlencode(rest)
                self._answer(200, body)

        return Handler
