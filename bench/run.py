"""lmsgate benchmarks: one command, one table.

    .venv/bin/python bench/run.py            # full run (about 8 minutes), writes docs/benchmarks.md
    .venv/bin/python bench/run.py --quick    # 5 s per scenario, no soak; prints only

Every scenario is measured with wrk at 32 connections against a server started the way the
README starts it (``lmsgate serve``). Beside it, in the same run, a bare ASGI app that answers
a fixed 201 body runs on the same server software: lmsgate is reported as a ratio of that
ceiling, which is steadier than absolute numbers on a shared machine.

Needs wrk (Debian package ``wrk``; installed with apt-get when missing and running as root),
PostgreSQL for scenario 2 (``LMSGATE_BENCH_POSTGRES_URL``), and matplotlib for the chart
(``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
VENV_BIN = Path(sys.executable).parent
API_KEY = "bench-key-0123456789abcdef"
ACCOUNT = "bench-account"
PG_URL = os.environ.get("LMSGATE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
CONNECTIONS = 32

DONE_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nRESULT {"requests":%d,"duration_us":%d,"status_errors":%d,"socket_errors":%d,' ..
    '"p50_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Server:
    base: str
    proc: subprocess.Popen[bytes]
    startup_s: float

    @property
    def rss_mb(self) -> float:
        return rss_mb(self.proc.pid)

    @property
    def children_rss_mb(self) -> float:
        """The server's child processes (the request log's, multiprocessing's resource tracker
        and, once lists were read, the page readers), which the server's own RSS leaves out."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        total = 0.0
        for pid in children:
            try:
                total += rss_mb(int(pid))
            except FileNotFoundError:  # ended meanwhile
                pass
        return total


def _wait_ready(base: str, proc: subprocess.Popen[bytes], probe: str, headers: dict[str, str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(base + probe, headers=headers, timeout=1).status_code < 300:
                return
        except httpx.TransportError:
            time.sleep(0.02)
    raise RuntimeError("server did not become ready")


@contextmanager
def lmsgate_server(database_url: str, workdir: Path) -> Iterator[Server]:
    port = free_port()
    env = {**os.environ, "LMSGATE_DATABASE_URL": database_url, "LMSGATE_API_KEY": API_KEY,
           "LMSGATE_ACCOUNT_ID": ACCOUNT, "LMSGATE_LOG_LEVEL": "warning",
           "LMSGATE_RATE_LIMIT_PER_MINUTE": "0"}
    started = time.monotonic()
    proc = subprocess.Popen([str(VENV_BIN / "lmsgate"), "serve", "--port", str(port)], cwd=workdir, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, proc, "/unified/lms/completions?page_size=1", auth_headers())
        yield Server(base, proc, time.monotonic() - started)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextmanager
def bare_server() -> Iterator[Server]:
    port = free_port()
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(VENV_BIN / "uvicorn"), "bench.bare_app:app", "--port", str(port), "--log-level", "warning",
         "--no-access-log", "--loop", "uvloop", "--http", "httptools"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, proc, "/", {})
        yield Server(base, proc, time.monotonic() - started)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def auth_headers() -> dict[str, str]:
    token = base64.b64encode(f"{API_KEY}:".encode()).decode()
    return {"Authorization": f"Basic {token}", "x-account-id": ACCOUNT}


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, capture_output=True)
        found = shutil.which("wrk")
    if not found:
        sys.exit("wrk is needed: apt-get install wrk")
    return found


@dataclass
class Result:
    scenario: str
    requests: int = 0
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    p999_ms: float = 0.0
    errors: int = 0
    ratio: float | None = None
    notes: list[str] = field(default_factory=list)


