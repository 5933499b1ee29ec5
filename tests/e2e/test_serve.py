"""``lmsgate serve`` as a user runs it: a real process on a free port."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import httpx
import pytest
from support import LMSGATE, SEED_COMPLETION, basic, free_port, serving, shared_vault_key_file

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
    if store == "postgresql":  # the suite's database: its sealed credentials need the suite's key
        env["LMSGATE_VAULT_KEY_FILE"] = shared_vault_key_file()
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


MISTAKES = [
    # (command, environment, what the one line must say, exit code)
    (["serve"], {"LMSGATE_API_KEY": "short-key"}, "LMSGATE_API_KEY: an API key must be at least 16 characters", 2),
    (["serve"], {"LMSGATE_LOG_LEVEL": "loud"}, "LMSGATE_LOG_LEVEL: unknown level 'loud'", 2),
    (["serve"], {"LMSGATE_RATE_LIMIT_PER_MINUTE": "-1"}, "LMSGATE_RATE_LIMIT_PER_MINUTE: Input should be", 2),
    (["serve"], {"LMSGATE_ACCOUNT_ID": "a/b"}, "LMSGATE_ACCOUNT_ID: String should match pattern", 2),
    (["serve", "--database-url", "mysql://root:hunter2-secret@127.0.0.1:1/x"], {},
     "--database-url (or LMSGATE_DATABASE_URL) mysql://root:***@127.0.0.1:1/x is not a database URL lmsgate "
     "can use: lmsgate runs on SQLite or PostgreSQL", 2),
    # the variable is named too when the URL came from it (it used to name only the option)
    (["serve"], {"LMSGATE_DATABASE_URL": "mysql://root:hunter2-secret@127.0.0.1:1/x"},
     "LMSGATE_DATABASE_URL) mysql://root:***@127.0.0.1:1/x is not a database URL", 2),
    (["serve", "--database-url", "postgresql://u:hunter2-secret@127.0.0.1:1/x"], {},
     "cannot open the database postgresql://u:***@127.0.0.1:1/x", 1),
    (["migrate", "--database-url", "postgresql//nothing"], {}, "is not a database URL lmsgate can use", 2),
    (["vault", "rotate"], {"LMSGATE_LOG_LEVEL": "loud"}, "LMSGATE_LOG_LEVEL: unknown level", 2),
    (["serve"], {"LMSGATE_VAULT_KEY": "not-a-key"}, "LMSGATE_VAULT_KEY: key [0]: a vault key is 32 bytes", 2),
    (["migrate"], {"LMSGATE_OUTBOUND_ALLOW_NETWORKS": "10.0.0/33x"},
     "LMSGATE_OUTBOUND_ALLOW_NETWORKS: '10.0.0/33x' is not a network", 2),
    (["openapi"], {"LMSGATE_LOG_LEVEL": "loud"}, "LMSGATE_LOG_LEVEL: unknown level", 2),
    (["serve", "--port", "99999"], {}, "--port (or LMSGATE_PORT): Input should be less than or equal to 65535", 2),
    # a read or a change of an existing store, on a path that holds none: a typo, not a new store
    (["keys", "list", "--database-url", "sqlite:///typo/x.db"], {}, "no lmsgate database at", 1),
    (["completions", "export", "--database-url", "sqlite:///typo/x.db"], {}, "no lmsgate database at", 1),
]


@pytest.mark.parametrize(("args", "env", "message", "code"), MISTAKES,
                         ids=[" ".join(m[0][:1]) + ":" + (next(iter(m[1]), None) or m[0][-1][:10]) for m in MISTAKES])
def test_a_mistake_in_the_setup_is_one_line_not_a_stack_trace(
        tmp_path: Path, args: list[str], env: dict[str, str], message: str, code: int) -> None:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("LMSGATE_")}
    if "--database-url" not in args:
        env = {"LMSGATE_DATABASE_URL": f"sqlite:///{tmp_path}/x.db", **env}
    port = ["--port", str(free_port())] if args[0] == "serve" and "--port" not in args else []
    done = subprocess.run([*LMSGATE, *args, *port],
                          cwd=tmp_path, env={**inherited, **env}, capture_output=True, text=True, timeout=60)
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr and "hunter2-secret" not in done.stdout + done.stderr
    first = done.stderr.strip().splitlines()[0]
    assert first.startswith("Error: ") and message in first, done.stderr
    made = [p.name for p in tmp_path.iterdir()]
    assert made == [], made  # nothing was made: no database, no directory for one
    if "LMSGATE_API_KEY" in env:
        # a corrected start is a first run
        fixed = {**env, "LMSGATE_API_KEY": "a-long-enough-key-0123"}
        with serving(tmp_path, fixed) as (base, output):
            resp = httpx.get(f"{base}/unified/lms/completions", headers={
                "Authorization": basic(fixed["LMSGATE_API_KEY"])})
            assert resp.status_code in (200, 400), resp.text  # authenticated (400: no account header)
        assert "Local account id:" in output[0]
