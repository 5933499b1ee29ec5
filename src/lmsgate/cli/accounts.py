"""``lmsgate accounts``: link a provider account, list, test, disable and enable them.

The questions ``link`` asks come from the connector's declaration (its config fields, their
kinds, choices and defaults, and which are secret); secrets are read without echo. Everything
goes through the same linked-accounts service as ``POST /accounts``, so the same validation,
vault encryption and address checks apply.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from lmsgate.cli.common import (
    USAGE,
    DbOption,
    ProjectOption,
    console,
    fail,
    friendly,
    open_store,
    print_table,
    project_for,
    run_with,
)

if TYPE_CHECKING:
    from lmsgate.bootstrap import Container
    from lmsgate.connectors.spec import ConfigField, ConnectorSpec
    from lmsgate.store.tenancy import Account

app = typer.Typer(help="Linked accounts: link a provider, list, test, disable, enable.", no_args_is_help=True)

def _settings(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            fail(f"--set {pair!r}: write it as NAME=VALUE, e.g. --set endpoint=https://lrs.example.com/xAPI/",
                 code=USAGE)
        out[name.strip()] = value
    return out


def _ask(field: ConfigField, required: bool) -> str | None:
    default = "" if field.default is None else str(field.default)
    label = field.description
    if not required:
        label += " (optional)" if default else " (optional, Enter to skip)"
    if field.choices:
        label += f" [{'/'.join(field.choices)}]"
    while True:
        value = typer.prompt(f"{field.name}: {label}", default=default, hide_input=field.secret,
                             show_default=bool(default) and not field.secret, show_choices=False, err=True)
        value = value.strip() if not field.secret else value
        if value or not required:
            return value or None
        console.print(f"{field.name} is required.")


def _value(field: ConfigField, text: str) -> Any:
    if field.kind != "number":
        return text
    try:
        number = float(text)
    except ValueError:
        fail(f"{field.name}: {text!r} is not a number")
    return int(number) if number.is_integer() else number


def _answers(spec: ConnectorSpec, given: dict[str, str], interactive: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """The account's ``setup_information`` and ``credentials``, from ``--set`` and prompts."""
    from lmsgate.connectors.spec import AUTH_TYPE

    setup: dict[str, Any] = {}
    credentials: dict[str, Any] = {}
    kinds = spec.auth_kinds
    auth_type = given.pop(AUTH_TYPE, None)
    if len(kinds) > 1:
        if auth_type is None and interactive:
            auth_type = typer.prompt(f"{AUTH_TYPE}: how lmsgate signs in [{'/'.join(kinds)}]", default=kinds[0],
                                     err=True)
        auth_type = auth_type or kinds[0]
        setup[AUTH_TYPE] = auth_type
    variant = next((a for a in spec.auth if a.kind == auth_type), spec.auth[0])
    needed = set(variant.field_names) - set(getattr(variant, "optional_field_names", ()))
    others = {n for a in spec.auth if a is not variant for n in a.field_names} - set(variant.field_names)
    unknown = sorted(set(given) - {f.name for f in spec.fields})
    if unknown:
        fail(f"--set {unknown[0]}=…: not a setting of the {spec.key} connector; its settings are "
             f"{', '.join(f.name for f in spec.fields) or 'none'}", code=USAGE)
    missing = []
    for field in spec.fields:
        if field.name in others:
            continue
        required = (field.required or field.name in needed) and field.default is None
        text = given.get(field.name)
        if text is None and interactive:
            text = _ask(field, required)
        if text is None or text == "":
            if required:
                missing.append(field.name)
            continue
        (credentials if field.secret else setup)[field.name] = _value(field, text)
    if missing:
        fail(f"the {spec.key} connector needs: {', '.join(missing)}",
             "Give them with --set NAME=VALUE, or run the command in a terminal to be asked.", code=USAGE)
    return setup, credentials