def run_wrk(url: str, lua_body: str, seconds: float, connections: int = CONNECTIONS,
            headers: dict[str, str] | None = None) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua_body + DONE_LUA)
        script = f.name
    cmd = [ensure_wrk(), "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
           "-s", script]
    for k, v in (headers or {}).items():
        cmd += ["-H", f"{k}: {v}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    os.unlink(script)
    line = next(l for l in out.splitlines() if l.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def to_result(name: str, raw: dict[str, Any]) -> Result:
    seconds = raw["duration_us"] / 1e6
    return Result(
        scenario=name, requests=raw["requests"], rps=raw["requests"] / seconds,
        p50_ms=raw["p50_us"] / 1000, p99_ms=raw["p99_us"] / 1000, p999_ms=raw["p999_us"] / 1000,
        errors=raw["status_errors"] + raw["socket_errors"],
    )


def lua_post_completions() -> str:
    return (BENCH / "lua" / "post_completion.lua").read_text()


def lua_fixed(method: str, body: str | None = None) -> str:
    body_lua = "nil" if body is None else json.dumps(body)
    return f'wrk.method = "{method}"\nwrk.body = {body_lua}\n'


def count_completions(database_url: str) -> int:
    from sqlalchemy import func, select

    from lmsgate.store import tables as t
    from lmsgate.store.db import create_db_engine

    engine = create_db_engine(database_url)
    with engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(t.completions)).scalar_one()
    engine.dispose()
    return int(n)


def post_scenario(name: str, database_url: str, workdir: Path, seconds: float, ceiling: float) -> tuple[Result, Server]:
    with lmsgate_server(database_url, workdir) as server:
        before = count_completions(database_url)
        raw = run_wrk(server.base + "/unified/lms/users/x/completions", lua_post_completions(), seconds,
                      headers={**auth_headers(), "Content-Type": "application/json"})
        result = to_result(name, raw)
        result.ratio = result.rps / ceiling
        result.notes.append(f"RSS {server.rss_mb:.0f} MB (+{server.children_rss_mb:.0f} MB in child processes), "
                            f"startup {server.startup_s * 1000:.0f} ms")
        acknowledged = raw["requests"] - raw["status_errors"]
    stored = count_completions(database_url) - before
    # every 201 must be in the database once the server is gone
    result.notes.append(f"201s {acknowledged}, rows stored {stored}")
    if stored < acknowledged:
        result.notes.append("DURABILITY VIOLATION")
    return result, server


def populate_completions(database_url: str, n: int) -> None:
    """Bulk-load ``n`` completions straight into the store (setup for the read scenario)."""
    from datetime import datetime, timezone

    from sqlalchemy import func, select

    from lmsgate.ids import new_id
    from lmsgate.store import tables as t
    from lmsgate.store.db import create_db_engine

    engine = create_db_engine(database_url)
    with engine.begin() as conn:
        key = conn.execute(select(t.accounts.c.key).where(t.accounts.c.id == ACCOUNT)).scalar_one()
        have = conn.execute(select(func.count()).select_from(t.completions)
                            .where(t.completions.c.account_key == key)).scalar_one()
    ts = datetime.now(timezone.utc)
    batch = 20_000
    for start in range(have, n, batch):
        rows = [
            {"account_key": key, "id": new_id(), "created_at": ts, "updated_at": ts, "user_id": f"bulk-{i % 5000}",
             "learning_object_id": None, "learning_object_external_reference": f"lo-{i}",
             "learning_object_type": None, "completed_at": ts, "time_spent": "PT1H", "time_spent_seconds": 3600,
             "time_spent_months": 0, "result_value": "Pass", "result_source_value": None,
             "score_percentage": 80.0, "score_raw_value": None, "passthrough": None, "dedupe_key": f"bulk-{i}"}
            for i in range(start, min(n, start + batch))
        ]
        with engine.begin() as conn:
            conn.execute(t.completions.insert(), rows)
    engine.dispose()


def deep_cursor(database_url: str, page: int, page_size: int) -> str:
    from sqlalchemy import select

    from lmsgate.store import tables as t
    from lmsgate.store.db import create_db_engine
    from lmsgate.store.pagination import CursorCodec
    from lmsgate.store.tenancy import Tenancy

    engine = create_db_engine(database_url)
    with engine.connect() as conn:
        key = conn.execute(select(t.accounts.c.key).where(t.accounts.c.id == ACCOUNT)).scalar_one()
        last = conn.execute(
            select(t.completions.c.id).where(t.completions.c.account_key == key)
            .order_by(t.completions.c.id).offset(page * page_size - 1).limit(1)
        ).scalar_one()
    codec = CursorCodec(Tenancy(engine).instance_secret("cursor_secret"))
    engine.dispose()
    return codec.encode(ACCOUNT, "list_completions", last)


def after_warmup(samples: list[tuple[float, float]]) -> float:
    """The first RSS sampled 30 s or more into the soak (or the first of all): the baseline
    that growth is measured from, once caches and pools have filled."""
    return next((rss for t, rss in samples if t >= 30), samples[0][1])


def soak(database_url: str, workdir: Path, seconds: float) -> tuple[list[tuple[float, float]], Result]:
    samples: list[tuple[float, float]] = []
    children: list[tuple[float, float]] = []
    with lmsgate_server(database_url, workdir) as server:
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
            f.write(lua_post_completions() + DONE_LUA)
            script = f.name
        cmd = [ensure_wrk(), "-t1", f"-c{CONNECTIONS}", f"-d{int(seconds)}s", "--timeout", "10s", "-s", script]
        for k, v in {**auth_headers(), "Content-Type": "application/json"}.items():
            cmd += ["-H", f"{k}: {v}"]
        load = subprocess.Popen([*cmd, server.base + "/"], stdout=subprocess.PIPE, text=True)
        start = time.monotonic()
        while load.poll() is None:
            samples.append((time.monotonic() - start, server.rss_mb))
            children.append((samples[-1][0], server.children_rss_mb))
            time.sleep(5)
        out = load.stdout.read() if load.stdout else ""
        os.unlink(script)
        line = next(l for l in out.splitlines() if l.startswith("RESULT "))
        result = to_result(f"soak: POST completions, SQLite, {int(seconds)} s", json.loads(line[7:]))
    if children:
        result.notes.append(f"child processes {after_warmup(children):.0f} MB at 30 s -> "
                            f"{children[-1][1]:.0f} MB at end")
    return samples, result


def compile_bytecode() -> None:
    """Write lmsgate's bytecode before the first start. Every install but an editable one
    (``pip install -e .``, the README's) does; so does a first start, unless
    ``PYTHONDONTWRITEBYTECODE`` is set (as on some CI machines, where every start would
    compile all of lmsgate again, a few hundred milliseconds). Startup is then measured as a
    user sees it at every start after the first."""
    import compileall

    import lmsgate

    compileall.compile_dir(Path(lmsgate.__file__).parent, quiet=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10, help="duration of each scenario")
    parser.add_argument("--rows", type=int, default=1_000_000, help="completions stored for the read scenario")
    parser.add_argument("--soak-seconds", type=float, default=300, help="RSS soak length (0 to skip)")
    parser.add_argument("--quick", action="store_true", help="5 s scenarios, 100k rows, no soak, no docs")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--write-docs", action="store_true", help="write docs/benchmarks.md and the chart")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.rows, args.soak_seconds = 5, 100_000, 0
    ensure_wrk()
    compile_bytecode()
    results: list[Result] = []
    t0 = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="lmsgate-bench-"))
    sqlite_url = f"sqlite:///{work}/bench.db"

    with bare_server() as bare:
        ceiling = to_result("ceiling: bare ASGI, fixed 201", run_wrk(
            bare.base + "/", lua_fixed("POST", "{}"), args.seconds))
        ceiling.ratio = 1.0
        ceiling.notes.append(f"RSS {bare.rss_mb:.0f} MB")
    results.append(ceiling)

    r1, first = post_scenario("1. POST completion, SQLite", sqlite_url, work, args.seconds, ceiling.rps)
    results.append(r1)

    if not args.no_postgres:
        pg_url = _fresh_pg_database()
        try:
            r2, _ = post_scenario("2. POST completion, PostgreSQL", pg_url, work, args.seconds, ceiling.rps)
            results.append(r2)
        finally:
            _drop_pg_database(pg_url)

    read_url = f"sqlite:///{work}/read.db"
    with lmsgate_server(read_url, work):
        pass  # creates schema, key and account
    populate_completions(read_url, args.rows)
    with lmsgate_server(read_url, work) as server:
        url = server.base + "/unified/lms/completions?page_size=100"
        first_page = to_result(f"3a. GET page 1 of {args.rows:,}", run_wrk(
            url, lua_fixed("GET"), args.seconds, headers=auth_headers()))
        deep_page = args.rows // 100 // 2 if args.rows < 1_000_000 else 5000
        cursor = deep_cursor(read_url, deep_page, 100)
        deep = to_result(f"3b. GET page {deep_page:,} (keyset)", run_wrk(
            f"{url}&next={cursor}", lua_fixed("GET"), args.seconds, headers=auth_headers()))
        deep.notes.append(f"{deep.rps and first_page.rps / deep.rps:.2f}x the cost of page 1")
        from lmsgate.settings import Settings

        readers = Settings(database_url=read_url).read_processes
        first_page.notes.append(f"{readers} page reader{'s' if readers != 1 else ''}; RSS {server.rss_mb:.0f} MB "
                                f"(+{server.children_rss_mb:.0f} MB in child processes)")
        for r in (first_page, deep):
            r.ratio = r.rps / ceiling.rps
        results += [first_page, deep]

        upsert = to_result("4. PUT content upsert", run_wrk(
            server.base + "/unified/lms/content", (BENCH / "lua" / "put_content.lua").read_text(), args.seconds,
            headers={**auth_headers(), "Content-Type": "application/json"}))
        upsert.ratio = upsert.rps / ceiling.rps
        batch_body = json.dumps({"items": [{"external_reference": f"batch-{i}", "title": f"Item {i}",
                                            "duration": "PT10M"} for i in range(1000)]})
        batch = to_result("5. POST content/batch, 1,000 items", run_wrk(
            server.base + "/unified/lms/content/batch", lua_fixed("POST", batch_body), args.seconds,
            headers={**auth_headers(), "Content-Type": "application/json"}))
        batch.ratio = batch.rps / ceiling.rps
        batch.notes.append(f"{batch.rps * 1000:,.0f} items/s")
        results += [upsert, batch]

    soak_samples: list[tuple[float, float]] = []
    if args.soak_seconds:
        soak_samples, soak_result = soak(f"sqlite:///{work}/soak.db", work, args.soak_seconds)
        soak_result.ratio = soak_result.rps / ceiling.rps
        baseline = after_warmup(soak_samples)
        growth = (soak_samples[-1][1] - baseline) / baseline * 100
        soak_result.notes.append(
            f"RSS {baseline:.0f} MB at 30 s -> {soak_samples[-1][1]:.0f} MB at end ({growth:+.1f}%)")
        results.append(soak_result)

    elapsed = time.monotonic() - t0
    print_table(results, first.startup_s, elapsed)
    if args.write_docs:
        write_docs(results, first.startup_s, soak_samples, elapsed, args)
    shutil.rmtree(work, ignore_errors=True)


