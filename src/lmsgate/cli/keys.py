"""``lmsgate keys``: issue, list and revoke API keys, straight in the database."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from lmsgate.cli.common import (
    DbOption,
    ProjectOption,
    console,
    fail,
    friendly,
    open_store,
    print_table,
    project_for,
)

app = typer.Typer(help="API keys: create (shown once), list, revoke.", no_args_is_help=True)

@app.command("create")
@friendly
def create(
    name: Annotated[str, typer.Option(help="A label to tell keys apart, e.g. the app that uses it.")] = "default",
    project: ProjectOption = None,
    database_url: DbOption = None,
) -> None:
    """Issue a new API key and print it to standard output.

    The key is shown this once: only a hash of it is stored. Capture it with
    KEY=$(lmsgate keys create --name my-app).
    """
    container = open_store(database_url)
    issued = container.tenancy.issue_key(project_for(container, project), name)
    console.print(f"API key [bold]{issued.id}[/] ({escape(name)}) for project {issued.project_id}. "
                  "It is shown once: store it now.")
    typer.echo(issued.secret)


@app.command("list")
@friendly
def list_keys(
    project: ProjectOption = None,
    all_projects: Annotated[bool, typer.Option("--all-projects", help="Keys of every project.")] = False,
    database_url: DbOption = None,
) -> None:
    """List API keys: id, name, first characters, created and revoked dates (never the keys)."""
    container = open_store(database_url)
    project_id = None if all_projects else project_for(container, project)
    keys = container.tenancy.list_keys(project_id)
    if not keys:
        console.print("No API keys. Create one with `lmsgate keys create`.")
        return
    table = Table(box=None)
    table.add_column("id", no_wrap=True)
    table.add_column("name", overflow="fold")
    table.add_column("starts with", no_wrap=True)
    if all_projects:
        table.add_column("project", no_wrap=True)
    table.add_column("created", no_wrap=True)
    table.add_column("revoked", no_wrap=True)
    for key in keys:
        cells = [key.id, escape(key.name), f"{key.prefix}…"] + ([key.project_id] if all_projects else [])
        cells += [f"{key.created_at:%Y-%m-%d}", f"{key.revoked_at:%Y-%m-%d}" if key.revoked_at else ""]
        table.add_row(*cells)
    print_table(table)


@app.command("revoke")
@friendly
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id, as `lmsgate keys list` shows it (not the key).")],
    database_url: DbOption = None,
) -> None:
    """Revoke an API key. Running servers refuse it within 5 seconds (they remember good keys that long)."""
    container = open_store(database_url)
    found = container.tenancy.list_keys(key_id=key_id)
    if not found:
        fail(f"no API key with id {key_id!r}", "See `lmsgate keys list` for the ids (they are not the keys).")
    if found[0].revoked_at is not None:
        console.print(f"API key {key_id} was already revoked on {found[0].revoked_at:%Y-%m-%d %H:%M} UTC.")
        return
    container.tenancy.revoke_key(key_id)
    console.print(f"API key {key_id} ({escape(found[0].name)}) revoked.")
