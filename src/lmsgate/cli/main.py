"""``lmsgate``: run the server, manage the database, print the API description."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from lmsgate.cli import accounts, completions, deliveries, keys, projects, worker
from lmsgate.cli.common import USAGE, DbOption, console, fail, friendly, open_store, settle_gc
from lmsgate.cli.common import settings_for as _settings
from lmsgate.settings import Settings

app = typer.Typer(
    help="lmsgate: a self-hosted unified LMS API.\n\n"
         "Exit codes of every command: 0 done; 1 the command could not do its work (a file, the "
         "database, a server or a check failed: the message says which); 2 the command line is wrong "
         "(an option, an argument, a setting); 3 completions import: done, but some rows were "
         "rejected (see the report); 130 interrupted (Ctrl-C or SIGTERM).",
    no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(projects.app, name="projects")
app.add_typer(keys.app, name="keys")
app.add_typer(accounts.app, name="accounts")
app.add_typer(completions.app, name="completions")
app.add_typer(deliveries.app, name="deliveries")
app.command("worker")(worker.worker)


@app.command()
@friendly
def serve(
    host: Annotated[Optional[str], typer.Option(envvar="LMSGATE_HOST", help="Address to listen on.")] = None,
    port: Annotated[Optional[int], typer.Option(envvar="LMSGATE_PORT", help="Port to listen on.")] = None,
    database_url: DbOption = None,
) -> None:
    """Start the API server. On first run, create the database, an API key and a local account."""
    import uvicorn

    from lmsgate.api.app import create_app
    from lmsgate.logs import configure_logging
    from lmsgate.setup import ensure_first_run
    from lmsgate.store.tenancy import check_key_secret

    settings = _settings(database_url, host=host, port=port)
    try:
        if settings.api_key is not None:
            check_key_secret(settings.api_key)  # before the database is made
    except ValueError as exc:
        fail(f"LMSGATE_API_KEY: {exc}", "Pin a longer key, or leave LMSGATE_API_KEY unset to have one made.",
             code=USAGE)
    configure_logging(settings.log_level, settings.log_format)  # JSON lines by default, secrets masked
    if settings.api_key is not None:  # a pinned key need not look like one lmsgate issues
        from lmsgate.http import remember_secrets

        remember_secrets(settings.api_key)
    container = open_store(database_url, settings, create=True)
    if container.tenancy.holds_sealed_credentials():
        container.vault.keyring  # noqa: B018 - a missing or unsafe key file stops the start, not a request
    first = ensure_first_run(container)
    base = f"http://{settings.host}:{settings.port}"
    console.print(f"[bold]lmsgate[/] on {base}  (store: {container.engine.url.render_as_string(hide_password=True)})")
    if first.new_api_key:
        console.print("New API key (shown once, store it now):")
        console.print(f"  [bold green]{first.new_api_key}[/]")
    key_hint = first.new_api_key or ("$LMSGATE_API_KEY" if settings.api_key else "<your key>")
    console.print(f"Local account id: [bold]{first.account_id}[/]")
    console.print(
        "Try it:\n"
        f"  curl -u {key_hint}: -H 'x-account-id: {first.account_id}' -H 'content-type: application/json' \\\n"
        f"    -d '{{\"learning_object_external_reference\": \"course-1\", \"completed_at\": \"2021-07-21T14:00:00Z\"}}' \\\n"
        f"    {base}/unified/lms/users/learner-1/completions\n"
        f"API reference: {base}/docs"
    )
    app_ = create_app(container)
    settle_gc()
    uvicorn.run(app_, host=settings.host, port=settings.port,
                log_level=settings.log_level, access_log=False, log_config=None)


@app.command()
@friendly
def migrate(database_url: DbOption = None) -> None:
    """Create or upgrade the database schema to the newest version."""
    container = open_store(database_url, create=True)
    console.print(f"Schema is up to date on {container.engine.url.render_as_string(hide_password=True)}")


@app.command()
@friendly
def openapi() -> None:
    """Print lmsgate's OpenAPI document (JSON) to standard output."""
    from lmsgate.api.app import create_app
    from lmsgate.bootstrap import bootstrap

    container = bootstrap(_settings("sqlite://"))
    typer.echo(json.dumps(create_app(container).openapi(), indent=2))


