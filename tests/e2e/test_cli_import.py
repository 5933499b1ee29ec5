"""``lmsgate completions import|export`` and ``lmsgate keys`` as an operator runs them."""

from __future__ import annotations

import base64
import csv
import json
import os
import pty
import select
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import Result
from typer.testing import CliRunner

from lmsgate.bootstrap import Container, bootstrap
from lmsgate.cli.main import app
from lmsgate.client import Client
from lmsgate.settings import Settings
from lmsgate.store import tables as t
from lmsgate.store.pagination import PageRequest
from support import LMSGATE, serving

HEADER = ["user_id", "learning_object_external_reference", "completed_at", "time_spent", "result.value",
          "score.percentage", "score.raw_value"]
START = datetime(2023, 1, 1, tzinfo=timezone.utc)
runner = CliRunner()


def good_row(i: int) -> list[str]:
    when = (START + timedelta(seconds=i)).isoformat().replace("+00:00", "Z")
    return [f"learner-{i % 5000}", f"course-{i % 700}", when, f"PT{i % 5}H{i % 60}M",
            "Pass" if i % 3 else "Fail", str(i % 101), f"{i % 101} / 100"]


def write_csv(path: Path, rows: int, bad: dict[int, list[str]] | None = None) -> Path:
    """``rows`` good rows; ``bad`` puts a bad row before good row number ``key``."""
    bad = bad or {}
    with path.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(HEADER)
        for i in range(rows):
            if i in bad:
                w.writerow(bad[i])
            w.writerow(good_row(i))
    return path


@dataclass
class Store:
    url: str
    account_id: str
    container: Container
    env: dict[str, str]

    def count(self, account_id: str | None = None) -> int:
        return self.container.store.count(t.completions, account_id or self.account_id)

    def new_account(self) -> str:
        project = self.container.tenancy.first_project()
        assert project
        return self.container.tenancy.create_account(project, "local").id


def make_store(url: str, tmp: Path) -> Store:
    env = {"LMSGATE_DATABASE_URL": url, "LMSGATE_VAULT_KEY_FILE": str(tmp / "vault.key")}
    container = bootstrap(Settings(database_url=url, vault_key_file=env["LMSGATE_VAULT_KEY_FILE"]))
    project = container.tenancy.create_project("cli")
    account = container.tenancy.create_account(project, "local").id
    return Store(url, account, container, env)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return make_store(f"sqlite:///{tmp_path / 'cli.db'}", tmp_path)


def run(args: list[str], store: Store, cwd: Path, **kw) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("LMSGATE_")}
    return subprocess.run([*LMSGATE, *args], cwd=cwd, env={**inherited, **store.env}, capture_output=True,
                          text=True, timeout=300, check=False, **kw)


