"""Write the synchronous client from the asynchronous one (as httpcore does with unasync).

    python scripts/unasync.py          # regenerate src/lmsgate/client/_*_sync.py
    python scripts/unasync.py --check  # exit 1 if a generated file is out of date

The async modules are the source; the sync modules are never edited by hand. A test runs
``--check``, so the two cannot drift apart.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

CLIENT = Path(__file__).resolve().parent.parent / "src" / "lmsgate" / "client"
SOURCES = {"_client_async.py": "_client_sync.py", "_lms_async.py": "_lms_sync.py",
           "_deliveries_async.py": "_deliveries_sync.py"}

RULES: list[tuple[str, str]] = [
    # the note in each module docstring
    (r"``_(\w+)_sync\.py`` is generated from this file by ``scripts/unasync\.py``; edit this one\.",
     r"Generated from ``_\1_async.py`` by ``scripts/unasync.py``: do not edit, edit that file."),
    (r"from collections\.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping",
     "from collections.abc import Callable, Iterable, Iterator, Mapping"),
    (r"^import anyio\n", ""),
    (r"\banyio\.sleep\(", "time.sleep("),
    (r"Awaitable\[Any\]", "Any"),
    (r"\bAsyncIterator\b", "Iterator"),
    (r"\bAsyncClient\b", "Client"),
    (r"\bAsyncLms\b", "Lms"),
    (r"\bAsyncDeliveries\b", "Deliveries"),
    (r"lmsgate\.client\._(client|lms|deliveries)_async\b", r"lmsgate.client._\1_sync"),
    (r"\basync def\b", "def"),
    (r"\basync for\b", "for"),
    (r"\basync with\b", "with"),
    (r"\bawait ", ""),
    (r"\b__aenter__\b", "__enter__"),
    (r"\b__aexit__\b", "__exit__"),
    (r"\baclose\b", "close"),
    (r"\bThe asynchronous client\b", "The synchronous client"),
    (r"\bof the asynchronous client\b", "of the synchronous client"),
    (r", asynchronously\.", "."),
]


def unasync(text: str) -> str:
    for pattern, replacement in RULES:
        text = re.sub(pattern, replacement, text, flags=re.MULTILINE)
    return text


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for source, target in SOURCES.items():
        wanted = unasync((CLIENT / source).read_text())
        path = CLIENT / target
        if path.exists() and path.read_text() == wanted:
            continue
        if check:
            stale.append(target)
        else:
            path.write_text(wanted)
            print(f"wrote {path}")
    if stale:
        print(f"out of date: {', '.join(stale)}; run python scripts/unasync.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
