"""Writers in several processes on one SQLite file take turns on ``<database>-write.lock``.

SQLite lets one writer in at a time and makes the others sleep in growing steps; lmsgate's
writers wait on a file lock instead (``store.db.write_lock``). These tests use a real second
process holding that lock, and check what waits for it, what does not, and that a wait ends
the way SQLite's own would (``database is locked``) instead of hanging.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from lmsgate.store import db
from lmsgate.store.rate_limits import SqlTokenBuckets
from lmsgate.store.tenancy import Tenancy

_HOLDER = """
import sys
from lmsgate.store.db import create_db_engine, write_lock
engine = create_db_engine(sys.argv[1])
with write_lock(engine):
    print("held", flush=True)
    sys.stdin.readline()
print("released", flush=True)
"""


def _holder(url: str) -> subprocess.Popen[str]:
    """Another process, holding the write lock until told (a line on its stdin)."""
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def _release(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == "released"
    assert proc.wait(10) == 0


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with db.create_db_engine(url).begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (n INTEGER)")
    return url


def test_a_write_waits_for_another_process_and_goes_through_when_it_lets_go(url: str, tmp_path: Path) -> None:
    engine = db.create_db_engine(url)
    holder = _holder(url)
    assert (tmp_path / "store.db-write.lock").exists()
    done = threading.Event()

    def write() -> None:
        with db.writing(engine) as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
        done.set()

    writer = threading.Thread(target=write)
    try:
        writer.start()
        assert not done.wait(0.5), "the write went ahead while another process held the lock"
        with engine.connect() as conn:  # readers never wait
            assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 0
    finally:
        _release(holder)
    assert done.wait(10)
    writer.join(10)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 1


def test_threads_of_one_process_share_its_turn(url: str) -> None:
    """Nested writes on one thread do not wait for themselves, and the lock is free after."""
    engine = db.create_db_engine(url)
    with db.writing(engine) as outer:
        outer.execute(text("INSERT INTO t VALUES (1)"))
        with db.write_lock(engine):  # reentrant
            pass
    holder = _holder(url)  # another process gets the lock at once: it was let go
    _release(holder)


def test_a_wait_that_outlasts_sqlites_own_ends_as_sqlite_would(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db, "BUSY_TIMEOUT", 0.3)
    engine = db.create_db_engine(url)  # its lock takes the shorter wait
    holder = _holder(url)
    try:
        started = time.monotonic()
        with pytest.raises(OperationalError, match="database is locked"), db.writing(engine) as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
        assert time.monotonic() - started < 10
    finally:
        _release(holder)
    with db.writing(engine) as conn:  # the failed wait left nothing held
        conn.execute(text("INSERT INTO t VALUES (2)"))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM t")).scalars().all() == [2]


@pytest.mark.parametrize("what", ["project", "account", "api key", "rate-limit token"])
def test_account_and_rate_limit_writes_take_their_turn_too(tmp_path: Path, what: str) -> None:
    """Writes outside the record store (projects, accounts, keys; the shared rate-limit
    buckets, taken on every request) wait on the lock like the others, instead of meeting a
    locked file and polling for it."""
    url = f"sqlite:///{tmp_path / 'lmsgate.db'}"
    engine = db.create_db_engine(url)
    db.upgrade(engine)
    tenancy = Tenancy(engine)
    project = tenancy.create_project("p")
    write = {
        "project": lambda: tenancy.create_project("another"),
        "account": lambda: tenancy.create_account(project, "local"),
        "api key": lambda: tenancy.issue_key(project, "k"),
        "rate-limit token": lambda: SqlTokenBuckets(engine, capacity=5, per_second=1, namespace="key").take("a"),
    }[what]
    done = threading.Event()
    writer = threading.Thread(target=lambda: (write(), done.set()))
    holder = _holder(url)
    try:
        writer.start()
        assert not done.wait(0.5), f"the {what} was written while another process held the lock"
    finally:
        _release(holder)
    assert done.wait(10)
    writer.join(10)
