"""``lmsgate deliveries``: follow, list and send again the writes delivered in the background.

Each command works on lmsgate's database directly (``--database-url``, ``--project``) or on a
running lmsgate through the Python client (``--server-url``, ``--api-key``), and answers the
same either way: both go through the same delivery service.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import astuple
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lmsgate.cli.common import (
    USAGE,
    ApiKeyOption,
    DbOption,
    ProjectOption,
    ServerUrlOption,
    console,
    fail,
    friendly,
    open_store,
    print_table,
    project_for,
    run_with,
)

if TYPE_CHECKING:
    from lmsgate.schema.deliveries import Delivery
    from lmsgate.store.deliveries import DeliveryFilter

app = typer.Typer(
    help="Writes delivered in the background (Prefer: respond-async, fallback_to_async): list them, "
    "show one with its attempts, send dead ones again.", no_args_is_help=True)

STATUSES = ("pending", "delivering", "delivered", "dead")
_STATUS_STYLE = {"pending": "yellow", "delivering": "cyan", "delivered": "green", "dead": "red"}

AccountFilter = Annotated[Optional[str], typer.Option(
    "--account-id", help="Only this linked account's deliveries.", show_default=False)]
CreatedAfter = Annotated[Optional[str], typer.Option(
    "--created-after", help="Only deliveries accepted after this instant (RFC 3339, e.g. 2024-06-01T00:00:00Z).")]
CreatedBefore = Annotated[Optional[str], typer.Option(
    "--created-before", help="Only deliveries accepted before this instant (RFC 3339).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (one delivery per line) instead of a table.")]


def _instant(option: str, value: str | None) -> datetime | None:
    from lmsgate.schema.types import parse_datetime

    if value is None or value == "":
        return None
    try:
        return parse_datetime(value)
    except ValueError as exc:
        fail(f"{option}: {exc}", "Write an RFC 3339 instant, e.g. 2024-06-01T00:00:00Z.", code=USAGE)


class _Target:
    """The deliveries of one project: in the database, or on a server through the client."""

    def __init__(self, server_url: str | None, api_key: str | None, database_url: str | None,
                 project: str | None) -> None:
        self.remote = bool(server_url)
        if server_url:
            from lmsgate.client import Client

            if project:
                fail("--project works on the database only; with --server-url the API key names the project",
                     code=USAGE)
            if not api_key:
                fail("--api-key is required with --server-url", "Pass --api-key or set LMSGATE_API_KEY.")
            self._client = Client(api_key, server_url=server_url)
        else:
            self._container = open_store(database_url)
            self._project = project_for(self._container, project)

    def close(self) -> None:
        if self.remote:
            self._client.close()

    @staticmethod
    def _model(item: dict[str, Any]) -> Delivery:
        from lmsgate.schema.deliveries import Delivery

        return Delivery.model_validate(item)

    def pages(self, where: DeliveryFilter, page_size: int) -> Iterator[list[Delivery]]:
        if self.remote:
            cursor: str | None = None
            while True:
                page = self._client.deliveries.list_deliveries(
                    status=where.status, account_id=where.account_id,  # type: ignore[arg-type]
                    created_after=where.created_after, created_before=where.created_before,
                    updated_after=where.updated_after, page_size=page_size, next=cursor)
                yield page.data
                cursor = page.next
                if not cursor:
                    return
        after: int | None = None
        while True:
            items, after = self._container.deliveries.list(self._project, where, after, page_size)
            yield [self._model(i) for i in items]
            if after is None:
                return

    def get(self, delivery_id: str) -> Delivery:
        if self.remote:
            return self._client.deliveries.get_delivery(delivery_id).data
        return self._model(self._container.deliveries.get(self._project, delivery_id))

    def retry(self, delivery_id: str) -> Delivery:
        if self.remote:
            return self._client.deliveries.retry_delivery(delivery_id).data

        return self._model(run_with(self._container, lambda: self._container.deliveries.retry(self._project, delivery_id)))

    def retry_many(self, where: DeliveryFilter) -> int:
        if self.remote:
            done = self._client.deliveries.retry_deliveries(
                status=where.status, account_id=where.account_id,  # type: ignore[arg-type]
                created_after=where.created_after, created_before=where.created_before)
            return done.data.get("retried", 0)

        return run_with(self._container, lambda: self._container.deliveries.retry_many(self._project, where))


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _status(status: str) -> str:
    return f"[{_STATUS_STYLE.get(status, 'white')}]{status}[/]"


def _error_text(error: dict[str, Any] | None) -> str:
    if not error:
        return ""
    status = error.get("status")
    message = str(error.get("message") or "")
    return (f"{status} " if status else "") + message


def _json_line(delivery: Delivery) -> str:
    return json.dumps(delivery.model_dump(mode="json", exclude_none=True), ensure_ascii=False)


@app.command("list")
@friendly
def list_deliveries(
    status: Annotated[Optional[str], typer.Option(
        "--status", help="pending, delivering, delivered, or dead (the dead-letter list).")] = None,
    account_id: AccountFilter = None,
    created_after: CreatedAfter = None,
    created_before: CreatedBefore = None,
    updated_after: Annotated[Optional[str], typer.Option(
        "--updated-after", help="Only deliveries changed after this instant (RFC 3339).")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many (oldest first).")] = 100,
    all_: Annotated[bool, typer.Option("--all", help="Show every matching delivery (no --limit).")] = False,
    as_json: JsonOption = False,
    project: ProjectOption = None,
    database_url: DbOption = None,
    server_url: ServerUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """List deliveries, oldest first: id, account, operation, status, attempts, and the last error.

    `lmsgate deliveries list --status dead` is the dead-letter list; send them again with
    `lmsgate deliveries retry`.
    """
    from lmsgate.store.deliveries import DeliveryFilter

    if status is not None and status not in STATUSES:
        fail(f"--status {status!r}: use one of {', '.join(STATUSES)}", code=USAGE)
    where = DeliveryFilter(status=status, account_id=account_id,
                           created_after=_instant("--created-after", created_after),
                           created_before=_instant("--created-before", created_before),
                           updated_after=_instant("--updated-after", updated_after))
    target = _Target(server_url, api_key, database_url, project)
    wanted = None if all_ else limit
    shown: list[Delivery] = []
    more = False
    try:
        for page in target.pages(where, min(1000, wanted + 1) if wanted else 1000):
            shown.extend(page)
            if wanted is not None and len(shown) > wanted:
                more = True
                shown = shown[:wanted]
                break
    finally:
        target.close()
    if as_json:
        for d in shown:
            typer.echo(_json_line(d))
    elif not shown:
        console.print("No deliveries match." if any(astuple(where)) else
                      "No deliveries yet: writes sent with `Prefer: respond-async` (or kept by "
                      "fallback_to_async) show up here.")
    else:
        table = Table(box=None)
        for name in ("id", "account", "operation", "status"):
            table.add_column(name, no_wrap=True)
        table.add_column("attempts", justify="right")
        table.add_column("created (UTC)", no_wrap=True)
        table.add_column("next / delivered (UTC)", no_wrap=True)
        table.add_column("last error", overflow="fold")
        for d in shown:
            table.add_row(d.id, d.account_id, d.operation, _status(d.status), str(d.attempt_count),
                          _when(d.created_at), _when(d.next_attempt_at or d.delivered_at),
                          escape(_error_text(d.last_error)))
        print_table(table)
    if more:
        console.print(f"Showing the first {wanted:,}; more match: pass --all, or a larger --limit.")


@app.command("show")
@friendly
def show_delivery(
    delivery_id: Annotated[str, typer.Argument(metavar="ID", help="The delivery's id (from the 202's Location).",
                                               show_default=False)],
    as_json: JsonOption = False,
    project: ProjectOption = None,
    database_url: DbOption = None,
    server_url: ServerUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Show one delivery: the write it carries, its status, every attempt, its result or last error."""
    target = _Target(server_url, api_key, database_url, project)
    try:
        d = target.get(delivery_id)
    finally:
        target.close()
    if as_json:
        typer.echo(json.dumps(d.model_dump(mode="json", exclude_none=True), ensure_ascii=False, indent=2))
        return
    out = Console(soft_wrap=True)
    facts = Table(box=None, show_header=False)
    facts.add_column(style="bold", no_wrap=True)
    facts.add_column(overflow="fold")
    for name, value in (("id", d.id), ("account", d.account_id), ("operation", d.operation),
                        ("request", f"{d.method} {d.path}"), ("status", _status(d.status)),
                        ("attempts", str(d.attempt_count)), ("created", _when(d.created_at) + " UTC"),
                        ("updated", _when(d.updated_at) + " UTC")):
        facts.add_row(name, value if name == "status" else escape(value))
    if d.next_attempt_at:
        facts.add_row("next attempt", _when(d.next_attempt_at) + " UTC")
    if d.delivered_at:
        facts.add_row("delivered", _when(d.delivered_at) + " UTC")
    if d.result is not None:
        facts.add_row("result", escape(json.dumps(d.result, ensure_ascii=False)))
    if d.last_error:
        facts.add_row("last error", escape(json.dumps(d.last_error, ensure_ascii=False)))
    facts.add_row("body", escape(json.dumps(d.request, ensure_ascii=False)))
    out.print(facts)
    if d.attempts:
        attempts = Table(title="attempts", box=None, title_justify="left")
        for name in ("#", "started (UTC)", "finished (UTC)", "outcome", "status"):
            attempts.add_column(name, no_wrap=True)
        attempts.add_column("error", overflow="fold")
        for a in d.attempts:
            style = {"delivered": "green", "retry": "yellow", "dead": "red"}[a.outcome]
            attempts.add_row(str(a.number), _when(a.started_at), _when(a.finished_at), f"[{style}]{a.outcome}[/]",
                             str(a.status or ""), escape(_error_text(a.error)))
        out.print(attempts)
    if d.status == "dead":
        console.print(f"Send it again with `lmsgate deliveries retry {d.id}`.")