def start(args: list[str], store: Store, cwd: Path) -> subprocess.Popen[str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("LMSGATE_")}
    return subprocess.Popen([*LMSGATE, *args], cwd=cwd, env={**inherited, **store.env}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def import_args(file: Path, store: Store, *extra: str) -> list[str]:
    return ["completions", "import", str(file), "--account-id", store.account_id, *extra]


def test_a_100k_row_file_imports_and_a_rerun_adds_nothing(store: Store, tmp_path: Path) -> None:
    file = write_csv(tmp_path / "completions.csv", 100_000)
    first = run(import_args(file, store), store, tmp_path)
    assert first.returncode == 0, first.stderr
    assert "100,000 rows, 100,000 added, 0 already there, 0 rejected" in first.stderr
    assert "rows/s" not in first.stderr and "━" not in first.stderr  # no progress bar when piped
    assert store.count() == 100_000
    assert not (tmp_path / "completions.csv.import-state.json").exists()
    assert not (tmp_path / "completions.csv.rejected.csv").exists()

    again = run(import_args(file, store), store, tmp_path)
    assert again.returncode == 0, again.stderr
    assert "100,000 rows, 0 added, 100,000 already there" in again.stderr
    assert store.count() == 100_000

    # the rows are the ones in the file, converted as the API converts them
    row = store.container.store.list(t.completions, store.account_id, PageRequest(page_size=1)).items[0]
    i = int((row["completed_at"] - START).total_seconds())
    assert (row["user_id"], row["learning_object_external_reference"], row["time_spent"]) == (
        f"learner-{i % 5000}", f"course-{i % 700}", f"PT{i % 5}H{i % 60}M")


BAD_KINDS: list[tuple[list[str], str]] = [
    (["", "course-1", "2024-01-01T00:00:00Z", "", "", "", ""], "user_id: required"),
    (["u", "", "2024-01-01T00:00:00Z", "", "", "", ""], "learning_object_external_reference"),
    (["u", "c", "2024-13-01T00:00:00Z", "", "", "", ""], "completed_at"),
    (["u", "c", "yesterday", "", "", "", ""], "completed_at"),
    (["u", "c", "2024-01-01T00:00:00Z", "PT1X", "", "", ""], "time_spent"),
    (["u", "c", "2024-01-01T00:00:00Z", "", "", "101", ""], "score.percentage"),
    (["u", "c", "2024-01-01T00:00:00Z", "", "", "lots", ""], "score.percentage"),
    (["u", "c", "2024-01-01T00:00:00Z", "", "", "-3", ""], "score.percentage"),
    (["u", "c", "2024-01-01T00:00:00Z"], "has 3 fields where the header has 7"),
    (["u", "c", "2024-01-01T00:00:00Z", "P0.5M", "", "", ""], "time_spent"),
]


def bad_file(tmp_path: Path) -> tuple[Path, dict[int, str]]:
    """1,000 good rows and 50 bad ones of ten kinds; returns the bad rows' line numbers → reason."""
    bad = {i * 20 + 7: BAD_KINDS[i % len(BAD_KINDS)][0] for i in range(50)}
    file = write_csv(tmp_path / "mixed.csv", 1000, bad)
    expected: dict[int, str] = {}
    line = 2  # after the header
    for i in range(1000):
        if i in bad:
            expected[line] = BAD_KINDS[(i - 7) // 20 % len(BAD_KINDS)][1]
            line += 1
        line += 1
    return file, expected


# In this process, and in worker processes with small batches so that chunks end everywhere.
WORKERS = pytest.mark.parametrize("workers", [[], ["--workers", "2", "--batch-size", "7"]], ids=["inline", "workers"])


@WORKERS
def test_fifty_bad_rows_of_different_kinds_are_each_reported(store: Store, tmp_path: Path, workers: list[str]) -> None:
    file, expected = bad_file(tmp_path)
    result = run(import_args(file, store, *workers), store, tmp_path)
    assert result.returncode == 3, result.stderr  # done, with rejected rows
    assert "1,050 rows, 1,000 added, 0 already there, 50 rejected" in result.stderr
    assert "Traceback" not in result.stderr
    with (tmp_path / "mixed.csv.rejected.csv").open(newline="") as f:
        report = list(csv.DictReader(f))
    assert [int(r["line"]) for r in report] == sorted(expected)
    for r in report:
        assert expected[int(r["line"])] in r["reason"], r
        assert r["record"] == file.read_text().splitlines()[int(r["line"]) - 1]
    assert store.count() == 1000


@WORKERS
def test_dry_run_reports_every_bad_row_and_writes_nothing(store: Store, tmp_path: Path, workers: list[str]) -> None:
    file, expected = bad_file(tmp_path)
    result = run(import_args(file, store, "--dry-run", *workers), store, tmp_path)
    assert result.returncode == 3, result.stderr
    for line, reason in expected.items():
        assert f"line {line}: " in result.stderr and reason in result.stderr
    assert result.stderr.count("\nline ") + result.stderr.startswith("line ") == 50
    assert "Checked 1,050 rows: 1,000 valid, 50 rejected. Nothing was written" in result.stderr
    assert store.count() == 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("mixed")) == ["mixed.csv"]


def _wait_for_state(state: Path, proc: subprocess.Popen[str], min_offset: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else "the import ended early"
        try:
            if json.loads(state.read_text())["offset"] >= min_offset:
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.02)
    raise AssertionError("the import made no progress")


def _descendants(pid: int) -> set[int]:
    """The processes below ``pid`` (its children, theirs, …), from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    found, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        for child, its_parent in parents.items():
            if its_parent == parent and child not in found:
                found.add(child)
                todo.append(child)
    return found


def _gone(pids: set[int], within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not any(Path(f"/proc/{p}").exists() and "Z" not in _state_of(p) for p in pids):
            return True
        time.sleep(0.1)
    return False


def _state_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return "gone"


@pytest.mark.parametrize(("how", "workers"), [(signal.SIGKILL, "2"), (signal.SIGINT, "2"), (signal.SIGINT, "0"),
                                              (signal.SIGTERM, "2")],
                         ids=["SIGKILL-workers", "SIGINT-workers", "SIGINT-inline", "SIGTERM-workers"])
def test_an_interrupted_import_resumes_and_ends_complete(store: Store, tmp_path: Path, how: signal.Signals,
                                                         workers: str) -> None:
    rows = 60_000
    file = write_csv(tmp_path / "big.csv", rows)
    state = tmp_path / "big.csv.import-state.json"
    proc = start(import_args(file, store, "--batch-size", "1000", "--workers", workers), store, tmp_path)
    _wait_for_state(state, proc, file.stat().st_size // 5)
    helpers = _descendants(proc.pid)
    assert bool(helpers) == (workers != "0")  # a fork server and its workers (and a resource tracker)
    proc.send_signal(how)
    _, err = proc.communicate(timeout=60)
    if how in (signal.SIGINT, signal.SIGTERM):
        assert proc.returncode == 130, err
        assert "Interrupted. Run the same command again to resume at line" in err and "Traceback" not in err
    else:
        assert proc.returncode == -signal.SIGKILL
    assert _gone(helpers, within=10), "worker processes outlived the import"
    stored = store.count()
    saved = json.loads(state.read_text())
    if how in (signal.SIGINT, signal.SIGTERM):  # the write under way is finished and its position saved
        assert 0 < saved["counts"]["written"] == stored < rows, (saved, stored)
    else:  # killed: the last write may be stored without its position
        assert 0 < saved["counts"]["written"] <= stored < rows

    resumed = run(import_args(file, store, "--batch-size", "1000"), store, tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"Resuming at line {saved['line']:,}" in resumed.stderr
    assert f"Imported big.csv: {rows:,} rows" in resumed.stderr
    assert store.count() == rows  # every row, none twice
    with store.container.engine.connect() as conn:
        keys = conn.execute(sa.select(sa.func.count(t.completions.c.dedupe_key.distinct()))
                            .where(t.completions.c.account_key == store.container.store.account_key(store.account_id))).scalar_one()
    assert keys == rows
    assert not state.exists()


def _read_pty(fd: int, proc: subprocess.Popen[bytes]) -> str:
    chunks = []
    while True:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # the other end closed
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    return b"".join(chunks).decode(errors="replace")


def test_workers_started_for_an_import_that_cannot_begin_are_stopped(store: Store, tmp_path: Path) -> None:
    """Workers start while the store opens, before the account is known: an import that then
    fails (no such account) must stop them, and say so in one line."""
    file = write_csv(tmp_path / "few.csv", 10)
    proc = start(["completions", "import", str(file), "--account-id", "no-such-account", "--workers", "2"],
                 store, tmp_path)
    helpers: set[int] = set()
    while proc.poll() is None:
        helpers |= _descendants(proc.pid)
        time.sleep(0.01)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "no linked account 'no-such-account'" in err and "Traceback" not in err
    assert helpers, "no worker had started"
    assert _gone(helpers, within=10), "worker processes outlived the import"


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM])
def test_stopping_an_import_while_its_workers_start_is_clean(store: Store, tmp_path: Path,
                                                              how: signal.Signals) -> None:
    """Ctrl-C on the terminal (to the whole process group, workers included) or SIGTERM (to the
    command) while the workers are still starting and the store is still opening: one line
    and exit 130, as at any other time; no traceback from a worker, nothing left behind."""
    silent = socket.socket()  # a database server that never answers: the store stays opening
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    file = write_csv(tmp_path / "few.csv", 10)
    url = f"postgresql://lmsgate@127.0.0.1:{silent.getsockname()[1]}/lmsgate"
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("LMSGATE_")}
    proc = subprocess.Popen([*LMSGATE, "completions", "import", str(file), "--database-url", url, "--account-id",
                             "any", "--workers", "2"], cwd=tmp_path, env={**inherited, **store.env}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        helpers: set[int] = set()
        deadline = time.monotonic() + 30
        while len(helpers) < 3 and proc.poll() is None and time.monotonic() < deadline:
            helpers = _descendants(proc.pid)  # two workers and a resource tracker
            time.sleep(0.005)
        assert len(helpers) == 3, helpers
        time.sleep(0.05)  # the pool is made; the workers' interpreters are starting
        if how == signal.SIGINT:
            os.killpg(proc.pid, how)  # as a terminal sends it
        else:
            proc.send_signal(how)  # as a service manager sends it
        _, err = proc.communicate(timeout=60)
    finally:
        silent.close()
        if proc.poll() is None:
            proc.kill()
    # Early in the command a Ctrl-C sometimes ends it by SIGINT itself after the message, with
    # or without workers (seen with --workers 0 too); a shell reports both as 130.
    assert proc.returncode in (130, -signal.SIGINT), err
    assert "Interrupted." in err and "Traceback" not in err and "leaked" not in err, err
    assert _gone(helpers, within=10), "worker processes outlived the import"


def test_the_progress_bar_shows_on_a_terminal_and_not_when_piped(store: Store, tmp_path: Path) -> None:
    file = write_csv(tmp_path / "tty.csv", 20_000)
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("LMSGATE_")}
    env = {**inherited, **store.env, "TERM": "xterm-256color", "COLUMNS": "140"}
    env.pop("NO_COLOR", None)
    primary, secondary = pty.openpty()
    proc = subprocess.Popen([*LMSGATE, *import_args(file, store, "--batch-size", "1000")], cwd=tmp_path, env=env,
                            stdin=secondary, stdout=secondary, stderr=secondary)
    os.close(secondary)
    try:
        shown = _read_pty(primary, proc)
    finally:
        os.close(primary)
    assert proc.wait(timeout=60) == 0, shown
    assert "importing" in shown and "rows/s" in shown and "ETA" in shown and "━" in shown, shown
    assert "20,000 rows, 20,000 added" in shown

    piped = run(import_args(file, store), store, tmp_path)
    assert piped.returncode == 0
    assert "importing" not in piped.stderr and "rows/s" not in piped.stderr and "━" not in piped.stderr
    assert "20,000 rows, 0 added, 20,000 already there" in piped.stderr


def test_export_then_import_elsewhere_round_trips(store: Store, tmp_path: Path) -> None:
    file = write_csv(tmp_path / "src.csv", 2500)
    assert run(import_args(file, store), store, tmp_path).returncode == 0

    def cli(*args: str) -> Result:
        result = runner.invoke(app, [*args, "--database-url", store.url])
        assert result.exit_code == 0, result.output
        return result

    exported = tmp_path / "out.csv"
    assert "Exported 2,500 completions" in cli("completions", "export", "--account-id", store.account_id,
                                               "-o", str(exported)).stderr
    with exported.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2500 and rows[0]["id"] and rows[0]["time_spent"]

    other = store.new_account()
    assert "2,500 rows, 2,500 added" in cli("completions", "import", str(exported), "--account-id", other).stderr

    def keyed(account: str) -> set[tuple[str, str, str, str]]:
        out = cli("completions", "export", "--account-id", account, "--format", "jsonl").stdout
        return {(c["user_id"], c["learning_object_external_reference"], c["completed_at"], c["time_spent"])
                for c in map(json.loads, out.splitlines())}

    assert keyed(store.account_id) == keyed(other) and len(keyed(other)) == 2500

    one = cli("completions", "export", "--account-id", store.account_id, "--user-id", "learner-7", "--format", "jsonl")
    assert {json.loads(x)["user_id"] for x in one.stdout.splitlines()} == {"learner-7"}
    future = cli("completions", "export", "--account-id", store.account_id, "--updated-after", "2999-01-01T00:00:00Z")
    assert future.stdout == ""


def test_workers_store_exactly_what_one_process_stores(store: Store, tmp_path: Path) -> None:
    """The same JSON Lines file, imported in one process and by worker processes (small
    chunks, so that they end everywhere) into two accounts, exports the same completions."""
    file = write_csv(tmp_path / "src.csv", 1200)
    assert run(import_args(file, store, "--workers", "0"), store, tmp_path).returncode == 0
    jsonl = tmp_path / "all.jsonl"
    result = runner.invoke(app, ["completions", "export", "--account-id", store.account_id, "--format", "jsonl",
                                 "-o", str(jsonl), "--database-url", store.url])
    assert result.exit_code == 0, result.output

    inline, parallel = store.new_account(), store.new_account()
    for account, workers in ((inline, "0"), (parallel, "2")):
        done = run(["completions", "import", str(jsonl), "--account-id", account, "--workers", workers,
                    "--batch-size", "97"], store, tmp_path)
        assert done.returncode == 0 and "1,200 rows, 1,200 added" in done.stderr, done.stderr

    def stored(account: str) -> list[dict[str, object]]:
        out = runner.invoke(app, ["completions", "export", "--account-id", account, "--format", "jsonl",
                                  "--database-url", store.url]).stdout
        ignored = {"id", "remote_id", "created_at", "updated_at"}
        return sorted(({k: v for k, v in json.loads(x).items() if k not in ignored} for x in out.splitlines()),
                      key=lambda c: (str(c["user_id"]), str(c["completed_at"])))

    assert stored(parallel) == stored(inline) and len(stored(parallel)) == 1200


def test_import_and_export_through_a_running_server(store: Store, tmp_path: Path) -> None:
    key = store.container.tenancy.issue_key(store.container.tenancy.first_project(), "cli").secret
    file = write_csv(tmp_path / "remote.jsonl.csv", 300)
    jsonl = tmp_path / "remote.jsonl"
    with jsonl.open("w") as f, file.open(newline="") as src:
        for row in csv.DictReader(src):
            f.write(json.dumps({"user_id": row["user_id"], "learning_object_external_reference":
                                row["learning_object_external_reference"], "completed_at": row["completed_at"],
                                "result": {"value": row["result.value"]},
                                "score": {"percentage": float(row["score.percentage"])}}) + "\n")
        f.write('{"user_id": "u", "learning_object_external_reference": "c", "score": {"percentage": 300}}\n')
    with serving(tmp_path, {**store.env, "LMSGATE_RATE_LIMIT_PER_MINUTE": "0"}) as (base, _):
        remote = ["--server-url", base, "--api-key", key, "--account-id", store.account_id]
        result = run(["completions", "import", str(jsonl), *remote, "--batch-size", "100"], store, tmp_path)
        assert result.returncode == 3, result.stderr
        assert "301 rows, 300 sent, 1 rejected" in result.stderr and "line 301: score.percentage" in result.stderr
        again = run(["completions", "import", str(jsonl), *remote], store, tmp_path)
        assert again.returncode == 3
        with Client(key, server_url=base, account_id=store.account_id) as client:
            assert sum(1 for _ in client.lms.iter_completions(page_size=1000)) == 300
        exported = run(["completions", "export", *remote, "--format", "jsonl"], store, tmp_path)
        assert exported.returncode == 0 and len(exported.stdout.splitlines()) == 300
        # A run that fails at once (a wrong key) leaves the last report and the last export alone.
        report = tmp_path / "remote.jsonl.rejected.csv"
        assert "line" in report.read_text()
        wrong = ["--server-url", base, "--api-key", "lmsg_" + "x" * 43, "--account-id", store.account_id]
        failed = run(["completions", "import", str(jsonl), *wrong, "--restart"], store, tmp_path)
        assert failed.returncode == 1 and "401" in failed.stderr, failed.stderr
        assert report.exists() and "score.percentage" in report.read_text()
        out = tmp_path / "export.jsonl"
        assert run(["completions", "export", *remote, "-o", str(out)], store, tmp_path).returncode == 0
        failed = run(["completions", "export", *wrong, "-o", str(out)], store, tmp_path)
        assert failed.returncode == 1 and len(out.read_text().splitlines()) == 300
        assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []
    assert store.count() == 300


@pytest.mark.parametrize("workers", ["0", "2"])
def test_import_into_postgresql_uses_the_same_path(tmp_path: Path, postgres_url: str, workers: str) -> None:
    store = make_store(postgres_url, tmp_path)
    file, _ = bad_file(tmp_path)
    first = run(import_args(file, store, "--batch-size", "300", "--workers", workers), store, tmp_path)
    assert first.returncode == 3, first.stderr
    assert "1,050 rows, 1,000 added, 0 already there, 50 rejected" in first.stderr
    again = run(import_args(file, store), store, tmp_path)
    assert "1,050 rows, 0 added, 1,000 already there, 50 rejected" in again.stderr
    assert store.count() == 1000



def test_keys_are_created_once_listed_and_revoked(store: Store) -> None:
    created = runner.invoke(app, ["keys", "create", "--name", "reporting", "--database-url", store.url])
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("lmsg_") and "shown once" in created.stderr
    project = store.container.tenancy.authenticate(key)
    assert project is not None

    listed = runner.invoke(app, ["keys", "list", "--project", project, "--database-url", store.url])
    assert listed.exit_code == 0 and "reporting" in listed.stdout and key[:12] in listed.stdout
    assert key not in listed.stdout
    key_id = next(k.id for k in store.container.tenancy.list_keys(project) if k.name == "reporting")
    # piped, a table wider than 80 columns is printed whole: the ids can be pasted
    wide = runner.invoke(app, ["keys", "list", "--all-projects", "--database-url", store.url],
                         env={"COLUMNS": "60"})
    assert wide.exit_code == 0 and key_id in wide.stdout and project in wide.stdout and "…" not in wide.stdout.replace(
        key[:12] + "…", ""), wide.stdout

    revoked = runner.invoke(app, ["keys", "revoke", key_id, "--database-url", store.url])
    assert revoked.exit_code == 0 and "revoked" in revoked.stderr
    assert store.container.tenancy.authenticate(key) is None
    assert "already revoked" in runner.invoke(app, ["keys", "revoke", key_id, "--database-url", store.url]).stderr

    missing = runner.invoke(app, ["keys", "revoke", "nope", "--database-url", store.url])
    assert missing.exit_code == 1 and "no API key with id 'nope'" in missing.stderr


def test_mistakes_get_one_readable_line_and_an_exit_code(store: Store, tmp_path: Path) -> None:
    def invoke(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, list(args))
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        return result.exit_code, result.stderr

    code, err = invoke("completions", "import", str(tmp_path / "missing.csv"), "--database-url", store.url)
    assert code == 1 and "no such file" in err
    odd = tmp_path / "odd.csv"
    odd.write_text("user_id,learning_object_external_reference,completed,score\nu,c,2024-01-01T00:00:00Z,1\n")
    code, err = invoke("completions", "import", str(odd), "--database-url", store.url)
    assert code == 1 and "completed, score" in err and "--column" in err
    code, err = invoke("completions", "import", str(odd), "--column", "completed_at", "--database-url", store.url)
    assert code == 2 and "FIELD=COLUMN" in err
    code, err = invoke("completions", "import", str(odd), "--column", "completed_at=completed",
                       "--column", "score.percentage=score", "--database-url", store.url)
    assert code == 0, err
    (tmp_path / "x.txt").write_text("a")
    code, err = invoke("completions", "import", str(tmp_path / "x.txt"), "--database-url", store.url)
    assert code == 1 and "--format" in err
    ok = write_csv(tmp_path / "ok.csv", 3)
    code, err = invoke("completions", "import", str(ok), "--database-url", "postgresql://nobody:s3cret@127.0.0.1:1/none")
    assert code == 1 and "cannot open the database" in err and "s3cret" not in err
    code, err = invoke("completions", "import", str(ok), "--account-id", "nope", "--database-url", store.url)
    assert code == 1 and "no linked account 'nope'" in err
    for option, command in (("--state", "import"), ("--report", "import"), ("-o", "export")):
        # Refused before any work, naming the directory (not a temporary file beside the target).
        target = str(tmp_path / "no" / "dir" / "out.json")
        args = [str(ok), option, target] if command == "import" else [option, target]
        code, err = invoke("completions", command, *args, "--database-url", store.url)
        assert code == 2 and f"the directory {tmp_path / 'no' / 'dir'} does not exist" in err, (option, err)
    code, err = invoke("completions", "import", str(odd), "--column", "completed=completed", "--database-url", store.url)
    assert code == 2 and "not a completion field" in err  # an option's mistake, as the help says
    semicolons = tmp_path / "semicolons.csv"
    semicolons.write_text("user_id;learning_object_external_reference\nu;c\n")
    code, err = invoke("completions", "import", str(semicolons), "--database-url", store.url)
    assert code == 1 and "comma-separated" in err
    old_mac = tmp_path / "old-mac.csv"
    old_mac.write_bytes(b"user_id,learning_object_external_reference\ru,c\r")
    code, err = invoke("completions", "import", str(old_mac), "--database-url", store.url)
    assert code == 1 and "carriage return alone" in err
    ghost = store.container.tenancy.create_account(store.container.tenancy.first_project(), "ghost-lms").id
    code, err = invoke("completions", "import", str(ok), "--account-id", ghost, "--database-url", store.url)
    assert code == 1 and "ghost-lms" in err and "501" in err
    code, err = invoke("completions", "export", "--updated-after", "last week", "--database-url", store.url)
    assert code == 2 and "--updated-after" in err


@contextmanager
def _json_server(answer: Callable[[BaseHTTPRequestHandler], tuple[int, dict[str, str], Any]]) -> Iterator[str]:
    """A stand-in for a ``--server-url`` server on a free port: ``answer(request)`` gives each
    request's status, extra headers and JSON body. Yields the base URL."""
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            status, headers, payload = answer(self)
            body = json.dumps(payload).encode()
            self.send_response(status)
            for name, value in {**headers, "content-type": "application/json",
                                "content-length": str(len(body))}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer  # noqa: N815 - the names http.server calls

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _too_many() -> tuple[int, dict[str, str], Any]:
    """A stand-in server's 429, asking for no wait."""
    return 429, {"retry-after": "0"}, {"statusCode": 429, "message": "Too many requests",
                                        "timestamp": "2024-01-01T00:00:00.000Z"}


def _created(n: int) -> tuple[int, dict[str, str], Any]:
    return 201, {}, {"statusCode": 201, "message": "Record created successfully.",
                     "timestamp": "2024-01-01T00:00:00.000Z", "data": {"id": f"c-{n}"}}


def _remote_import(url: str, file: Path, store: Store, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return run(["completions", "import", str(file), "--server-url", url,
                "--api-key", "k" * 20, "--account-id", "acct"], store, tmp_path)


def test_a_remote_import_says_when_the_server_limits_its_requests(store: Store, tmp_path: Path) -> None:
    """The client waits out a 429 and tries again by itself; the import says that the server
    is limiting it (once), so a slow import has a visible reason and a remedy."""
    answered = {"429": 0, "201": 0}
    lock = threading.Lock()

    def limited_three_times(_: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], Any]:
        with lock:
            limited = answered["429"] < 3
            answered["429" if limited else "201"] += 1
            n = answered["201"]
        return _too_many() if limited else _created(n)

    with _json_server(limited_three_times) as url:
        result = _remote_import(url, write_csv(tmp_path / "limited.csv", 20), store, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "20 rows, 20 sent" in result.stderr and answered == {"429": 3, "201": 20}
    assert result.stderr.count("limiting this API key's requests (429)") == 1
    assert "LMSGATE_RATE_LIMIT_PER_MINUTE" in result.stderr


def test_a_remote_import_waits_out_a_long_rate_limit(store: Store, tmp_path: Path) -> None:
    """Each request gave up after the client's 5 retries while 8 shared a server's slow
    refill: 65 of 120 rows were stored, after the import had said it was waiting. A remote
    import now waits out 429s for as long as the server asks."""
    tries: dict[str, int] = {}
    lock = threading.Lock()

    def limited_eight_times_each(handler: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], Any]:
        with lock:
            tries[handler.path] = tries.get(handler.path, 0) + 1
            limited = tries[handler.path] <= 8
        return _too_many() if limited else _created(len(tries))

    with _json_server(limited_eight_times_each) as url:
        result = _remote_import(url, write_csv(tmp_path / "slow.csv", 12), store, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "12 rows, 12 sent" in result.stderr and set(tries.values()) == {9}


def test_export_targets_and_a_stale_report(store: Store, tmp_path: Path) -> None:
    """export -o: a directory is refused before any work; a symlink is written through (the
    link stays a link); nothing half-written is left beside the target. An import of a file
    without rows removes the report an earlier import left, as one with rows does."""
    assert run(import_args(write_csv(tmp_path / "some.csv", 5), store), store, tmp_path).returncode == 0
    export = ["completions", "export", "--account-id", store.account_id, "--format", "jsonl"]
    refused = run([*export, "-o", str(tmp_path)], store, tmp_path)
    assert refused.returncode == 2 and "is a directory" in refused.stderr
    real = tmp_path / "real.jsonl"
    real.write_text("old\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    assert run([*export, "-o", str(link)], store, tmp_path).returncode == 0
    assert link.is_symlink() and len(real.read_text().splitlines()) == 5
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]

    empty = tmp_path / "empty.csv"
    empty.write_text(",".join(HEADER) + "\n" + ",".join(["u"] * len(HEADER)) + "\n")  # one bad row
    assert run(import_args(empty, store), store, tmp_path).returncode == 3
    report = tmp_path / "empty.csv.rejected.csv"
    assert report.exists()
    empty.write_text(",".join(HEADER) + "\n")  # the same file, now with no rows
    again = run(import_args(empty, store), store, tmp_path)
    assert again.returncode == 0, again.stderr
    assert not report.exists()  # the old report described a run that is over


def test_messy_files_found_in_the_wild(store: Store, tmp_path: Path) -> None:
    """Files a helper made by hand, each once refused, mangled or crashed on."""
    head = "user_id,learning_object_external_reference,completed_at"

    def imported(name: str, text: str, *extra: str) -> subprocess.CompletedProcess[str]:
        path = tmp_path / name
        path.write_text(text)
        result = run(import_args(path, store, *extra), store, tmp_path)
        assert "Traceback" not in result.stderr, result.stderr
        return result

    # A date that leaves the years 1-9999 once in UTC: one rejected row, not a crash that
    # lost the file's good rows too.
    result = imported("offsets.csv", f"{head}\nu1,c1,2024-01-01T00:00:00Z\nu2,c1,0001-01-01T00:30:00+01:00\n"
                                     f"u3,c1,9999-12-31T23:59:59-01:00\nu4,c1,2024-01-01T00:00:00Z\n")
    assert result.returncode == 3, result.stderr
    assert "line 3: completed_at" in result.stderr and "line 4: completed_at" in result.stderr
    assert store.count() == 2

    # A quote never closed: the record it opens is reported, not stored with every line
    # after it inside one value.
    result = imported("quote.csv", f"{head},score.raw_value\nq0,c1,2024-01-02T00:00:00Z,fine\n"
                                   f"q1,c1,2024-01-02T00:00:00Z,\"unterminated\nq2,c1,2024-01-02T00:00:00Z,ok\n")
    assert result.returncode == 3, result.stderr
    assert "line 3: not valid CSV" in result.stderr
    assert store.count() == 3

    # Excel ends a header with empty columns when cells right of the data were touched.
    result = imported("excel.csv", f"{head},,\nx1,c1,2024-01-03T00:00:00Z,,\n")
    assert result.returncode == 0, result.stderr
    assert store.count() == 4

    # A value over the csv module's default limit of 128 KiB, as the API and an export hold.
    long_ref = "r" * 140_000
    result = imported("long.csv", f"{head}\nl1,{long_ref},2024-01-04T00:00:00Z\n")
    assert result.returncode == 0, result.stderr
    assert store.count() == 5
    exported = tmp_path / "out.csv"
    assert run(["completions", "export", "--account-id", store.account_id, "-o", str(exported)],
               store, tmp_path).returncode == 0
    other = store.new_account()
    again = run(["completions", "import", str(exported), "--account-id", other], store, tmp_path)
    assert again.returncode == 0, again.stderr
    assert store.count(other) == 5


def test_a_server_that_echoes_the_key_does_not_get_it_printed(store: Store, tmp_path: Path) -> None:
    """A --server-url that answers with the Authorization header it was sent (a proxy, a
    misconfigured server), and a URL with a password in it: the CLI prints neither secret."""

    def echo(request: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], Any]:
        return 401, {}, {"statusCode": 401, "message": f"bad key: {request.headers.get('Authorization')}",
                         "timestamp": "2026-01-01T00:00:00Z"}

    key = "lmsg_" + "e" * 32
    with _json_server(echo) as url:
        echoed = run(["completions", "export", "--server-url", url, "--api-key", key, "--account-id", "x"],
                     store, tmp_path)
    assert echoed.returncode == 1 and "bad key: Basic [REDACTED]" in echoed.stderr, echoed.stderr
    unreachable = run(["completions", "export", "--server-url", "http://admin:URLPASS-123@127.0.0.1:1",
                       "--api-key", key, "--account-id", "x"], store, tmp_path)
    assert unreachable.returncode == 1 and "Cannot reach the server" in unreachable.stderr
    for result in (echoed, unreachable):
        assert key not in result.stderr and "URLPASS" not in result.stderr
        assert base64.b64encode(f"{key}:".encode()).decode() not in result.stderr


def test_a_report_or_state_that_is_the_input_is_refused(store: Store, tmp_path: Path) -> None:
    """--report naming the file being imported emptied it at the first rejected row (37,000 of
    40,000 rows never read, and a normal-looking summary); --state replaced it with the saved
    position, then deleted it."""
    file = write_csv(tmp_path / "in.csv", 50, bad={3: ["u"] * len(HEADER)})
    original = file.read_bytes()
    for extra in (["--report", str(file)], ["--state", str(file)], ["--state", str(tmp_path / ".." / tmp_path.name / "in.csv")],
                  ["--report", str(tmp_path / "same"), "--state", str(tmp_path / "same")], ["--state", str(tmp_path)]):
        result = run(import_args(file, store, *extra), store, tmp_path)
        assert result.returncode == 2, (extra, result.stderr)
        assert "destroy" in result.stderr or "is a directory" in result.stderr
    assert file.read_bytes() == original and store.count() == 0


def test_structured_source_values_and_big_numbers_survive_csv_and_json_lines(store: Store, tmp_path: Path) -> None:
    """A CSV export wrote a source_value object as Python text ("{'code': 7}"), and an import
    read an integer past 64 bits in passthrough as a float (the API keeps it)."""
    big = 123456789012345678901234567890
    values: list[Any] = [{"code": 7, "big": big}, ["a", 1, True], "plain", "[A] grade"]
    lines = [json.dumps({"user_id": f"u{i}", "learning_object_external_reference": "c1", "passthrough": {"n": big},
                         "result": {"value": "Pass", "source_value": v}}) for i, v in enumerate(values)]
    (tmp_path / "s.jsonl").write_text("\n".join(lines) + "\n")
    assert run(import_args(tmp_path / "s.jsonl", store), store, tmp_path).returncode == 0
    with store.container.engine.connect() as conn:
        kept = conn.execute(sa.select(t.completions.c.passthrough)).scalars().all()
    assert kept == [{"n": big}] * 4

    exported = run(["completions", "export", "--account-id", store.account_id, "-o", str(tmp_path / "s.csv")],
                   store, tmp_path)
    assert exported.returncode == 0, exported.stderr
    cells = {r["user_id"]: r["result.source_value"] for r in csv.DictReader((tmp_path / "s.csv").open())}
    assert json.loads(cells["u0"]) == values[0] and json.loads(cells["u1"]) == values[1]
    other = store.new_account()
    assert run(["completions", "import", str(tmp_path / "s.csv"), "--account-id", other], store,
               tmp_path).returncode == 0
    again = run(["completions", "export", "--account-id", other, "--format", "jsonl"], store, tmp_path)
    assert again.returncode == 0 and again.stdout, again.stderr
    back = {c["user_id"]: c["result"]["source_value"] for c in map(json.loads, again.stdout.splitlines())}
    assert back == {f"u{i}": v for i, v in enumerate(values)}


def test_export_to_any_stdout(store: Store, tmp_path: Path) -> None:
    """On a latin-1 standard output the export stopped with a traceback at the first character
    latin-1 lacks; into a pipe closed early (`| head`) it ended with an error and exit 1."""
    lines = [json.dumps({"user_id": f"☃-{i}", "learning_object_external_reference": "c"}) for i in range(3000)]
    (tmp_path / "u.jsonl").write_text("\n".join(lines) + "\n")
    assert run(import_args(tmp_path / "u.jsonl", store), store, tmp_path).returncode == 0
    export = ["completions", "export", "--account-id", store.account_id, "--format", "csv"]
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("LMSGATE_")}
    latin = subprocess.run([*LMSGATE, *export], cwd=tmp_path, env={**inherited, **store.env, "PYTHONIOENCODING": "latin-1"},
                           capture_output=True, timeout=300, check=False)
    assert latin.returncode == 0, latin.stderr
    assert latin.stdout.decode("utf-8").count("☃-") == 3000
    proc = start(export, store, tmp_path)
    assert proc.stdout is not None and proc.stdout.readline().startswith("id,")
    proc.stdout.close()  # the reader goes away, as `| head -1` does
    assert proc.wait(timeout=60) == 0
    assert proc.stderr is not None and proc.stderr.read() == ""


