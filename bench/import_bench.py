"""How fast ``lmsgate completions import`` writes, and how much memory it needs.

    .venv/bin/python bench/import_bench.py                    # 1,000,000 rows, SQLite and PostgreSQL
    .venv/bin/python bench/import_bench.py --rows 200000      # quicker
    .venv/bin/python bench/import_bench.py --no-postgres

For each store it generates one CSV file (or JSON Lines, ``--format jsonl``), runs the import as a user runs it (a separate
``lmsgate`` process, its start-up included in the time), then runs it again (every row is a
repeat: nothing new is stored), and prints rows per second, CPU time, and the peak memory of
the import process and its worker processes together (sampled every 0.1 s while it runs): the
sum of their resident sizes (RSS), and of their proportional ones (PSS, where a page the
workers share is counted once).

Targets (issue 7): at least 50,000 rows/s into SQLite, 20,000 rows/s into PostgreSQL, and a
peak RSS under 300 MB whatever the file size (judged on the RSS sum, the stricter measure).

Beside each import it measures a ceiling on the same machine, in the same run: rows of the
same shape (the file's learners, learning objects and times), already converted, inserted into an empty database with the same tables, indexes
and durability settings by the bare driver, with the statements the store sends (SQLite ``executemany``; PostgreSQL one
``INSERT … SELECT`` from a JSON array of the rows, as the import sends them), with no parsing,
validation or Python per row. On a shared machine
the ratio to that ceiling is steadier than the absolute numbers.

PostgreSQL: ``LMSGATE_BENCH_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``)
names a server where a scratch database is created and dropped.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LMSGATE = [sys.executable, "-m", "lmsgate.cli.main"]
TARGETS = {"sqlite": 50_000, "postgresql": 20_000}
RSS_LIMIT_MB = 300
START = datetime(2022, 1, 1, tzinfo=timezone.utc)


LEARNERS = 50_000
"""Learners the generated file names (``--learners``): the import remembers up to 60,000 of
them, so more shows what memory does when that cache fills and empties."""


def _rows(rows: int) -> Iterator[list[Any]]:
    """Completions of ``LEARNERS`` learners over 2,000 courses; each row a different completion."""
    for i in range(rows):
        h = (i * 2654435761) % 4294967296
        when = START + timedelta(seconds=i * 7, milliseconds=h % 1000)
        yield [f"learner-{h % LEARNERS}", f"course-{h % 2000}", when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
               f"PT{h % 3}H{h % 60}M{h % 59}S", "Pass" if h % 4 else "Fail", h % 101, f"{h % 101} / 100"]


def write_file(path: Path, rows: int) -> None:
    """The rows as CSV (``.csv``) or as JSON Lines, one API body plus ``user_id`` a line."""
    with path.open("w", newline="") as f:
        if path.suffix == ".csv":
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["user_id", "learning_object_external_reference", "completed_at", "time_spent",
                        "result.value", "score.percentage", "score.raw_value"])
            w.writerows(_rows(rows))
            return
        for user, ref, when, spent, result, pct, raw in _rows(rows):
            f.write(json.dumps({"user_id": user, "learning_object_external_reference": ref, "completed_at": when,
                                "time_spent": spent, "result": {"value": result},
                                "score": {"percentage": pct, "raw_value": raw}}) + "\n")


@dataclass
class Run:
    seconds: float
    reported_rate: float
    peak_rss_mb: float
    """The highest sum, over the import process and its workers, of their resident memory,
    sampled every 0.1 s."""
    peak_pss_mb: float
    """The same for PSS: shared pages counted once."""
    processes: int
    summary: str
    cpu_seconds: float
    """User and system CPU time of the import process and its workers: steadier than the
    wall time on a machine that other work shares."""
    command: str


def _tree(pid: int) -> list[int]:
    """``pid`` and the processes below it: the import's worker processes, multiprocessing's
    resource tracker."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rpartition(")")[2].split()[1])
            except OSError:
                continue
    found, todo = [pid], [pid]
    while todo:
        parent = todo.pop()
        for child, its_parent in parents.items():
            if its_parent == parent:
                found.append(child)
                todo.append(child)
    return found


