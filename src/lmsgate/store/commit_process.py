"""The commit process: posted completions of a SQLite file written beside the server.

Posted completions are committed in groups (``store.group_commit``). In the server's process
the thread that writes a group shares Python's one interpreter lock with the event loop that
reads, checks and answers the requests: each waits for the other, and a group's hand-over
from the loop to the thread cost as much time as its commit (docs/benchmarks.md). Here a
group's rows, built and bound by the server as before, go over a socket pair to a process of
its own, which inserts and commits them (``LmsStore.insert_bound``, the same code, on an
engine of its own: ``synchronous=FULL`` and its turn on ``<database>-write.lock``) and answers
with each row's id. The server answers the posts only then, so a ``201`` still means the
completion is on disk.

A group goes back to the server's own thread whenever the process cannot take it: while it
starts, after it failed (started again :data:`RETRY_AFTER` seconds later), if the database
refuses the group (the server's write then refuses it too, and answers each post in its usual
words), if the process fails otherwise (it is stopped, and started again later), and if it dies
or takes longer than :data:`TIMEOUT` (then it is killed). A group the process may
have committed before it died is written again by the server: each row's dedupe key (learner,
learning object, ``completed_at``) makes that write find the stored rows, with the same ids,
instead of storing them twice. See ``store.child_processes`` for the process's life.
"""

from __future__ import annotations

import logging
import signal
import sys
from typing import Any

from sqlalchemy.engine import URL

from lmsgate.store.child_processes import HelperKind, HelperPool, answer_requests

__all__ = ["MAX_WAITING", "RETRY_AFTER", "TIMEOUT", "CommitProcess"]

log = logging.getLogger("lmsgate.store")

RETRY_AFTER = 30.0
"""After the process failed, it is started again this many seconds later."""
TIMEOUT = 70.0
"""A group unanswered for this long has the process killed: twice the time a write may wait
for the database's lock (``store.db.BUSY_TIMEOUT``), and a margin."""
MAX_WAITING = 2
"""Groups waiting on the process beyond which a group is written in the server's process (the
group commit sends one at a time)."""


class CommitProcess(HelperPool):
    """The commit process of one SQLite database file (see the module's docstring). ``serve``
    at the app's start lets the running event loop's completions be committed by the process,
    until ``close``; elsewhere (an import) they are written in place."""

    def __init__(self, database: str, *, module: str = "lmsgate.store.commit_process") -> None:
        """``database``: the SQLite file. ``module``: what the process runs (tests give one that
        fails on purpose)."""
        url = URL.create("sqlite", database=database).render_as_string()  # any file name, quoted
        super().__init__(HelperKind(
            module=module, args=(url,), count=1, what="the commit process",
            instead="completions are committed in the server's process",
            limits=lambda: (RETRY_AFTER, TIMEOUT, MAX_WAITING)))

    async def write(self, rows: list[tuple[Any, ...]]) -> list[tuple[str, bool]] | None:
        """Insert and commit ``rows`` (bound completions, ``LmsStore.insert_bound``) in the
        process: each row's id, and whether it is new. None when the process did not: the
        caller writes them itself."""
        answer = await self.ask(rows)
        if answer is None:
            return None
        if answer[0] == "refused":  # by the database, as it would be here: the server says why
            log.debug("the commit process was refused a group: %s", answer[1])
            return None
        if answer[0] != "written":  # the process itself is in trouble (its file, its disk)
            self.restart(f"failed ({answer[1]})")
            return None
        return answer[1]  # type: ignore[no-any-return]


# ---------------------------------------------------------------- the process's side

def _serve(fd: int, database_url: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from lmsgate.errors import LmsGateError
    from lmsgate.store import tables as t
    from lmsgate.store.db import create_db_engine
    from lmsgate.store.records import LmsStore

    engine = create_db_engine(database_url)
    store = LmsStore(engine)

    def write(rows: list[tuple[Any, ...]]) -> tuple[Any, ...]:
        try:
            return ("written", store.insert_bound(t.completions, rows))
        except LmsGateError as exc:  # a row the database refuses: the server's write says which
            return ("refused", f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # noqa: BLE001 - the server writes the group itself
            return ("error", f"{type(exc).__name__}: {exc}")

    try:
        answer_requests(fd, write)
    finally:
        engine.dispose()


if __name__ == "__main__":
    _serve(int(sys.argv[1]), sys.argv[2])
