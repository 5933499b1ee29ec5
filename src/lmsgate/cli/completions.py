"""``lmsgate completions``: import completions from CSV or JSON Lines, export them."""

from __future__ import annotations

import io
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional, TextIO, TypeVar

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.text import Text

from lmsgate.cli.common import (
    FAILED,
    INTERRUPTED,
    OK,
    PARTIAL,
    USAGE,
    AccountOption,
    ApiKeyOption,
    DbOption,
    ServerUrlOption,
    account_for,
    console,
    fail,
    friendly,
    open_store,
    paragraphs,
    run_with,
)
from lmsgate.signals import handled

if TYPE_CHECKING:
    from lmsgate.bootstrap import Container
    from lmsgate.bulk.completions import CompletionRows
    from lmsgate.bulk.importer import ImportJob, Totals
    from lmsgate.bulk.parallel import WorkerPool
    from lmsgate.bulk.sources import Source
    from lmsgate.client import AsyncClient

T = TypeVar("T")

app = typer.Typer(help="Completions in bulk: import a CSV or JSON Lines file, export them.",
                  no_args_is_help=True)

SHOWN_REJECTS = 20
"""How many rejected rows a real import prints; the report file has them all."""
IMPORT_LEARNER_CACHE = 60_000
"""Learners an import remembers as stored (about 220 bytes each): it names the same ones batch
after batch, and checking them again cost a sixth of its time on PostgreSQL. Not more: a file of
1,000,000 rows for 500,000 learners took the import to 330 MB with 200,000 and 298 MB with
60,000 (both with a 32 MiB page cache), at the same speed (33,637 and 34,495 rows/s).
``bench/import_bench.py --learners 500000`` repeats it."""
ROWS_PER_TRANSACTION = 20_000
"""With worker processes, batches are written into SQLite together, up to this many rows: a
commit of 5,000 rows cost more than their inserts (1,000,000 rows: 39,500 rows/s committing
every 5,000, 50,400 every 50,000). PostgreSQL commits cheaply, and bigger writes only cost
memory there, so it gets one transaction per batch."""

_IMPORT_HELP = f"""Import completions from a CSV or JSON Lines file.

CSV needs a header row naming the fields: user_id and learning_object_external_reference
(required), learning_object_id, completed_at, time_spent, result.value, result.source_value,
score.percentage, score.raw_value, passthrough (a JSON object, for connectors that send it on to
their provider, such as xapi; lmsgate's own store keeps it but returns it in no read or export). Other names can
be mapped with --column. JSON Lines holds one API body per line, plus "user_id".

Every row is validated as the API validates it. Rows that fail are not written: they go to
the report (FILE.rejected.csv: line, reason, record) and the others are imported. Use
--dry-run to check a file first: it reports every bad row and writes nothing.

The same completion (learner, learning object and completed_at) is never stored twice, so
running an import again adds nothing new. An interrupted import resumes where it stopped
when the same command is run again (its position is kept in FILE.import-state.json).

Writes straight into lmsgate's database (--database-url, --account-id), or to a running
server with --server-url and --api-key.

Exit codes: {OK} all rows imported (or already there); {PARTIAL} some rows rejected (see the
report); 1 the import could not run or stopped on an error (run it again to resume);
{USAGE} wrong options; {INTERRUPTED} interrupted (run it again to resume).
"""


class _RowsPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.fields.get('rate', 0):>8,.0f} rows/s")


class _Feedback:
    """The progress bar: shown on a terminal (or with --progress), by bytes of the file read,
    with the rows done, rows per second (of this run) and the time left."""

    def __init__(self, size: int, start_offset: int, rows_before: int, show: bool) -> None:
        self.started = time.monotonic()
        self.rows_before = rows_before
        self._progress: Progress | None = None
        if show:
            self._progress = Progress(
                TextColumn("[bold]importing"), BarColumn(), TextColumn("{task.percentage:>5.1f}%"),
                TextColumn("{task.fields[rows]:>12,} rows"), _RowsPerSecond(), TextColumn("ETA"),
                TimeRemainingColumn(), console=console, transient=False,
            )
            self._task = self._progress.add_task("import", total=max(size, 1), completed=start_offset,
                                                 rows=rows_before, rate=0.0)
            self._progress.start()

    def update(self, offset: int, totals: Totals) -> None:
        if self._progress is not None:
            elapsed = max(time.monotonic() - self.started, 1e-6)
            self._progress.update(self._task, completed=offset, rows=totals.rows,
                                  rate=(totals.rows - self.rows_before) / elapsed)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()