def test_a_row_too_long_for_a_url_is_refused_alone(store: Store, tmp_path: Path) -> None:
    """A remote server answers 414 for a user id that makes the path too long: that stopped the
    import, and every run stopped at the same row."""
    def answer(handler: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], Any]:
        if len(handler.path) > 2000:
            return 414, {}, {"statusCode": 414, "message": "url: too long", "timestamp": "2024-01-01T00:00:00.000Z"}
        return _created(1)

    file = tmp_path / "long.csv"
    rows = [good_row(0), [("x" * 3000), *good_row(1)[1:]], good_row(2)]
    with file.open("w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows([HEADER, *rows])
    with _json_server(answer) as url:
        result = _remote_import(url, file, store, tmp_path)
    assert result.returncode == 3, result.stderr
    assert "3 rows, 2 sent, 1 rejected" in result.stderr
    report = (tmp_path / "long.csv.rejected.csv").read_text()
    assert "414" in report and report.splitlines()[1].startswith("3,")


def test_header_names_match_whatever_their_case(store: Store, tmp_path: Path) -> None:
    """"User_ID" (as spreadsheets write it) was refused as an unknown column."""
    file = tmp_path / "caps.csv"
    file.write_text("User_ID,Learning_Object_External_Reference,COMPLETED_AT,Result.Value\n"
                    "u1,c1,2024-01-01T00:00:00Z,Pass\n")
    result = run(import_args(file, store), store, tmp_path)
    assert result.returncode == 0, result.stderr
    assert store.count() == 1
    file.write_text("user_id,USER_ID,learning_object_external_reference\nu1,u2,c1\n")
    twice = run(import_args(file, store), store, tmp_path)
    assert twice.returncode == 1 and "two columns for user_id" in twice.stderr, twice.stderr