vault_app = typer.Typer(help="The credential vault: encryption keys of linked-account credentials.",
                        no_args_is_help=True)
app.add_typer(vault_app, name="vault")


@vault_app.command("rotate")
@friendly
def vault_rotate(
    database_url: DbOption = None,
    drop_old_keys: Annotated[bool, typer.Option(
        "--drop-old-keys", help="Then remove the old keys from the key file, as `lmsgate vault drop-old-keys` "
        "does (a second rotation with this option makes another new key).")] = False,
) -> None:
    """Re-encrypt every linked account's credentials with a new key.

    With a key file, a new key is put in front of it (older keys stay, so running servers keep
    reading) and everything is re-encrypted with it. With LMSGATE_VAULT_KEY, put the new key first
    in the variable (new,old) and run this to re-encrypt everything with it.
    """
    from lmsgate.vault import generate_key

    settings = _settings(database_url)
    container = open_store(database_url, settings)
    key_file = _key_file(settings)
    if key_file is not None:
        container.vault.keyring  # noqa: B018 - refuses to make a first key beside sealed credentials
        key_file.prepend(generate_key())
        container.vault.reload()
    _reseal(container, key_file if drop_old_keys else None)
    if drop_old_keys and key_file is None:
        console.print("The old keys are in LMSGATE_VAULT_KEY: remove them from the variable yourself.")


@vault_app.command("drop-old-keys")
@friendly
def vault_drop_old_keys(database_url: DbOption = None) -> None:
    """Finish a rotation: remove every key but the newest from the key file.

    Run it after `lmsgate vault rotate`, when you no longer need the old keys (a backup of the
    database taken before the rotation needs them). Running lmsgate processes need no restart:
    one that meets a key it has not loaded reads the key file again. Anything still encrypted
    with an older key is re-encrypted first; if any account cannot be read, no key is removed.
    No new key is made.
    """
    settings = _settings(database_url)
    container = open_store(database_url, settings)
    key_file = _key_file(settings)
    if key_file is None:
        fail("the keys come from LMSGATE_VAULT_KEY, not a file", "Remove the old keys from the variable yourself.")
    if not key_file.path.exists():
        fail(f"no key file at {key_file.path}", "Check LMSGATE_VAULT_KEY_FILE.")
    _reseal(container, key_file)


def _key_file(settings: Settings) -> Any:
    """The vault's key file, or None when the keys come from LMSGATE_VAULT_KEY."""
    from lmsgate.vault import KeyFile, default_key_file

    if settings.vault_key is not None:
        return None
    path = Path(settings.vault_key_file) if settings.vault_key_file else default_key_file(settings.database_url)
    if path is None:
        fail("an in-memory database has no stored credentials and no key file")
    return KeyFile(path)


def _reseal(container: Any, drop_from: Any) -> None:
    """Re-encrypt what is not under the primary key; then, if everything could be read and
    ``drop_from`` is a key file, keep only its primary key."""
    report = container.accounts.rotate()
    console.print(f"Vault key {report.key_id} ({container.vault.keyring.source}): re-encrypted "
                  f"{report.resealed} account(s); {report.current} already used it.")
    for account_id in report.changed_meanwhile:
        console.print(f"  {account_id}: changed while rotating; already on the new key")
    if report.unreadable:
        console.print(f"[red]{len(report.unreadable)} account(s) could not be decrypted with any key and "
                      f"were left as they are:[/] {', '.join(report.unreadable)}")
        raise typer.Exit(1)
    if drop_from is not None:
        dropped = len(drop_from.read().keys) - 1
        drop_from.keep_only_primary()
        console.print(f"{dropped} old key(s) removed from {drop_from.path}.")


if __name__ == "__main__":  # pragma: no cover
    app()