def _utf8_stdout() -> TextIO:
    """Standard output as UTF-8 whatever the locale says (a latin-1 or cp1252 one cannot write
    every completion: the export stopped with a traceback), without newline translation (CSV
    writes its own line ends)."""
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None or (sys.stdout.encoding or "").lower().replace("-", "") == "utf8":
        return sys.stdout
    sys.stdout.flush()
    return io.TextIOWrapper(buffer, encoding="utf-8", newline="", write_through=True)


def _not_the_input(file: Path, **outputs: Path | None) -> None:
    """Refuse, before any work, a --report or --state that is the file being imported (it was
    emptied at the first rejected row, or replaced by the saved position and then deleted), or
    the other option's file, or a directory."""
    seen = {file.expanduser().resolve(): "FILE"}
    for option, path in outputs.items():
        if path is None:
            continue
        if path.is_dir():
            fail(f"--{option} {path}: is a directory", "Name a file.", code=USAGE)
        where = path.expanduser().resolve()
        if where in seen:
            fail(f"--{option} {path}: is {seen[where]}'s file too; lmsgate writes it, and would destroy "
                 "what is there", "Name another file.", code=USAGE)
        seen[where] = f"--{option}"


def _in_existing_directory(path: Path | None, option: str) -> None:
    """Refuse, before any work, a file to write whose directory does not exist (found only
    at the first write otherwise, and then named by a temporary file's name)."""
    if path is not None and not path.expanduser().absolute().parent.is_dir():
        fail(f"{option} {path}: the directory {path.expanduser().absolute().parent} does not exist",
             "Create it first, or name a file in an existing directory.", code=USAGE)


def _remote_client(server_url: str, api_key: str | None, account_id: str | None) -> AsyncClient:
    from lmsgate.client import AsyncClient, Retry

    if not account_id:
        fail("--account-id is required with --server-url", "Name the linked account on that server.", code=USAGE)

    class _ImportRetry(Retry):
        """The client's retries for an import. An import is long and its requests share the key's
        limit, so a 429 is waited out for as long as the server asks (``wait_out_rate_limits``;
        giving up after 5 tries stopped imports, 65 of 120 rows, that a slow refill would have let
        through). And it says so, at most once a minute: without a word, an import at a server's
        default limit (1,000 requests a minute) just crawls."""

        EVERY = 60.0
        said = -EVERY

        def wait_after(self, response: Any, retries: int, elapsed: float) -> float | None:
            wait = super().wait_after(response, retries, elapsed)
            now = time.monotonic()
            if response.status_code == 429 and wait is not None and now - _ImportRetry.said >= self.EVERY:
                _ImportRetry.said = now
                asked = response.headers.get("retry-after")
                console.print(f"[yellow]The server is limiting this API key's requests (429)[/]"
                              f"{f'; waiting {escape(asked)} s before trying again' if asked else ''}. lmsgate's "
                              "limit is LMSGATE_RATE_LIMIT_PER_MINUTE on the server (1,000 a minute by default): "
                              "raise it for a big import, or import on the server's machine with --database-url.")
            return wait

    return AsyncClient(api_key, server_url=server_url, account_id=account_id,
                       retry=_ImportRetry(wait_out_rate_limits=True))


def _run(client: AsyncClient | None, work: Callable[[], Awaitable[T]], container: Container | None = None) -> T:
    """Run ``work`` in an event loop, with ``client`` open around it when there is one, and the
    store's provider connections closed after it when there is a store."""

    async def main() -> T:
        if client is None:
            return await work()
        async with client:
            return await work()

    return run_with(container, main)


def _mapping(columns: list[str]) -> dict[str, str]:
    out = {}
    for item in columns:
        field, sep, column = item.partition("=")
        if not sep or not field.strip() or not column.strip():
            fail(f"--column {item!r}: write it as FIELD=COLUMN, e.g. --column user_id=employee_number", code=USAGE)
        out[field.strip()] = column.strip()
    return out