@app.command("retry")
@friendly
def retry_deliveries(
    delivery_id: Annotated[Optional[str], typer.Argument(
        metavar="[ID]", help="The delivery to send again. Leave it out to retry every delivery that matches "
        "the filters.", show_default=False)] = None,
    status: Annotated[Optional[str], typer.Option(
        "--status", help="Without ID: dead (the default) or pending (skip the wait before their next attempt).",
        show_default=False)] = None,
    account_id: AccountFilter = None,
    created_after: CreatedAfter = None,
    created_before: CreatedBefore = None,
    all_: Annotated[bool, typer.Option(
        "--all", help="Without ID and without filters: retry the whole dead-letter list.")] = False,
    project: ProjectOption = None,
    database_url: DbOption = None,
    server_url: ServerUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Send deliveries again, with a fresh attempt budget.

    With an ID: that delivery (dead: queued again; pending: tried at once). It fails for one
    that is delivered already or being delivered.

    Without an ID: every delivery that matches --status (dead by default), --account-id and
    the --created-after/--created-before window. With no filter at all, pass --all to retry
    the whole dead-letter list.

    A running `lmsgate serve` (or `lmsgate worker`) does the delivering: at once when the retry
    goes through it (--server-url), else at its next sweep (within 2 s for `serve` on
    SQLite, 10 s for `worker`).
    """
    from lmsgate.store.deliveries import DeliveryFilter

    filters = {"--status": status, "--account-id": account_id, "--created-after": created_after,
               "--created-before": created_before}
    given = [name for name, value in filters.items() if value is not None]
    if delivery_id is not None:
        if given or all_:
            fail(f"{(given or ['--all'])[0]} is for retrying many deliveries; with an ID, give only the ID",
                 code=USAGE)
    elif not given and not all_:
        fail("name a delivery to retry, or choose which ones",
             "lmsgate deliveries retry ID, or e.g. --account-id ID, --created-after 2024-06-01T00:00:00Z, "
             "--status pending, or --all for the whole dead-letter list.", code=USAGE)
    if status is not None and status not in ("dead", "pending"):
        fail(f"--status {status!r}: only dead or pending deliveries can be retried", code=USAGE)
    where = DeliveryFilter(status=status or "dead", account_id=account_id,
                           created_after=_instant("--created-after", created_after),
                           created_before=_instant("--created-before", created_before))
    target = _Target(server_url, api_key, database_url, project)
    try:
        if delivery_id is not None:
            d = target.retry(delivery_id)
            console.print(f"Delivery {escape(d.id)} ({escape(d.operation)}) queued again: {_status(d.status)}, "
                          f"{d.attempt_count} attempt(s) so far.")
            typer.echo(d.id)
        else:
            count = target.retry_many(where)
            what = "pending" if where.status == "pending" else "dead"
            if count:
                console.print(f"{count:,} {what} deliveries queued again.")
            else:
                console.print(f"No {what} deliveries matched: nothing to retry.")
            typer.echo(str(count))
    finally:
        target.close()
    if not target.remote:
        console.print("A running `lmsgate serve` or `lmsgate worker` on this database picks them up on its "
                      "next sweep (within 2 s for serve on SQLite, 10 s for worker); through --server-url "
                      "they are sent at once.")
