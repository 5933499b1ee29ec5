"""Page readers: processes beside the server that read and finish list pages of a SQLite file.

A page of 100 completions costs the server about half a millisecond of its one interpreter
lock: SQLite building each object (``connectors.local.rendering``) and Python finishing it
(``connectors.local.finishing``). On the event loop that is half a millisecond in which no
other request moves, and a busy list endpoint kept a 2-core machine half idle. A page reader
is a fresh interpreter with its own read connection to the same file: the server sends it the
page's SQL and parameters, and gets back the finished objects. SQLite lets readers in at any
time (WAL), and each page is one statement, which sees every transaction committed before it
started, as the server's own connection would.

:class:`PageReaders` keeps ``LMSGATE_READ_PROCESSES`` of them for each event loop an app
serves on (``serve`` at the app's start, ``close`` at its end), started on the first page asked for, and sends each page to the one with the fewest pages waiting. A page is
read in the server's process, as before, whenever no reader can take it: while they start,
after one failed (it is started again :data:`RETRY_AFTER` seconds later), when each already has
:data:`MAX_WAITING` pages waiting, and if the reader answers with an error (the server's own
read then raises it in its usual words). A reader that has not answered a page :data:`TIMEOUT`
seconds after it was sent (checked every third of that: within 30-40 s by default) is killed.
Readers live in a session of their own (a Ctrl-C on the terminal is the server's to handle)
and exit when their end of the socket closes: when the server stops, and if it is killed.

The reader process loads only the standard library, orjson and ``finishing``: about 25 MB once
it has read pages (SQLite's page cache included).
"""

from __future__ import annotations

import logging
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

from lmsgate.store.child_processes import HelperKind, HelperPool, answer_requests

__all__ = ["MAX_WAITING", "RETRY_AFTER", "TIMEOUT", "PageReaders"]

log = logging.getLogger("lmsgate.store")

RETRY_AFTER = 30.0
"""After a reader failed, it is started again this many seconds later."""
TIMEOUT = 30.0
"""A reader that has not answered a page for this long is killed (its pages are read here)."""
MAX_WAITING = 32
"""Pages waiting on one reader beyond which a page is read in the server's process."""


class PageReaders(HelperPool):
    """Reader processes for one SQLite database file (see the module's docstring). ``serve``
    at the app's start lets the running event loop's pages go to readers, until ``close``;
    elsewhere (a command such as ``completions export``, which reads one page after another)
    pages are read in the process itself."""

    def __init__(self, database: str, count: int) -> None:
        super().__init__(HelperKind(
            module="lmsgate.store.page_readers", args=(database,), count=count, what="a page reader",
            instead="pages are read in the server's process", limits=lambda: (RETRY_AFTER, TIMEOUT, MAX_WAITING)))

    async def read(self, sql: str, parameters: Any, page_size: int) -> tuple[list[str], Any, bool] | None:
        """Run the page's SQL in a reader: the first ``page_size`` rows finished
        (``finishing.finish_page``), the id of the last, and whether more rows came. None when
        no reader could take the page: the caller reads it itself."""
        answer = await self.ask(sql, parameters, page_size)
        if answer is None or answer[0] != "page":
            if answer is not None:
                log.debug("a page reader could not read a page: %s", answer[1])
            return None
        return answer[1], answer[2], answer[3]


# ---------------------------------------------------------------- the reader's side

def _serve(fd: int, database: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from lmsgate.connectors.local.finishing import finish_page

    # Read-only: besides refusing writes, such a connection never checkpoints the WAL, not even
    # when it closes last, so it cannot meet a commit in SQLite's WAL-reset bug (docs/operations.md).
    conn = sqlite3.connect(Path(database).as_uri() + "?mode=ro", uri=True, isolation_level=None,
                           check_same_thread=False)
    conn.execute("PRAGMA query_only=ON")
    conn.execute("PRAGMA busy_timeout=30000")

    def page(sql: str, parameters: Any, page_size: int) -> tuple[Any, ...]:
        try:
            rows = conn.execute(sql, parameters).fetchall()
            found = rows[:page_size]
            return ("page", finish_page(found), found[-1][0] if found else None, len(rows) > page_size)
        except Exception as exc:  # noqa: BLE001 - the server reads the page itself, and reports it
            return ("error", f"{type(exc).__name__}: {exc}")

    answer_requests(fd, page)


if __name__ == "__main__":
    _serve(int(sys.argv[1]), sys.argv[2])
