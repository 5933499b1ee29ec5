"""``lmsgate serve`` as a user runs it: a real process on a free port."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from support import SEED_COMPLETION, basic, serving

def test_first_run_creates_key_and_account_and_they_work(tmp_path: Path) -> None:
    with serving(tmp_path, {}) as (_base, output):
        pass
    text = output[0]
    key = re.search(r"(lmsg_[A-Za-z0-9_-]+)", text)
    account = re.search(r"Local account id: (\S+)", text)
    assert key and account, text
    assert (tmp_path / ".lmsgate" / "lmsgate.db").exists()

    # restart: same database, the key still works, no new key is printed
    with serving(tmp_path, {}) as (base, output2):
        headers = {"Authorization": basic(key.group(1)), "x-account-id": account.group(1)}
        resp = httpx.post(f"{base}/unified/lms/users/u1/completions", json=SEED_COMPLETION, headers=headers)
        assert resp.status_code == 201, resp.text
    assert "lmsg_" not in output2[0]


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_pinned_key_and_account_survive_restart(tmp_path: Path, store: str, request: pytest.FixtureRequest) -> None:
    url = (f"sqlite:///{tmp_path}/pinned.db" if store == "sqlite"
           else request.getfixturevalue("postgres_url"))
    env = {"LMSGATE_API_KEY": "ci-pinned-key-0123456789", "LMSGATE_ACCOUNT_ID": "acct-pinned",
           "LMSGATE_DATABASE_URL": url}
    headers = {"Authorization": basic(env["LMSGATE_API_KEY"]), "x-account-id": "acct-pinned"}
    with serving(tmp_path, env) as (base, output):
        created = httpx.post(f"{base}/unified/lms/users/u1/completions", json=SEED_COMPLETION, headers=headers)
        assert created.status_code == 201, created.text
        cid = created.json()["data"]["id"]
        spec = httpx.get(f"{base}/openapi.json").json()
        assert "/unified/lms/users/{id}/completions" in spec["paths"]
    assert env["LMSGATE_API_KEY"] not in output[0]  # a pinned secret is never echoed
    with serving(tmp_path, env) as (base, _):
        got = httpx.get(f"{base}/unified/lms/completions/{cid}", headers=headers)
        assert got.status_code == 200
        assert got.json()["data"]["time_spent"] == "PT1H30M45S"
