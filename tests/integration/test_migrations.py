"""The Alembic migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from conftest import _pg_database
from lmsgate.bootstrap import Container, bootstrap
from lmsgate.connectors.base import CallContext
from lmsgate.connectors.local.mapping import dedupe_key, dt
from lmsgate.schema import LmsCreateCompletionRequestDto
from lmsgate.settings import Settings
from lmsgate.setup import ensure_first_run
from lmsgate.store import tables as t
from lmsgate.store.db import MIGRATIONS, create_db_engine, upgrade
from lmsgate.store.tables import metadata
from support import shared_vault_key_file


def test_migrations_match_the_tables(container: Container) -> None:
    with container.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_upgrade_is_idempotent(container: Container) -> None:
    upgrade(container.engine)
    upgrade(container.engine)


def _schema(engine: sa.Engine) -> dict[str, dict[str, object]]:
    """Every table as the database describes it: columns in order (type, nullability, default),
    keys, unique constraints, indexes, foreign keys and checks, with their names."""
    insp = sa.inspect(engine)
    out: dict[str, dict[str, object]] = {}
    for name in sorted(insp.get_table_names()):
        pk = insp.get_pk_constraint(name)
        out[name] = {
            "columns": [(c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                        for c in insp.get_columns(name)],
            "primary key": (pk.get("name"), pk["constrained_columns"]),
            "unique": sorted((u["name"], tuple(u["column_names"])) for u in insp.get_unique_constraints(name)),
            "indexes": sorted((i["name"], tuple(i["column_names"]), i["unique"]) for i in insp.get_indexes(name)),
            "foreign keys": sorted((f["name"], tuple(f["constrained_columns"]), f["referred_table"],
                                    tuple(f["referred_columns"]), tuple(sorted(f["options"].items())))
                                   for f in insp.get_foreign_keys(name)),
            "checks": sorted((c["name"], c["sqltext"]) for c in insp.get_check_constraints(name)),
        }
    if engine.dialect.name == "postgresql":  # procrastinate's schema: tables, columns, functions, types
        with engine.connect() as conn:
            for what, query in {
                "job tables": "SELECT table_name, column_name, data_type FROM information_schema.columns "
                              "WHERE table_schema = 'procrastinate' ORDER BY 1, 2",
                "job functions": "SELECT p.proname, pg_get_function_identity_arguments(p.oid) FROM pg_proc p "
                                 "JOIN pg_namespace n ON n.oid = p.pronamespace "
                                 "WHERE n.nspname = 'procrastinate' ORDER BY 1, 2",
                "job types": "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
                             "WHERE n.nspname = 'procrastinate' ORDER BY 1",
                "job triggers": "SELECT event_object_table, trigger_name FROM information_schema.triggers "
                                "WHERE trigger_schema = 'procrastinate' ORDER BY 1, 2",
            }.items():
                found = [tuple(row) for row in conn.exec_driver_sql(query)]
                assert found, what  # the migrations made it: the comparison below means something
                out[what] = {"rows": found}
    return out


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
    else:
        yield from _pg_database()


def _at_revision(url: str, revision: str) -> sa.Engine:
    """A new database, migrated only up to ``revision``."""
    from alembic import command
    from alembic.config import Config

    engine = create_db_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    return engine


def _old_account(conn: sa.Connection, account_id: str, project_id: str = "p1") -> None:
    """A project and a local account as the tables stood before 0006."""
    ts = "2024-01-01 00:00:00.000000"
    if conn.execute(sa.text("SELECT count(*) FROM projects WHERE id = :p"), {"p": project_id}).scalar() == 0:
        conn.execute(sa.text("INSERT INTO projects (id, name, created_at) VALUES (:p, 'old', :ts)"),
                     {"p": project_id, "ts": ts})
    conn.execute(sa.text("INSERT INTO accounts (id, project_id, provider, status, config, created_at, updated_at) "
                         "VALUES (:a, :p, 'local', 'active', '{}', :ts, :ts)"),
                 {"a": account_id, "p": project_id, "ts": ts})


def _old_completion(conn: sa.Connection, account_id: str, rid: str, user: str, ref: str,
                    completed_at: str | None, key: str) -> None:
    conn.execute(sa.text(
        "INSERT INTO completions (account_id, id, created_at, updated_at, user_id, learning_object_external_reference, "
        "completed_at, dedupe_key) VALUES (:a, :id, :ts, :ts, :u, :ref, :at, :key)"),
        {"a": account_id, "id": rid, "ts": "2024-01-01 00:00:00.000000", "u": user, "ref": ref,
         "at": completed_at, "key": key})


def test_0005_rewrites_old_completion_keys_to_what_the_code_computes(fresh_url: str) -> None:
    """Completions stored with the old keys (a bare SHA-256) are still found as repeats after
    the upgrade: one with completed_at gets the time-led key, one without keeps its hash."""
    bodies = [("u1", LmsCreateCompletionRequestDto.model_validate(
                  {"learning_object_external_reference": "c1", "completed_at": "2024-03-05T06:07:08.123456Z"})),
              ("u2", LmsCreateCompletionRequestDto.model_validate({"learning_object_external_reference": "c2"}))]
    engine = _at_revision(fresh_url, "0004")
    with engine.begin() as conn:  # the state before 0005: plain hashes
        _old_account(conn, "acct-old")
        for rid, (user, body) in zip(["r1", "r2"], bodies):
            old = dedupe_key(user, body.learning_object_external_reference,
                             dt(body.completed_at) if body.completed_at else None)
            when = body.completed_at.replace(tzinfo=None).isoformat(" ") if body.completed_at else None
            _old_completion(conn, "acct-old", rid, user, body.learning_object_external_reference, when, old)
    engine.dispose()
    container = bootstrap(Settings(database_url=fresh_url, vault_key_file=shared_vault_key_file()))
    c = t.completions.c
    with container.engine.connect() as conn:
        keys = dict(conn.execute(sa.select(c.id, c.dedupe_key)).all())
    assert keys["r1"].startswith("20240305060708") and len(keys["r1"]) == 64
    ctx = CallContext(account=container.tenancy.get_account("acct-old"))
    again = anyio.run(container.service.create_completions, ctx, bodies)
    assert [(r.id, r.created) for r in again] == [("r1", False), ("r2", False)]
    container.engine.dispose()


def test_0006_keeps_every_record_with_its_account(fresh_url: str) -> None:
    """Records of two accounts, stored under their ids, are found under the same accounts
    after the upgrade to small account keys; keys are never given twice."""
    engine = _at_revision(fresh_url, "0005")
    ts = "2024-01-01 00:00:00.000000"
    with engine.begin() as conn:
        for n, account in enumerate(["acct-b", "acct-a"]):  # made in this order: b gets key 1
            _old_account(conn, account)
            conn.execute(sa.text(f"UPDATE accounts SET created_at = '2024-01-0{n + 1} 00:00:00.000000' "
                                 "WHERE id = :a"), {"a": account})
            conn.execute(sa.text("INSERT INTO lms_users (account_id, id, created_at, updated_at, doc) "
                                 "VALUES (:a, 'learner', :ts, :ts, '{}')"), {"a": account, "ts": ts})
            conn.execute(sa.text("INSERT INTO content (account_id, id, created_at, updated_at, external_reference, doc) "
                                 "VALUES (:a, :id, :ts, :ts, 'course-ref', '{}')"),
                         {"a": account, "id": f"content-{account}", "ts": ts})
            conn.execute(sa.text("INSERT INTO course_content (account_id, course_id, content_external_reference, "
                                 "position) VALUES (:a, 'course-1', 'course-ref', 0)"), {"a": account})
            _old_completion(conn, account, f"done-{account}", "learner", "course-ref", None, f"key-{account}")
    engine.dispose()
    container = bootstrap(Settings(database_url=fresh_url, vault_key_file=shared_vault_key_file()))
    store = container.store
    with container.engine.connect() as conn:
        keys = dict(conn.execute(sa.select(t.accounts.c.id, t.accounts.c.key)).all())
    assert keys == {"acct-b": 1, "acct-a": 2}
    for account in ["acct-a", "acct-b"]:
        assert store.get(t.completions, account, f"done-{account}") is not None
        assert store.get(t.completions, account, f"done-{[a for a in keys if a != account][0]}") is None
        assert store.count(t.completions, account) == 1
        assert store.get(t.users, account, "learner") is not None
        assert store.find_learning_object(account, "course-ref") == (f"content-{account}", "content")
        assert store.content_ids_for_courses(account, ["course-1"]) == {"course-1": [f"content-{account}"]}
    # The next account gets key 3, and a deleted account's key is not given again.
    project = container.tenancy.create_project("after")
    third = container.tenancy.create_account(project, "local").id
    assert container.tenancy.delete_account(third)
    fourth = container.tenancy.create_account(project, "local").id
    with container.engine.connect() as conn:
        keys = dict(conn.execute(sa.select(t.accounts.c.id, t.accounts.c.key)).all())
    assert third not in keys and keys[fourth] == 4
    assert store.count(t.completions, "acct-a") == 1  # deleting another account left these alone
    container.engine.dispose()


def test_a_new_database_gets_the_schema_the_migrations_build(fresh_url: str, tmp_path: Path) -> None:
    """A database without tables is given the newest schema at once (``store.db._create_new``)
    instead of by running every migration: the result must be the same tables, column for
    column and name for name, and a database Alembic counts as current."""
    from lmsgate.store.db import _create_new, head_revision, is_current

    migrated = _at_revision(fresh_url, "head")
    if fresh_url.startswith("sqlite"):
        others: Iterator[str] = iter([f"sqlite:///{tmp_path / 'new.db'}"])
    else:
        others = _pg_database()
    try:
        new = create_db_engine(next(others))
        assert _create_new(new)
        got, want = _schema(new), _schema(migrated)
        if not fresh_url.startswith("sqlite"):
            # On PostgreSQL, migration 0006 added account_key with ALTER TABLE: it sits last in
            # a migrated table, first (as declared) in a new one. Nothing reads columns by
            # position (no SELECT *), so there the columns are compared by name.
            for schema in (got, want):
                for table in schema.values():
                    if "columns" in table:
                        table["columns"] = sorted(table["columns"])  # type: ignore[type-var]
        assert got == want
        seeded = "SELECT key, value FROM instance ORDER BY key"
        with new.connect() as conn, migrated.connect() as old:
            assert list(conn.exec_driver_sql(seeded)) == list(old.exec_driver_sql(seeded))
        assert is_current(new)
        with new.connect() as conn:
            versions = [r[0] for r in conn.exec_driver_sql("SELECT version_num FROM alembic_version")]
            assert versions == [head_revision()]
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diff == []
        assert not _create_new(new)  # it has tables now: left alone, the migrations decide
        url = new.url.render_as_string(hide_password=False)
        new.dispose()
        container = bootstrap(Settings(database_url=url, vault_key_file=shared_vault_key_file()))
        first = ensure_first_run(container)  # a first start: a project, a key and an account
        assert container.tenancy.get_account(first.account_id) is not None
        container.engine.dispose()
    finally:
        close = getattr(others, "close", None)  # the PostgreSQL generator drops its database
        if close is not None:
            close()
        migrated.dispose()


def test_a_database_with_other_tables_is_migrated(fresh_url: str) -> None:
    """Tables lmsgate did not make (a shared database): no shortcut, the migrations run."""
    from lmsgate.store.db import _create_new, is_current

    engine = create_db_engine(fresh_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE someone_elses (id INTEGER PRIMARY KEY)")
    assert not _create_new(engine)
    assert "accounts" not in sa.inspect(engine).get_table_names()
    upgrade(engine)
    assert is_current(engine)
    assert {"accounts", "someone_elses"} <= set(sa.inspect(engine).get_table_names())
    engine.dispose()


def test_processes_starting_together_on_a_new_database_all_come_up(fresh_url: str, tmp_path: Path) -> None:
    """Several processes (API servers and workers started by one deployment) opening the same
    new database at once: one creates the schema, the others find it made, and every one
    starts. Each runs `lmsgate migrate`, which opens the store as `serve` and `worker` do."""
    import os
    import subprocess
    import sys

    from lmsgate.store.db import head_revision, is_current

    env = {k: v for k, v in os.environ.items() if not k.startswith("LMSGATE_")}
    env["LMSGATE_VAULT_KEY_FILE"] = str(shared_vault_key_file())
    procs = [subprocess.Popen([sys.executable, "-m", "lmsgate.cli.main", "migrate", "--database-url", fresh_url],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(4)]
    outputs = [(p.wait(timeout=120), p.stdout.read() if p.stdout else "") for p in procs]
    assert all(code == 0 for code, _ in outputs), outputs
    engine = create_db_engine(fresh_url)
    assert is_current(engine)
    with engine.connect() as conn:
        assert [r[0] for r in conn.exec_driver_sql("SELECT version_num FROM alembic_version")] == [head_revision()]
        instance = dict(conn.exec_driver_sql("SELECT key, value FROM instance").all())
        assert instance.keys() == {"last_account_key", "cursor_secret"}  # one secret for every process
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    engine.dispose()
    container = bootstrap(Settings(database_url=fresh_url, vault_key_file=shared_vault_key_file()))
    assert container.tenancy.get_account(ensure_first_run(container).account_id) is not None
    container.engine.dispose()


def _migrate_together(url: str, cwd: Path, count: int) -> list[tuple[int, str]]:
    """``count`` `lmsgate migrate` processes started at once on ``url``: exit code and output of each."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("LMSGATE_")}
    env["LMSGATE_VAULT_KEY_FILE"] = str(shared_vault_key_file())
    procs = [subprocess.Popen([sys.executable, "-m", "lmsgate.cli.main", "migrate", "--database-url", url],
                              cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(count)]
    return [(p.wait(timeout=120), p.stdout.read() if p.stdout else "") for p in procs]


def test_processes_upgrading_an_older_schema_together_all_come_up(fresh_url: str, tmp_path: Path) -> None:
    """A rolling restart after an upgrade: servers and workers start at once on a database a
    few migrations behind. They ran the same DDL at once, and on PostgreSQL one exited with
    "duplicate key value violates unique constraint" (3 tries in 4 from 0003)."""
    from lmsgate.store.db import head_revision, is_current

    _at_revision(fresh_url, "0003").dispose()
    outputs = _migrate_together(fresh_url, tmp_path, 3)
    assert all(code == 0 for code, _ in outputs), outputs
    engine = create_db_engine(fresh_url)
    assert is_current(engine)
    with engine.connect() as conn:
        assert [r[0] for r in conn.exec_driver_sql("SELECT version_num FROM alembic_version")] == [head_revision()]
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    engine.dispose()


def test_a_schema_newer_than_this_lmsgate_is_one_line_not_a_stack_trace(fresh_url: str, tmp_path: Path) -> None:
    """What an older lmsgate (a rollback) meets after a newer one migrated: Alembic's
    "Can't locate revision" came out as 80 lines of traceback from migrate, serve and worker."""
    engine = create_db_engine(fresh_url)
    upgrade(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    engine.dispose()
    [(code, output)] = _migrate_together(fresh_url, tmp_path, 1)
    assert code == 1, output
    assert "Traceback" not in output and "revision 9999" in output and "newer lmsgate" in output, output
    engine = create_db_engine(fresh_url)
    with engine.connect() as conn:  # left as it was
        assert [r[0] for r in conn.exec_driver_sql("SELECT version_num FROM alembic_version")] == ["9999"]
    engine.dispose()


def _all_at_once(calls: list[Callable[[], object]]) -> list[object]:
    """Run each call in a thread of its own, released together (as processes started by one
    deployment); what each returned, or the exception it raised, in order."""
    import threading

    start = threading.Barrier(len(calls))
    got: list[object] = [None] * len(calls)

    def run(i: int) -> None:
        start.wait()
        try:
            got[i] = calls[i]()
        except BaseException as exc:  # noqa: BLE001 - the caller checks
            got[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    return got


@pytest.mark.parametrize("pinned", [None, "pinned-" + "k" * 32], ids=["new-key", "pinned-key"])
def test_servers_starting_together_on_a_new_database_make_one_project_key_and_account(
        fresh_url: str, pinned: str | None) -> None:
    """What ``lmsgate serve`` runs before it listens, in several processes at once (engines of
    their own, released together). Each used to find no project and make one: three projects,
    keys and accounts, or, with a pinned key, all but one died on its unique constraint."""
    containers = [bootstrap(Settings(database_url=fresh_url, vault_key_file=shared_vault_key_file(),
                                     api_key=pinned)) for _ in range(3)]
    got = _all_at_once([lambda c=c: ensure_first_run(c) for c in containers])
    assert not [g for g in got if isinstance(g, BaseException)], got
    assert len({(g.project_id, g.account_id) for g in got}) == 1, got  # type: ignore[attr-defined]
    assert sum(bool(g.new_api_key) for g in got) == (0 if pinned else 1)  # type: ignore[attr-defined]
    with containers[0].engine.connect() as conn:
        counts = [conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()
                  for table in (t.projects, t.api_keys, t.accounts)]
    assert counts == [1, 1, 1]
    for c in containers:
        c.engine.dispose()


def test_processes_asking_for_the_instance_secret_together_get_the_same_one(fresh_url: str) -> None:
    """Each process reads the per-instance secret (cursors are signed with it) when it starts;
    on a new database several may find none at once. One makes it; all get that one."""
    from lmsgate.store.tenancy import Tenancy

    engines = [create_db_engine(fresh_url) for _ in range(6)]
    upgrade(engines[0])
    got = _all_at_once([lambda e=e: Tenancy(e).instance_secret("race_secret") for e in engines])
    assert all(isinstance(g, bytes) and len(g) == 32 for g in got), got
    assert len(set(got)) == 1
    for engine in engines:
        engine.dispose()
