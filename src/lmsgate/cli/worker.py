"""``lmsgate worker``: deliver asynchronous writes, as one of many processes (PostgreSQL)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from lmsgate.cli.common import DbOption, console, fail, friendly, settle_gc
from lmsgate.cli.common import settings_for as _settings


@friendly
def worker(
    database_url: DbOption = None,
    concurrency: Annotated[int | None, typer.Option(
        "--concurrency", envvar="LMSGATE_WORKER_CONCURRENCY", min=1,
        help="Accounts this worker delivers for at once.")] = None,
) -> None:
    """Deliver asynchronous writes to the providers until stopped (Ctrl-C or SIGTERM finish the
    deliveries in flight first).

    Run as many as you like, on one machine or many, next to API processes started with
    LMSGATE_DELIVERY_IN_PROCESS_WORKER=false. procrastinate shares the work out on the
    PostgreSQL database; each account is served by one worker at a time, so its limits and the
    order of its writes hold. A worker that dies (even kill -9) has its accounts taken over by
    the others after LMSGATE_WORKER_STALLED_AFTER_SECONDS. See docs/operations.md.
    """
    from lmsgate.delivery.runtime import run_worker
    from lmsgate.logs import configure_logging

    settings = _settings(database_url, worker_concurrency=concurrency)
    if not settings.database_url.startswith(("postgresql", "postgres")):
        fail("lmsgate worker needs PostgreSQL (LMSGATE_DATABASE_URL=postgresql://…)",
             "On SQLite, `lmsgate serve` delivers by itself: it runs the embedded worker.")
    configure_logging(settings.log_level, settings.log_format)
    console.print(f"lmsgate worker: delivering for up to {settings.worker_concurrency} accounts at once")
    settle_gc()
    asyncio.run(run_worker(settings))
