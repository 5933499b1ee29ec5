"""Helpers for tests that link provider accounts through ``POST /accounts``."""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any

from support import Tenant

ACTOR_HOMEPAGE = "https://lms.example.com"
ACTIVITY_BASE = "https://content.example.com/activities/"


def new_secret(prefix: str) -> str:
    """A credential no test output could contain by chance."""
    return f"{prefix}-{secrets.token_hex(12)}"


def xapi_setup(endpoint: str, **extra: Any) -> dict[str, Any]:
    return {"endpoint": endpoint, "activity_base_iri": ACTIVITY_BASE, "actor_homepage": ACTOR_HOMEPAGE, **extra}


def link(tenant: Tenant, provider: str, setup: dict[str, Any] | None, credentials: dict[str, Any] | None,
         **fields: Any) -> dict[str, Any]:
    body = {"provider": provider, "origin_owner_id": "customer-1", "origin_owner_name": "Acme Corp",
            "setup_information": setup, "credentials": credentials, **fields}
    resp = tenant.post("/accounts", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()


def on_account(tenant: Tenant, account_id: str) -> Tenant:
    """The same tenant (key and client), calling with another linked account."""
    return dataclasses.replace(tenant, account_id=account_id)


def completion(ref: str = "learning-content-123", **fields: Any) -> dict[str, Any]:
    return {"learning_object_external_reference": ref, "completed_at": "2021-07-21T14:00:00.000Z",
            "time_spent": "PT1H30M45S", "result": {"value": "Pass"},
            "score": {"percentage": 87, "raw_value": "87 / 100"}, **fields}