@app.command("link")
@friendly
def link(
    provider: Annotated[str, typer.Argument(help="The connector, e.g. xapi (see docs/connectors.md).")],
    owner_id: Annotated[Optional[str], typer.Option(
        "--owner-id", help="Your id for the customer who owns the account.")] = None,
    owner_name: Annotated[Optional[str], typer.Option("--owner-name", help="Your name for that customer.")] = None,
    label: Annotated[Optional[str], typer.Option(help="A label to tell accounts apart.")] = None,
    account_id: Annotated[Optional[str], typer.Option(
        "--id", help="Pin the account id (letters, digits, _ . : -). Default: random.")] = None,
    settings: Annotated[Optional[list[str]], typer.Option(
        "--set", metavar="NAME=VALUE", help="A setting of the connector, instead of being asked (repeatable).")] = None,
    no_input: Annotated[bool, typer.Option(
        "--no-input", help="Never ask (for scripts): fail if a required setting is missing.")] = False,
    project: ProjectOption = None,
    database_url: DbOption = None,
) -> None:
    """Link a provider account. Asks for each setting the connector declares; secrets are not echoed.

    Settings are checked as POST /accounts checks them, secrets are encrypted by the vault, and
    the new account's id is printed to standard output.
    """
    from pydantic import ValidationError

    from lmsgate.schema.messages import describe_validation_errors
    from lmsgate.errors import LmsGateError
    from lmsgate.schema.accounts import LinkedAccountCreate

    container = open_store(database_url)
    try:
        spec = container.registry.spec(provider)
    except LmsGateError as exc:  # the PROVIDER argument names no connector
        fail(exc.message, code=USAGE)
    interactive = not no_input
    if interactive:
        console.print(f"Linking an account of the {escape(spec.key)} connector ({escape(spec.name)}).")
    setup, credentials = _answers(spec, _settings(settings or []), interactive)
    if owner_id is None:
        owner_id = typer.prompt("Owner id (your id for the customer)", err=True) if interactive else "default"
    if owner_name is None:
        owner_name = typer.prompt("Owner name", default=owner_id, err=True) if interactive else owner_id
    try:
        body = LinkedAccountCreate(provider=spec.key, origin_owner_id=owner_id, origin_owner_name=owner_name,
                                   label=label, id=account_id, setup_information=setup or None,
                                   credentials=credentials or None)
        account = run_with(container, lambda: container.accounts.create(project_for(container, project), body))
    except LmsGateError as exc:
        fail(exc.message)
    except ValidationError as exc:  # --owner-id, --owner-name, --id or --label
        fail(describe_validation_errors(list(exc.errors())))
    console.print(f"Linked {escape(spec.key)} account [bold]{account.id}[/] for {escape(owner_name)}. "
                  f"Check it with `lmsgate accounts test {account.id}`.")
    typer.echo(account.id)


@app.command("list")
@friendly
def list_accounts(
    provider: Annotated[Optional[str], typer.Option(help="Only accounts of this provider.")] = None,
    project: ProjectOption = None,
    database_url: DbOption = None,
) -> None:
    """List linked accounts: id, provider, status, owner, label, settings (never credentials)."""
    container = open_store(database_url)
    project_id = project_for(container, project)
    accounts: list[Account] = []
    while True:
        page = container.tenancy.list_accounts(project_id, providers=[provider] if provider else None,
                                               offset=len(accounts), limit=500)
        accounts.extend(page)
        if len(page) < 500:
            break
    if not accounts:
        console.print("No linked accounts. Link one with `lmsgate accounts link PROVIDER`.")
        return
    table = Table(box=None)
    for name in ("id", "provider", "status"):
        table.add_column(name, no_wrap=True)
    table.add_column("owner")
    table.add_column("label")
    table.add_column("settings", overflow="fold")
    for a in accounts:
        settings = ", ".join(f"{k}={v}" for k, v in sorted(a.config.items()))
        status = a.status if a.status == "active" else f"[yellow]{a.status}[/]"
        table.add_row(a.id, a.provider, status, escape(a.origin_owner_name or a.origin_owner_id or ""),
                      escape(a.label or ""), escape(settings))
    print_table(table)


def _account(container: Container, account_id: str) -> Account:
    account = container.tenancy.get_account(account_id)
    if account is None:
        fail(f"no linked account {account_id!r} in this database", "See `lmsgate accounts list`.")
    return account


@app.command("test")
@friendly
def test(
    account_id: Annotated[str, typer.Argument(help="The linked account's id.")],
    database_url: DbOption = None,
) -> None:
    """Check an account's settings with one cheap, real call to its provider (as POST /accounts/{id}/test)."""

    from lmsgate.errors import LmsGateError

    container = open_store(database_url)
    account = _account(container, account_id)
    try:
        checked, _ = run_with(container, lambda: container.accounts.test(account.project_id, account.id))
    except LmsGateError as exc:
        fail(f"{account.provider} account {account.id} failed its check: {exc.message}",
             "Fix its settings with PATCH /accounts/{id}, or link it again.")
    console.print(f"[green]OK[/]: {account.provider} account {account.id} works ({escape(checked)}).")


def _set_status(account_id: str, status: str, database_url: str | None) -> None:

    from lmsgate.schema.accounts import PatchAccountExternalDto

    container = open_store(database_url)
    account = _account(container, account_id)
    if account.status == status:
        console.print(f"Account {account.id} is already {status}.")
        return
    run_with(container, lambda: container.accounts.update(account.project_id, account.id,
                                                      PatchAccountExternalDto(status=status)))
    what = "answers 412 to every call now" if status == "inactive" else "takes calls again"
    console.print(f"Account {account.id} is {status}: it {what} (running servers notice within seconds).")


@app.command("disable")
@friendly
def disable(
    account_id: Annotated[str, typer.Argument(help="The linked account's id.")],
    database_url: DbOption = None,
) -> None:
    """Disable an account: every call on it answers 412 until it is enabled again. Nothing is deleted."""
    _set_status(account_id, "inactive", database_url)


@app.command("enable")
@friendly
def enable(
    account_id: Annotated[str, typer.Argument(help="The linked account's id.")],
    database_url: DbOption = None,
) -> None:
    """Enable a disabled account again."""
    _set_status(account_id, "active", database_url)
