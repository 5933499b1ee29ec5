"""Helpers shared by the tests (imported as ``support``; ``tests/`` is on the path)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi.testclient import TestClient

from lmsgate.bootstrap import Container


def basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


@dataclass
class Tenant:
    """A project with one API key and one local linked account, and a client bound to them."""

    client: TestClient
    container: Container
    project_id: str
    account_id: str
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": basic(self.api_key), "x-account-id": self.account_id}

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {**self.headers, **kw.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kw)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("PUT", path, **kw)

    def patch(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", path, **kw)


SEED_COMPLETION = {
    "completed_at": "2021-07-21T14:00:00.000Z",
    "learning_object_external_reference": "learning-content-123",
    "learning_object_id": "e3gd34-23tr21-er234-345er56",
    "passthrough": {"other_known_names": "John Doe"},
    "time_spent": "PT1H30M45S",
}


def assert_stackone_error(resp: httpx.Response, status: int, *mentions: str) -> dict[str, Any]:
    """The body must be StackOne's error shape, with the given status, naming each mention."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert body["statusCode"] == status
    assert isinstance(body["message"], str) and body["message"]
    assert body["timestamp"].endswith("Z")
    for mention in mentions:
        assert mention in body["message"], (mention, body["message"])
    return body
