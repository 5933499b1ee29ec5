"""A commit process that commits the first group it is sent and dies before answering: the
window in which the server cannot know whether the group is stored
(``tests/integration/test_commit_process.py``)."""

from __future__ import annotations

import os
import socket
import sys

from lmsgate.store import tables as t
from lmsgate.store.child_processes import frame, read_requests
from lmsgate.store.db import create_db_engine
from lmsgate.store.records import LmsStore

if __name__ == "__main__":
    store = LmsStore(create_db_engine(sys.argv[2]))
    channel = socket.socket(fileno=int(sys.argv[1]))
    channel.sendall(frame(("ready",)))
    for (rows,) in read_requests(channel):
        if not rows:
            channel.sendall(frame(("written", [])))
            continue
        store.insert_bound(t.completions, rows)  # committed...
        os._exit(0)  # ...and never answered
