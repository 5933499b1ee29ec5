"""Signal handlers set for the length of a block, for the CLI and for starting child processes.

Python runs signal handlers in the main thread only, and only the main thread may set them:
called from any other thread, these change nothing.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

__all__ = ["ctrl_c_ignored", "handled"]


@contextmanager
def handled(handler: Callable[[int, Any], None] | signal.Handlers,
            signals: list[signal.Signals]) -> Iterator[None]:
    """``handler`` for ``signals`` while the block runs, then the handlers before."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for s, before in previous.items():
            signal.signal(s, before)


def ctrl_c_ignored() -> AbstractContextManager[None]:
    """Ctrl-C ignored while the block runs.

    A child process made meanwhile ignores it from its first instant: Python keeps an ignored
    SIGINT ignored in a new interpreter. Made otherwise, a child has Python's own handler until
    it sets one, and a Ctrl-C on the terminal (sent to the whole process group) during its
    start printed a traceback from it, or broke a process pool. The cost: a Ctrl-C in the few
    milliseconds the block takes is lost, and must be pressed again."""
    return handled(signal.SIG_IGN, [signal.SIGINT])