def _memory_mb(pid: int) -> tuple[float, float]:
    """Resident memory (RSS) and proportional set size (PSS) of one process now, in MB. PSS
    counts a page shared by several processes (the Python binary and libraries) once in all,
    split between them; RSS counts it in each."""
    rss = pss = 0.0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1]) / 1024
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1]) / 1024
    except OSError:
        pass
    return rss, pss


def run_import(file: Path, url: str, account: str, env: dict[str, str]) -> Run:
    argv = [*LMSGATE, "completions", "import", str(file), "--database-url", url, "--account-id", account]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as err_file:
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=err_file, text=True)
        peak = peak_pss = 0.0
        processes = 1
        while proc.poll() is None:
            tree = _tree(proc.pid)
            processes = max(processes, len(tree))
            sizes = [_memory_mb(p) for p in tree]
            peak = max(peak, sum(r for r, _ in sizes))
            peak_pss = max(peak_pss, sum(p for _, p in sizes))
            time.sleep(0.1)
        seconds = time.monotonic() - started
        err_file.seek(0)
        err = err_file.read()
    if proc.returncode != 0:
        raise SystemExit(f"import failed ({proc.returncode}):\n{err}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # The import waits for its workers, so their CPU time is in its own children's, which
    # is in ours once it has ended.
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rate = re.search(r"\(([\d,]+) per second\)", err)
    summary = next((line for line in err.splitlines() if line.startswith("Imported")), err.strip())
    command = " ".join(["lmsgate", *argv[len(LMSGATE):]])
    return Run(seconds, float(rate.group(1).replace(",", "")) if rate else 0.0, peak, peak_pss, processes, summary,
               cpu, command)


def ceiling(url: str, rows: int) -> float:
    """Rows per second of bare driver inserts of prepared rows into the completions table,
    with the import's own connection settings (:func:`~lmsgate.bulk.sinks.tune_for_bulk`) and
    transaction size.
    Only the inserts and commits are timed; each batch is prepared just before, untimed."""
    from lmsgate.bootstrap import bootstrap
    from lmsgate.bulk.sinks import tune_for_bulk
    from lmsgate.cli.completions import ROWS_PER_TRANSACTION
    from lmsgate.connectors.local.mapping import completion_key, dt
    from lmsgate.ids import new_id
    from lmsgate.settings import Settings
    from lmsgate.store import tables as t
    from lmsgate.store.bulk import Bulk

    container = bootstrap(Settings(database_url=url, vault_key_file=str(Path(tempfile.gettempdir()) / "bench.key")))
    tune_for_bulk(container.engine)
    project = container.tenancy.create_project("ceiling")
    account = container.store.account_key(container.tenancy.create_account(project, "local").id)
    now = datetime.now(timezone.utc)
    bulk = Bulk(container.engine.dialect)
    # One transaction per write of the import: ROWS_PER_TRANSACTION rows on SQLite, a batch
    # of 5,000 on PostgreSQL.
    batch = ROWS_PER_TRANSACTION if container.engine.dialect.name == "sqlite" else 5000
    elapsed = 0.0
    source = _rows(rows)
    for start in range(0, rows, batch):
        # The learners, learning objects and times of the file's rows (they decide where each
        # row lands in the indexes), with fixed values for the rest.
        chunk = [next(source) for _ in range(min(batch, rows - start))]
        values = bulk.bind(t.completions, [{
            "account_key": account, "id": new_id(), "created_at": now, "updated_at": now,
            "user_id": user, "learning_object_id": None,
            "learning_object_external_reference": ref, "learning_object_type": None,
            "completed_at": (when := datetime.fromisoformat(text.replace("Z", "+00:00"))),
            "time_spent": "PT1H2M3S", "time_spent_seconds": 3723,
            "time_spent_months": 0, "result_value": "Pass", "result_source_value": None, "score_percentage": 87.0,
            "score_raw_value": "87 / 100", "passthrough": None,
            "dedupe_key": completion_key(user, ref, dt(when)),
        } for user, ref, text, *_ in chunk])
        started = time.monotonic()
        with container.engine.begin() as conn:  # the statement the store sends, nothing around it
            bulk.insert_bound(conn, t.completions, values, ("account_key", "dedupe_key"))
        elapsed += time.monotonic() - started
    container.engine.dispose()
    return rows / elapsed


def prepare(url: str, key_file: Path) -> str:
    from lmsgate.bootstrap import bootstrap
    from lmsgate.settings import Settings

    container = bootstrap(Settings(database_url=url, vault_key_file=str(key_file)))
    project = container.tenancy.create_project("bench")
    account = container.tenancy.create_account(project, "local").id
    container.engine.dispose()
    return account


def bench_store(name: str, fresh: Callable[[str], str], file: Path, rows: int, tmp: Path) -> list[str]:
    """``fresh(label)`` gives the URL of a new, empty database."""
    url = fresh("import")
    key_file = tmp / "vault.key"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LMSGATE_")}
    env["LMSGATE_VAULT_KEY_FILE"] = str(key_file)
    account = prepare(url, key_file)
    first = run_import(file, url, account, env)
    again = run_import(file, url, account, env)
    top = ceiling(fresh("ceiling"), rows)
    rate = rows / first.seconds
    target = TARGETS[name]
    return [
        f"{name}: command       {first.command}",
        f"{name}: first import  {first.seconds:7.1f} s  {rate:9,.0f} rows/s (process start included; "
        f"{first.reported_rate:,.0f} rows/s as the import reports it)  peak RSS {first.peak_rss_mb:5.0f} MB "
        f"(PSS {first.peak_pss_mb:.0f} MB, {first.processes} processes)  "
        f"CPU {first.cpu_seconds:.1f} s ({1e6 * first.cpu_seconds / rows:.0f} µs a row)",
        f"{name}: re-import     {again.seconds:7.1f} s  {rows / again.seconds:9,.0f} rows/s (all repeats)"
        f"  peak RSS {again.peak_rss_mb:5.0f} MB (PSS {again.peak_pss_mb:.0f} MB)  CPU {again.cpu_seconds:.1f} s",
        f"{name}: ceiling       bare driver inserts of prepared rows: {top:9,.0f} rows/s "
        f"(the import reaches {first.reported_rate / top:.0%} of it)",
        f"{name}: target        {target:,} rows/s: {'met' if rate >= target else 'NOT met'}; "
        f"RSS < {RSS_LIMIT_MB} MB: {'met' if max(first.peak_rss_mb, again.peak_rss_mb) < RSS_LIMIT_MB else 'NOT met'}",
        f"{name}: {first.summary}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--format", choices=("csv", "jsonl"), default="csv", help="The file's format.")
    parser.add_argument("--learners", type=int, default=LEARNERS, help="Distinct learners in the file.")
    args = parser.parse_args()
    globals()["LEARNERS"] = args.learners
    sys.path.insert(0, str(ROOT / "src"))
    print(f"machine: {os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.2f} "
          "(a shared machine: other work changes these numbers)")
    with tempfile.TemporaryDirectory(prefix="lmsgate-import-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        file = tmp / f"completions.{args.format}"
        started = time.monotonic()
        write_file(file, args.rows)
        print(f"file: {args.rows:,} rows for {args.learners:,} learners, {file.stat().st_size / 1e6:.0f} MB (written in {time.monotonic() - started:.0f} s)")
        lines = bench_store("sqlite", lambda label: f"sqlite:///{tmp / label}.db", file, args.rows, tmp)
        print("\n".join(lines), flush=True)
        if not args.no_postgres:
            import psycopg
            from sqlalchemy.engine import make_url

            admin = make_url(os.environ.get("LMSGATE_BENCH_POSTGRES_URL",
                                            "postgresql://postgres@127.0.0.1:5432/postgres"))
            dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
            created: list[str] = []

            def fresh(label: str) -> str:
                name = f"lmsgate_import_bench_{label}_{secrets.token_hex(3)}"
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute(f'CREATE DATABASE "{name}"')
                created.append(name)
                return admin.set(database=name).render_as_string(hide_password=False)

            try:
                print("\n".join(bench_store("postgresql", fresh, file, args.rows, tmp)), flush=True)
            finally:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    for name in created:
                        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(f"load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
