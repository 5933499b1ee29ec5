"""A commit process that commits the first group it is sent and dies before answering: the
window in which the server cannot know whether the group is stored
(``tests/integration/test_commit_process.py``)."""

from __future__ import annotations

import os
import sys
from typing import Any

from lmsgate.store import tables as t
from lmsgate.store.child_processes import answer_requests
from lmsgate.store.db import create_db_engine
from lmsgate.store.records import LmsStore

if __name__ == "__main__":
    store = LmsStore(create_db_engine(sys.argv[2]))

    def write(rows: list[tuple[Any, ...]]) -> tuple[Any, ...]:
        if rows:
            store.insert_bound(t.completions, rows)  # committed...
            os._exit(0)  # ...and never answered
        return ("written", [])

    answer_requests(int(sys.argv[1]), write)
