"""``lmsgate vault rotate`` on a real database: every credential moves to the new key."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from typer.testing import CliRunner

from conftest import _pg_database
from lmsgate.bootstrap import Container, bootstrap
from lmsgate.cli.main import app
from lmsgate.connectors.linking import open_credentials, seal_credentials
from lmsgate.schema.accounts import LinkedAccountCreate
from lmsgate.settings import Settings
from lmsgate.vault import KeyFile, generate_key, vault_for


@pytest.fixture
def fresh_url(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'rotate.db'}"
    else:
        yield from _pg_database()


def _link(c: Container, project: str, password: str) -> str:
    body = LinkedAccountCreate.model_validate({
        "provider": "xapi", "origin_owner_id": "o", "origin_owner_name": "O",
        "setup_information": {"endpoint": "http://127.0.0.1:9/xAPI/",
                              "activity_base_iri": "https://lms.example.com/a/",
                              "actor_homepage": "https://lms.example.com"},
        "credentials": {"username": "key", "password": password}})
    return anyio.run(c.accounts.create, project, body).id


def test_rotate_reencrypts_everything(fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key_file = tmp_path / "vault.key"
    monkeypatch.setenv("LMSGATE_VAULT_KEY_FILE", str(key_file))
    monkeypatch.delenv("LMSGATE_VAULT_KEY", raising=False)
    c = bootstrap(Settings(database_url=fresh_url, outbound_allow_networks=["127.0.0.1/32"]))
    project = c.tenancy.create_project("rotation")
    passwords = {_link(c, project, f"password-{n}-kept-secret"): f"password-{n}-kept-secret" for n in range(3)}
    c.tenancy.create_account(project, "local")  # no credentials: nothing to rotate
    old_key = c.vault.keyring.primary.id

    runner = CliRunner()
    result = runner.invoke(app, ["vault", "rotate", "--database-url", fresh_url])
    assert result.exit_code == 0, result.output
    assert "re-encrypted 3 account(s)" in result.output
    keys = KeyFile(key_file).read()
    assert len(keys.keys) == 2 and keys.keys[1].id == old_key
    new_key = keys.primary.id
    fresh = vault_for(None, str(key_file), fresh_url)
    for account_id, password in passwords.items():
        account = c.tenancy._load_account(account_id)
        assert account.credentials.split(".")[1] == new_key
        assert open_credentials(fresh, account)["password"] == password
        assert open_credentials(c.vault, account)["password"] == password  # a running server follows
    assert all(p not in result.output for p in passwords.values())

    result = runner.invoke(app, ["vault", "drop-old-keys", "--database-url", fresh_url])
    assert result.exit_code == 0, result.output
    assert "re-encrypted 0 account(s); 3 already used it" in result.output and "1 old key(s) removed" in result.output
    assert [k.id for k in KeyFile(key_file).read().keys] == [new_key]  # no new key: the rotation's is kept
    for account_id, password in passwords.items():  # a server that loaded both keys still reads them
        assert open_credentials(c.vault, c.tenancy._load_account(account_id))["password"] == password

    result = runner.invoke(app, ["vault", "rotate", "--database-url", fresh_url, "--drop-old-keys"])
    assert result.exit_code == 0, result.output
    assert "re-encrypted 3 account(s)" in result.output  # onto the third key
    assert len(KeyFile(key_file).read().keys) == 1


def test_rotate_with_keys_from_the_environment(fresh_url: str, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    old, new = generate_key(), generate_key()
    monkeypatch.setenv("LMSGATE_VAULT_KEY", old.encoded())
    c = bootstrap(Settings(database_url=fresh_url, outbound_allow_networks=["127.0.0.1/32"]))
    project = c.tenancy.create_project("rotation-env")
    account_id = _link(c, project, "env-password-1")
    foreign = c.tenancy.create_account(project, "xapi", config={}, credentials=seal_credentials(
        vault_for(generate_key().encoded(), None, fresh_url), "x", {"password": "lost"}))

    monkeypatch.setenv("LMSGATE_VAULT_KEY", f"{new.encoded()},{old.encoded()}")
    result = CliRunner().invoke(app, ["vault", "rotate", "--database-url", fresh_url])
    assert result.exit_code == 1, result.output  # one account no key opens: reported, left alone
    assert "re-encrypted 1 account(s)" in result.output and foreign.id in result.output
    account = c.tenancy._load_account(account_id)
    assert account.credentials.split(".")[1] == new.id
    assert open_credentials(vault_for(new.encoded(), None, fresh_url), account)["password"] == "env-password-1"
    assert not (tmp_path / "vault.key").exists()
    dropped = CliRunner().invoke(app, ["vault", "drop-old-keys", "--database-url", fresh_url])
    assert dropped.exit_code == 1 and "LMSGATE_VAULT_KEY" in dropped.output and "Traceback" not in dropped.output


def test_a_missing_or_unsafe_key_file_is_one_line_not_a_traceback(fresh_url: str, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    key_file = tmp_path / "vault.key"
    monkeypatch.setenv("LMSGATE_VAULT_KEY_FILE", str(key_file))
    monkeypatch.delenv("LMSGATE_VAULT_KEY", raising=False)
    c = bootstrap(Settings(database_url=fresh_url, outbound_allow_networks=["127.0.0.1/32"]))
    account = _link(c, c.tenancy.create_project("lost"), "password-kept-secret")
    runner = CliRunner()
    key_file.unlink()
    result = runner.invoke(app, ["accounts", "test", account, "--database-url", fresh_url])
    assert result.exit_code == 1 and "vault key file is missing" in result.output, result.output
    assert "Traceback" not in result.output and not key_file.exists()
    key_file.write_text("not a key\n")
    os.chmod(key_file, 0o600)
    result = runner.invoke(app, ["vault", "rotate", "--database-url", fresh_url])
    assert result.exit_code == 1 and "Traceback" not in result.output and str(key_file) in result.output, result.output
    key_file.unlink()
    result = runner.invoke(app, ["vault", "rotate", "--database-url", fresh_url])
    assert result.exit_code == 1 and "vault key file is missing" in result.output, result.output
    assert not key_file.exists()  # no key was made that could open none of the credentials