_TERM = [] if sys.platform == "win32" else [signal.SIGTERM]
"""SIGTERM, where there is one: what a service manager or a container stop sends."""


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _terminated_as_interrupted() -> AbstractContextManager[None]:
    """SIGTERM ends the command as Ctrl-C does (``Interrupted.``, exit 130) until the import
    runs (then :func:`_interruptible` takes over): worker processes already started are
    stopped on the way out, and nothing is left for the OS to clean up after a kill."""
    return handled(_interrupt, _TERM)


def _interruptible(job: ImportJob) -> AbstractContextManager[None]:
    """Ctrl-C, or SIGTERM, stops the import once the rows being written are stored and their
    position saved (``job.stop``); a second one stops it at once. Stopped in the middle of a
    write, the import lost the position of the rows that write stored, and a resumed run began
    a whole write earlier."""
    def stop(signum: int, frame: Any) -> None:
        if job.stop:
            raise KeyboardInterrupt
        job.stop = True

    return handled(stop, [signal.SIGINT, *_TERM])


@app.command("import", help=paragraphs(_IMPORT_HELP))
@friendly
def import_(
    file: Annotated[Path, typer.Argument(help="The CSV or JSON Lines file.", show_default=False)],
    fmt: Annotated[Optional[str], typer.Option(
        "--format", help="csv or jsonl. Default: from the file name (.csv; .jsonl, .ndjson).")] = None,
    column: Annotated[Optional[list[str]], typer.Option(
        "--column", metavar="FIELD=COLUMN",
        help="Read FIELD from COLUMN (repeat as needed), e.g. --column user_id=employee_number.")] = None,
    ignore_unknown_columns: Annotated[bool, typer.Option(
        "--ignore-unknown-columns", help="Skip CSV columns that are not completion fields instead of stopping.")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Validate every row and report the bad ones; write nothing.")] = False,
    report: Annotated[Optional[Path], typer.Option(
        help="Where to write the rejected rows. Default: FILE.rejected.csv (none for --dry-run).")] = None,
    state: Annotated[Optional[Path], typer.Option(
        help="Where to keep the position for resuming. Default: FILE.import-state.json.")] = None,
    restart: Annotated[bool, typer.Option(
        "--restart", help="Ignore a saved position and start at the top.")] = False,
    batch_size: Annotated[int, typer.Option(
        min=1, max=100_000, help="Rows per batch: checked together, and the position for resuming is saved after "
        "each is stored. One transaction per batch; with worker processes into SQLite, batches are stored "
        f"together, {ROWS_PER_TRANSACTION:,} rows per transaction. With --server-url: rows per round of requests.")] = 5000,
    workers: Annotated[Optional[int], typer.Option(
        min=0, max=32, help="Processes that read and check the file while this one writes (into lmsgate's own "
        "store, or in a dry run). Default: one per CPU less one, up to 2, for files of 4 MB or more; 0 for "
        "smaller files. 0: all in this process.", show_default=False)] = None,
    concurrency: Annotated[int, typer.Option(
        min=1, max=64, help="Requests in flight with --server-url.")] = 8,
    progress: Annotated[Optional[bool], typer.Option(
        "--progress/--no-progress", help="Show a progress bar. Default: only on a terminal.")] = None,
    database_url: DbOption = None,
    account_id: AccountOption = None,
    server_url: ServerUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    from lmsgate.bulk.completions import ColumnError, CompletionRows
    from lmsgate.bulk.parallel import MIN_FILE_BYTES, WorkerPool, default_workers
    from lmsgate.bulk.sources import Format, Source, SourceError

    try:
        source_format = Format.for_path(file, fmt)
        source = Source(file, source_format)
        rows = CompletionRows(source_format, source.header, _mapping(column or []),
                              ignore_unknown=ignore_unknown_columns)
    except SourceError as exc:
        fail(str(exc))
    except ColumnError as exc:  # a --column mapping is an option; the header is the file's
        fail(str(exc), code=USAGE if str(exc).startswith("--column") else FAILED)
    except ValueError:
        fail(f"--format {fmt!r}: use csv or jsonl", code=USAGE)
    _in_existing_directory(report, "--report")
    _in_existing_directory(state, "--state")
    _not_the_input(file, report=report, state=state)
    if workers is None:
        workers = default_workers() if source.size >= MIN_FILE_BYTES else 0
    # Workers start now, while the store opens; a remote import does not use them.
    with _terminated_as_interrupted(), \
            WorkerPool(workers) if workers and not (server_url and not dry_run) else nullcontext() as pool:
        _import(file, source, rows, dry_run=dry_run, report=report, state=state, restart=restart,
                batch_size=batch_size, workers=workers, pool=pool, concurrency=concurrency, progress=progress,
                database_url=database_url, account_id=account_id, server_url=server_url, api_key=api_key)


def _import(file: Path, source: Source, rows: CompletionRows, *, dry_run: bool, report: Path | None,
            state: Path | None, restart: bool, batch_size: int, workers: int, pool: WorkerPool | None,
            concurrency: int, progress: bool | None, database_url: str | None, account_id: str | None,
            server_url: str | None, api_key: str | None) -> None:
    """The import once its file and columns are known to be readable."""
    from lmsgate.bulk.checkpoint import Checkpoint, fingerprint
    from lmsgate.bulk.completions import Refused
    from lmsgate.bulk.importer import ImportJob, RejectReport

    sink: Any = None
    client: Any = None
    container: Any = None
    checkpoint = None
    start = None
    if not dry_run:
        if server_url:
            from lmsgate.bulk.sinks import RemoteSink

            client = _remote_client(server_url, api_key, account_id)
            sink = RemoteSink(client, concurrency)
            target = server_url
        else:
            from lmsgate.bulk.sinks import StoreSink, tune_for_bulk
            from lmsgate.connectors.base import CallContext

            container = open_store(database_url)
            tune_for_bulk(container.engine)
            container.store.learner_cache = IMPORT_LEARNER_CACHE
            account = account_for(container, account_id)
            account_id = account.id
            local_sqlite = account.provider == "local" and container.engine.dialect.name == "sqlite"
            sink = StoreSink(container.service, CallContext(account=account), reads_beside=not local_sqlite,
                             rows_per_write=max(batch_size, ROWS_PER_TRANSACTION) if local_sqlite else batch_size)
            target = container.engine.url.render_as_string(hide_password=True)
        checkpoint = Checkpoint(state or file.with_name(file.name + ".import-state.json"),
                                fingerprint(file, target, account_id))
        if restart:
            checkpoint.clear()
        start = checkpoint.load()
        if start is None and checkpoint.exists():
            console.print("The saved position is for another version of this file, or another target: "
                          "starting at the top (rows already imported are not stored twice).")
        elif start is not None:
            console.print(f"Resuming at line {start.line:,} ({start.counts.get('rows', 0):,} rows done before).")

    shown = 0

    def echo(refused: Refused) -> None:
        nonlocal shown
        shown += 1
        if dry_run or shown <= SHOWN_REJECTS:
            console.print(f"line {refused.line}: {escape(refused.reason)}")
        elif shown == SHOWN_REJECTS + 1:
            console.print("… more rejected rows: see the report.")

    report_path = report if (report or dry_run) else file.with_name(file.name + ".rejected.csv")
    rejects = RejectReport(report_path, resume_line=start.line if start else None, echo=echo)
    show = progress if progress is not None else console.is_terminal
    rows_before = start.counts.get("rows", 0) if start else 0
    feedback = _Feedback(source.size, start.offset if start else 0, rows_before, show and not dry_run)
    job = ImportJob(source, rows, sink, rejects, batch_size=batch_size, checkpoint=checkpoint,
                    progress=feedback.update, workers=workers, pool=pool)

    began = time.monotonic()
    try:
        with _interruptible(job):
            totals = _run(client, lambda: job.run(start), container)
    except KeyboardInterrupt:
        feedback.stop()
        saved = checkpoint.load() if checkpoint else None
        where = f" at line {saved.line:,}" if saved else ""
        console.print(f"[yellow]Interrupted.[/] Run the same command again to resume{where}.")
        raise typer.Exit(INTERRUPTED) from None
    except BaseException:
        feedback.stop()
        if checkpoint is not None and checkpoint.load() is not None:
            console.print("Rows up to the failure are stored; the same command resumes after them.")
        raise
    feedback.stop()
    elapsed = max(time.monotonic() - began, 1e-6)
    done_now = totals.rows - rows_before
    if checkpoint is not None:
        checkpoint.clear()
    if dry_run:
        console.print(f"Checked {totals.rows:,} rows: {totals.rows - totals.rejected:,} valid, "
                      f"{totals.rejected:,} rejected. Nothing was written (dry run).")
    else:
        added = (f"{totals.written:,} added, {totals.existing:,} already there" if sink.tells_repeats
                 else f"{totals.written:,} sent")
        console.print(f"Imported {escape(file.name)}: {totals.rows:,} rows, {added}, {totals.rejected:,} rejected "
                      f"({done_now / elapsed:,.0f} per second).")
    if totals.rejected and rejects.path is not None:
        console.print(f"Rejected rows, with line numbers and reasons: {escape(str(rejects.path))}")
    raise typer.Exit(PARTIAL if totals.rejected else OK)


@app.command("export")
@friendly
def export(
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="File to write. Default: standard output.")] = None,
    fmt: Annotated[Optional[str], typer.Option(
        "--format", help="csv or jsonl. Default: from --output's extension, else jsonl.")] = None,
    user_id: Annotated[Optional[str], typer.Option("--user-id", help="Only this learner's completions.")] = None,
    updated_after: Annotated[Optional[str], typer.Option(
        "--updated-after", help="Only completions changed after this instant (RFC 3339).")] = None,
    database_url: DbOption = None,
    account_id: AccountOption = None,
    server_url: ServerUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Export completions as CSV or JSON Lines, in a form `lmsgate completions import` reads back."""

    from lmsgate.bulk.exporter import export_completions, remote_pages, store_pages
    from lmsgate.bulk.sources import Format
    from lmsgate.schema.types import parse_datetime

    if fmt is not None and fmt not in ("csv", "jsonl"):
        fail(f"--format {fmt!r}: use csv or jsonl", code=USAGE)
    out_format = Format(fmt) if fmt else (Format.CSV if output and output.suffix.lower() == ".csv" else Format.JSONL)
    _in_existing_directory(output, "--output")
    since = None
    if updated_after:
        try:
            since = parse_datetime(updated_after)
        except ValueError as exc:
            fail(f"--updated-after: {exc}", code=USAGE)

    if server_url:
        client = _remote_client(server_url, api_key, account_id)

        def pages() -> Any:
            return remote_pages(client, user_id=user_id, updated_after=since)
    else:
        from lmsgate.connectors.base import CallContext

        client = None
        container = open_store(database_url)
        ctx = CallContext(account=account_for(container, account_id))

        def pages() -> Any:
            return store_pages(container.service, ctx, user_id=user_id, updated_after=since)

    if output is not None and output.is_dir():
        fail(f"--output {output}: is a directory", "Name a file.", code=USAGE)
    # Into a file beside --output, renamed over it only once the export is complete: a failed
    # export (a wrong key, an interruption) leaves an earlier file of the same name as it was.
    # Not for what is not a plain file (a symlink, /dev/stdout): that is written to directly.
    direct = output is not None and (output.is_symlink() or (output.exists() and not output.is_file()))
    partial = output.with_name(f".{output.name}.partial") if output is not None and not direct else None
    target = partial or output
    stream = target.open("w", newline="", encoding="utf-8") if target is not None else _utf8_stdout()
    try:
        try:
            count = _run(client, lambda: export_completions(pages(), stream, out_format),
                         None if server_url else container)
            stream.flush()
        except BrokenPipeError:
            if target is not None:
                raise
            # The reader stopped early (`| head`): end quietly, as Unix tools do.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(0) from None
        if target is not None:
            stream.close()
        if partial is not None and output is not None:
            partial.replace(output)
    finally:
        if target is not None:
            stream.close()
        elif stream is not sys.stdout:
            stream.detach()  # leave sys.stdout's own buffer open
        if partial is not None:
            partial.unlink(missing_ok=True)  # gone already when it was renamed
    if output is not None:
        console.print(f"Exported {count:,} completions to {escape(str(output))}.")
