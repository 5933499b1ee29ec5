"""``lmsgate projects``: create and list projects, the tenants that keep keys and accounts apart."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from lmsgate.cli.common import USAGE, DbOption, console, fail, friendly, open_store, print_table

app = typer.Typer(help="Projects: each has its own API keys, linked accounts, records and request logs.",
                  no_args_is_help=True)


@app.command("create")
@friendly
def create(
    name: Annotated[str, typer.Argument(help="What to call it, e.g. the customer or environment it serves.")],
    with_key: Annotated[bool, typer.Option(
        "--with-key", help="Also issue the project's first API key, printed once on standard output after the id.")]
        = False,
    database_url: DbOption = None,
) -> None:
    """Create a project and print its id to standard output.

    A key of one project reaches nothing of another (docs/security.md). Issue its keys with
    `lmsgate keys create --project ID`, and link its accounts with
    `lmsgate accounts link --project ID`.
    """
    name = name.strip()
    if not name or len(name) > 200:
        fail("NAME: give 1 to 200 characters", code=USAGE)
    container = open_store(database_url)
    project_id = container.tenancy.create_project(name)
    console.print(f"Project [bold]{project_id}[/] ({escape(name)}) created.")
    typer.echo(project_id)
    if with_key:
        issued = container.tenancy.issue_key(project_id, "default")
        console.print(f"API key [bold]{issued.id}[/] for it. It is shown once: store it now.")
        typer.echo(issued.secret)


@app.command("list")
@friendly
def list_projects(database_url: DbOption = None) -> None:
    """List projects, oldest first (the first is the one `lmsgate serve` made and commands use
    when --project is left out)."""
    container = open_store(database_url)
    projects = container.tenancy.list_projects()
    if not projects:
        console.print("No projects yet. `lmsgate serve` makes the first; `lmsgate projects create` more.")
        return
    table = Table(box=None)
    for column in ("id", "name", "created", "linked accounts", "API keys"):
        table.add_column(column, no_wrap=column != "name", overflow="fold")
    for project_id, name, created, accounts, keys in projects:
        table.add_row(project_id, escape(name), f"{created:%Y-%m-%d}", str(accounts), str(keys))
    print_table(table)
