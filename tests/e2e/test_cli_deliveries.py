"""``lmsgate deliveries list|show|retry``, on the database and on a running server.

Deliveries are made as a client makes them: writes sent to a real ``lmsgate serve`` with
``Prefer: respond-async``. A delete of a completion the embedded LMS does not have is dead
at once (404 is permanent), which gives a dead-letter list to work on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lmsgate.bootstrap import bootstrap
from lmsgate.cli.main import app
from lmsgate.client import Accepted, Client, Retry
from lmsgate.settings import Settings
from support import serving

runner = CliRunner()


@dataclass
class Setup:
    url: str
    env: dict[str, str]
    base: str
    key: str
    account: str
    other: str
    dead: list[str]
    delivered: str

    def db(self, *args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(app, ["deliveries", *args, "--database-url", self.url], env=self.env)

    def remote(self, *args: str, key: str | None = None):  # type: ignore[no-untyped-def]
        return runner.invoke(app, ["deliveries", *args, "--server-url", self.base, "--api-key", key or self.key],
                             env=self.env)


def _settle(client: Client, delivery: str) -> str:
    deadline = time.monotonic() + 30
    while (status := client.deliveries.get_delivery(delivery).data.status) not in ("delivered", "dead"):
        assert time.monotonic() < deadline, f"{delivery} still {status}"
        time.sleep(0.1)
    return status


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("cli-deliveries")
    url = f"sqlite:///{tmp / 'deliveries.db'}"
    env = {"LMSGATE_DATABASE_URL": url, "LMSGATE_VAULT_KEY_FILE": str(tmp / "vault.key"),
           "LMSGATE_RATE_LIMIT_PER_MINUTE": "0"}
    c = bootstrap(Settings(database_url=url, vault_key_file=env["LMSGATE_VAULT_KEY_FILE"]))
    project = c.tenancy.create_project("cli")
    key = c.tenancy.issue_key(project, "cli-tests").secret
    account = c.tenancy.create_account(project, "local").id
    other = c.tenancy.create_account(project, "local").id
    c.engine.dispose()
    with serving(tmp, env) as (base, _), Client(key, server_url=base, retry=Retry.none()) as client:
        dead = []
        for i, acct in enumerate([account, account, account, other]):
            queued = client.lms.delete_user_completion("learner-1", f"missing-{i}", account_id=acct,
                                                       prefer_async=True)
            assert isinstance(queued, Accepted) and queued.delivery_id
            assert _settle(client, queued.delivery_id) == "dead"
            dead.append(queued.delivery_id)
        queued = client.lms.create_user_completion("learner-1", {"learning_object_external_reference": "c-1"},
                                                   account_id=account, prefer_async=True)
        assert isinstance(queued, Accepted) and queued.delivery_id
        assert _settle(client, queued.delivery_id) == "delivered"
        yield Setup(url, {**env, "COLUMNS": "250"}, base, key, account, other, dead, queued.delivery_id)


@pytest.mark.parametrize("where", ["db", "remote"])
def test_list_shows_a_table_filters_and_pages(setup: Setup, where: str) -> None:
    run = getattr(setup, where)
    listed = run("list")
    assert listed.exit_code == 0, listed.output
    for delivery in [*setup.dead, setup.delivered]:
        assert delivery in listed.stdout
    assert "delete_user_completion" in listed.stdout and "404" in listed.stdout and "dead" in listed.stdout

    dead = run("list", "--status", "dead", "--account-id", setup.account, "--json")
    assert dead.exit_code == 0, dead.output
    rows = [json.loads(line) for line in dead.stdout.splitlines()]
    assert [r["id"] for r in rows] == setup.dead[:3] and {r["status"] for r in rows} == {"dead"}

    first = run("list", "--status", "dead", "--limit", "2", "--json")
    assert [json.loads(line)["id"] for line in first.stdout.splitlines()] == setup.dead[:2]
    assert "more match" in first.stderr
    assert run("list", "--created-after", "2999-01-01T00:00:00Z").stderr.startswith("No deliveries match")


@pytest.mark.parametrize("where", ["db", "remote"])
def test_show_gives_the_attempts_and_the_error(setup: Setup, where: str) -> None:
    run = getattr(setup, where)
    shown = run("show", setup.dead[0])
    assert shown.exit_code == 0, shown.output
    out = shown.stdout
    assert setup.dead[0] in out and "DELETE /unified/lms/users/learner-1/completions/missing-0" in out
    assert "attempts" in out and "dead" in out and "404" in out
    assert f"lmsgate deliveries retry {setup.dead[0]}" in shown.stderr
    as_json = json.loads(run("show", setup.delivered, "--json").stdout)
    assert as_json["status"] == "delivered" and as_json["result"]["id"] and as_json["attempts"][0]["outcome"] == "delivered"

    missing = run("show", "no-such-delivery")
    assert missing.exit_code == 1 and "not found" in missing.stderr and "Traceback" not in missing.output


def test_retry_by_id_and_in_bulk_on_the_database(setup: Setup) -> None:
    one = setup.db("retry", setup.dead[0])
    assert one.exit_code == 0, one.output
    assert one.stdout.strip() == setup.dead[0] and "queued again" in one.stderr and "next sweep" in one.stderr
    # The running server did not hear of it; its sweep (every 2 s on SQLite) sends it again,
    # and the provider (a delete of a missing completion) refuses it again.
    deadline = time.monotonic() + 15
    while True:
        again = json.loads(setup.db("show", setup.dead[0], "--json").stdout)
        if again["attempt_count"] == 2 and again["status"] == "dead":
            break
        assert again["status"] in ("pending", "delivering", "dead"), again["status"]
        assert time.monotonic() < deadline, f"the server's sweep did not send the retry: {again['status']}"
        time.sleep(0.2)

    bulk = setup.db("retry", "--account-id", setup.other)
    assert bulk.exit_code == 0, bulk.output
    assert bulk.stdout.strip() == "1" and "1 dead deliveries queued again" in bulk.stderr
    none = setup.db("retry", "--created-after", "2999-01-01T00:00:00Z")
    assert none.exit_code == 0 and none.stdout.strip() == "0" and "nothing to retry" in none.stderr

    done = setup.db("retry", setup.delivered)
    assert done.exit_code == 1 and "already delivered" in done.stderr and "Traceback" not in done.output


def test_retry_on_a_server(setup: Setup) -> None:
    with Client(setup.key, server_url=setup.base) as client:
        for d in setup.dead:  # the database retries of the test before were sent by the sweep
            assert _settle(client, d) == "dead"
        before = {d: client.deliveries.get_delivery(d).data.attempt_count for d in setup.dead}
    nothing = setup.remote("retry", "--status", "pending")
    assert nothing.exit_code == 0 and nothing.stdout.strip() == "0", nothing.output
    bulk = setup.remote("retry", "--all")
    assert bulk.exit_code == 0, bulk.output
    assert int(bulk.stdout.strip()) == len(setup.dead)
    with Client(setup.key, server_url=setup.base) as client:
        for d in setup.dead:  # sent at once by the server, and refused again
            assert _settle(client, d) == "dead"
            assert client.deliveries.get_delivery(d).data.attempt_count == before[d] + 1
    one = setup.remote("retry", setup.dead[1])
    assert one.exit_code == 0 and one.stdout.strip() == setup.dead[1]
    conflict = setup.remote("retry", setup.delivered)
    assert conflict.exit_code == 1 and "409" in conflict.stderr and "already delivered" in conflict.stderr
    bad_key = setup.remote("list", key="lmsg_not-a-key")
    assert bad_key.exit_code == 1 and "401" in bad_key.stderr and "Traceback" not in bad_key.output


@pytest.mark.parametrize(("args", "message"), [
    (["retry"], "name a delivery to retry"),
    (["retry", "some-id", "--account-id", "x"], "with an ID, give only the ID"),
    (["retry", "--status", "delivered"], "only dead or pending"),
    (["list", "--status", "lost"], "use one of pending, delivering, delivered, dead"),
    (["list", "--created-after", "yesterday"], "--created-after"),
])
def test_usage_errors_say_what_to_change(setup: Setup, args: list[str], message: str) -> None:
    result = setup.db(*args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output


def test_remote_needs_an_api_key(setup: Setup) -> None:
    env = {k: v for k, v in setup.env.items() if k != "LMSGATE_API_KEY"}
    result = runner.invoke(app, ["deliveries", "list", "--server-url", setup.base], env={**env, "LMSGATE_API_KEY": ""})
    assert result.exit_code == 1 and "--api-key is required" in result.stderr


def test_help_names_every_command(tmp_path: Path) -> None:
    result = runner.invoke(app, ["deliveries", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for command in ("list", "show", "retry"):
        assert command in result.stdout
