"""``lmsgate accounts``: prompts come from the connector's declaration, secrets are not echoed,
and link, list, test, disable and enable act through the linked-accounts service."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from lmsgate.bootstrap import Container, bootstrap
from lmsgate.cli.main import app
from lmsgate.connectors.linking import open_credentials
from lmsgate.errors import PreconditionFailed
from lmsgate.settings import Settings

runner = CliRunner()
SECRET = "lrs-secret-that-must-not-show"


@pytest.fixture
def db(tmp_path: Path) -> tuple[str, dict[str, str], Container]:
    url = f"sqlite:///{tmp_path / 'accounts.db'}"
    env = {"LMSGATE_VAULT_KEY_FILE": str(tmp_path / "vault.key"), "LMSGATE_OUTBOUND_ALLOW_NETWORKS": "127.0.0.1/32",
           "COLUMNS": "250", "LMSGATE_OUTBOUND_MAX_RETRIES": "0"}
    container = bootstrap(Settings(database_url=url, vault_key_file=env["LMSGATE_VAULT_KEY_FILE"],
                                   outbound_allow_networks=["127.0.0.1/32"]))
    return url, env, container


def _invoke(db: tuple[str, dict[str, str], Container], *args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    url, env, _ = db
    return runner.invoke(app, [*args, "--database-url", url], input=input, env=env)


def test_link_asks_for_each_declared_setting_and_hides_secrets(db: tuple[str, dict[str, str], Container]) -> None:
    answers = ["basic", "http://127.0.0.1:1/xAPI/", "https://lms.example.com/activities/", "https://lms.example.com",
               "", "lmsgate", "", "lrs-key", SECRET, "cust-1", "Customer One"]
    result = _invoke(db, "accounts", "link", "xapi", "--label", "main LRS", input="\n".join(answers) + "\n")
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output and "lrs-key" not in result.output  # both are secret fields
    for prompt in ("auth_type:", "endpoint:", "activity_base_iri:", "xapi_version:", "username:", "password:"):
        assert prompt in result.stderr
    assert "client_secret:" not in result.stderr  # belongs to the other auth variant
    account_id = result.stdout.strip().splitlines()[-1]  # the runner echoes typed answers before it
    account = db[2].tenancy.get_account(account_id)
    assert account is not None and account.provider == "xapi" and account.label == "main LRS"
    assert account.config["endpoint"] == "http://127.0.0.1:1/xAPI/" and account.config["query_filters"] == "lmsgate"
    assert account.config["xapi_version"] == "1.0.3"  # the declared default, taken on Enter
    assert account.credentials and SECRET not in account.credentials  # sealed by the vault
    assert open_credentials(db[2].vault, account) == {"username": "lrs-key", "password": SECRET}

    listed = _invoke(db, "accounts", "list")
    assert listed.exit_code == 0 and account_id in listed.stdout and "xapi" in listed.stdout
    assert SECRET not in listed.stdout and "endpoint=http://127.0.0.1:1/xAPI/" in listed.stdout

    checked = _invoke(db, "accounts", "test", account_id)
    assert checked.exit_code == 1 and f"xapi account {account_id} failed its check" in checked.stderr
    assert SECRET not in checked.output and "Traceback" not in checked.output


def test_link_without_prompts_takes_settings_or_says_what_is_missing(db: tuple[str, dict[str, str], Container]) -> None:
    missing = _invoke(db, "accounts", "link", "xapi", "--no-input", "--set", "endpoint=https://lrs.example.com/xAPI/")
    assert missing.exit_code == 2  # settings missing from the command line
    assert "needs: activity_base_iri, actor_homepage, username, password" in missing.stderr
    unknown = _invoke(db, "accounts", "link", "xapi", "--no-input", "--set", "endpoit=https://x")
    assert unknown.exit_code == 2 and "not a setting of the xapi connector" in unknown.stderr  # the command line
    bad_form = _invoke(db, "accounts", "link", "xapi", "--set", "endpoint")
    assert bad_form.exit_code == 2 and "NAME=VALUE" in bad_form.stderr
    nobody = _invoke(db, "accounts", "link", "moodle-9000", "--no-input")
    assert nobody.exit_code == 2 and "installed: local, xapi" in nobody.stderr
    bad_url = _invoke(db, "accounts", "link", "xapi", "--no-input", "--set", "endpoint=lrs.example.com",
                      "--set", "activity_base_iri=https://lms.example.com/a/", "--set", "actor_homepage=https://x.y",
                      "--set", "username=u", "--set", f"password={SECRET}")
    assert bad_url.exit_code == 1 and "setup_information.endpoint" in bad_url.stderr and SECRET not in bad_url.output

    linked = _invoke(db, "accounts", "link", "xapi", "--no-input", "--id", "lrs-acme", "--owner-id", "acme",
                     "--set", "auth_type=oauth2_client_credentials", "--set", "endpoint=https://lrs.example.com/xAPI/",
                     "--set", "activity_base_iri=https://lms.example.com/a/", "--set", "actor_homepage=https://x.y",
                     "--set", "token_url=https://auth.example.com/token", "--set", "client_id=lmsgate",
                     "--set", f"client_secret={SECRET}", "--set", "max_requests_per_second=2.5")
    assert linked.exit_code == 0, linked.output
    assert linked.stdout.strip() == "lrs-acme"
    account = db[2].tenancy.get_account("lrs-acme")
    assert account is not None and account.config["auth_type"] == "oauth2_client_credentials"
    assert account.config["max_requests_per_second"] == 2.5 and account.origin_owner_name == "acme"
    settings = ("endpoint=https://lrs.example.com/xAPI/", "activity_base_iri=https://l.example/a/",
                "actor_homepage=https://x.y", "username=u", "password=p")
    again = _invoke(db, "accounts", "link", "xapi", "--no-input", "--id", "lrs-acme",
                    *[arg for setting in settings for arg in ("--set", setting)])
    assert again.exit_code == 1 and "already exists" in again.stderr


def test_disable_and_enable_a_local_account(db: tuple[str, dict[str, str], Container]) -> None:
    linked = _invoke(db, "accounts", "link", "local", "--no-input", "--owner-id", "me")
    assert linked.exit_code == 0, linked.output
    account_id = linked.stdout.strip()
    tested = _invoke(db, "accounts", "test", account_id)
    assert tested.exit_code == 0 and "OK" in tested.stderr

    disabled = _invoke(db, "accounts", "disable", account_id)
    assert disabled.exit_code == 0 and "412" in disabled.stderr
    container = db[2]
    project = container.tenancy.get_account(account_id).project_id
    container.tenancy.forget_account(account_id)
    with pytest.raises(PreconditionFailed):
        container.resolver.account(project, account_id)
    assert "inactive" in _invoke(db, "accounts", "list").stdout
    assert "already inactive" in _invoke(db, "accounts", "disable", account_id).stderr

    assert _invoke(db, "accounts", "enable", account_id).exit_code == 0
    container.tenancy.forget_account(account_id)  # another process changed it: do not wait for the cache
    assert container.resolver.account(project, account_id).status == "active"
    missing = _invoke(db, "accounts", "disable", "nope")
    assert missing.exit_code == 1 and "no linked account 'nope'" in missing.stderr


def test_projects_are_made_and_listed_and_their_keys_reach_only_their_accounts(
        db: tuple[str, dict[str, str], Container]) -> None:
    """`lmsgate projects create` makes a second tenant from the command line; its key reaches
    its own linked account and answers 404 for the other project's, as docs/security.md says."""
    from fastapi.testclient import TestClient

    from lmsgate.api.app import create_app

    empty = _invoke(db, "projects", "list")
    assert empty.exit_code == 0 and "No projects yet" in empty.output
    made = _invoke(db, "projects", "create", "Acme Corp", "--with-key")
    assert made.exit_code == 0, made.output
    acme, acme_key = made.stdout.split()[-2:]
    other = _invoke(db, "projects", "create", "Beta")
    beta = other.stdout.split()[-1]
    beta_key = _invoke(db, "keys", "create", "--project", beta, "--name", "beta-app").stdout.split()[-1]
    for project in (acme, beta):
        linked = _invoke(db, "accounts", "link", "local", "--project", project, "--id", f"acct-{project[-4:]}",
                         "--no-input")
        assert linked.exit_code == 0, linked.output
    listed = _invoke(db, "projects", "list")
    assert listed.exit_code == 0, listed.output
    rows = [line.split() for line in listed.stdout.splitlines() if line.strip().startswith(("01", "0"))]
    assert [(r[0], r[-2], r[-1]) for r in rows] == [(acme, "1", "1"), (beta, "1", "1")]
    assert "Acme Corp" in listed.stdout
    assert _invoke(db, "projects", "create", " ").exit_code == 2  # a wrong command line

    with TestClient(create_app(db[2])) as client:
        def post(key: str, account: str) -> int:
            return client.post("/unified/lms/users/u1/completions", auth=(key, ""), headers={"x-account-id": account},
                               json={"learning_object_external_reference": "c-1"}).status_code

        assert post(acme_key, f"acct-{acme[-4:]}") == 201
        assert post(beta_key, f"acct-{beta[-4:]}") == 201
        assert post(acme_key, f"acct-{beta[-4:]}") == 404  # another project's account: as if it did not exist