def _fresh_pg_database() -> str:
    import secrets

    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(PG_URL)
    name = f"lmsgate_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin.set(drivername="postgresql").render_as_string(hide_password=False),
                         autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin.set(database=name).render_as_string(hide_password=False)


def _drop_pg_database(url: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    admin = make_url(PG_URL).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')


def print_table(results: list[Result], startup_s: float, elapsed: float) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"lmsgate benchmarks ({CONNECTIONS} connections, wrk)")
    for col in ("scenario", "req/s", "x ceiling", "p50 ms", "p99 ms", "p99.9 ms", "errors", "notes"):
        table.add_column(col, justify="left" if col in ("scenario", "notes") else "right")
    for r in results:
        table.add_row(r.scenario, f"{r.rps:,.0f}", f"{r.ratio:.2f}" if r.ratio is not None else "",
                      f"{r.p50_ms:.2f}", f"{r.p99_ms:.2f}", f"{r.p999_ms:.2f}", str(r.errors), "; ".join(r.notes))
    console = Console(width=200)
    console.print(table)
    console.print(f"startup to first successful request: {startup_s * 1000:.0f} ms; whole run {elapsed:.0f} s")


def write_docs(results: list[Result], startup_s: float, soak_samples: list[tuple[float, float]],
               elapsed: float, args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    docs = ROOT / "docs"
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    names = [r.scenario for r in results]
    ax1.barh(names[::-1], [r.ratio or 0 for r in results][::-1], color="#4a7fb5")
    ax1.axvline(0.5, color="#c44", linestyle="--", linewidth=1)
    ax1.set_xlabel("throughput as a fraction of the bare-ASGI ceiling")
    ax1.tick_params(axis="y", labelsize=7)
    if soak_samples:
        ax2.plot([t for t, _ in soak_samples], [m for _, m in soak_samples], color="#4a7fb5")
        ax2.set_xlabel("seconds under load")
        ax2.set_ylabel("RSS (MB)")
        ax2.set_ylim(bottom=0)
        ax2.set_title("memory during the soak")
    fig.tight_layout()
    fig.savefig(docs / "benchmarks.png", dpi=110)
    rows = "\n".join(
        f"| {r.scenario} | {r.rps:,.0f} | {r.ratio:.2f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.p999_ms:.2f} "
        f"| {r.errors} | {'; '.join(r.notes)} |" for r in results)
    text = (docs / "benchmarks.template.md").read_text().format(
        table=rows, startup_ms=f"{startup_s * 1000:.0f}", elapsed=f"{elapsed:.0f}",
        date=time.strftime("%Y-%m-%d"), seconds=args.seconds, rows=f"{args.rows:,}",
        cpus=os.cpu_count())
    (docs / "benchmarks.md").write_text(text)
    print(f"wrote {docs / 'benchmarks.md'} and benchmarks.png")


if __name__ == "__main__":
    main()
