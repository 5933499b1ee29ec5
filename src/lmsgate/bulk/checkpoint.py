"""Where an interrupted import stopped, so the next run of the same command resumes there.

After each batch is written (committed by the store, or answered by the server), the byte
offset and line just past it are saved to a small JSON file, atomically. A later run of the
same import of the same file into the same target starts there. The state file is removed
when the import finishes.

Resuming is an optimisation, not what keeps rows from being duplicated: a batch written but
not yet recorded here is sent again, and the store answers each of its rows with the record
it already has (same learner, learning object and ``completed_at``).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Checkpoint", "Position"]

_HEAD_BYTES = 1 << 16


@dataclass(frozen=True, slots=True)
class Position:
    offset: int
    """Byte offset of the first record not yet written."""
    line: int
    """Its line number."""
    counts: dict[str, int] = field(default_factory=dict)
    """The counters of the runs so far, so the final summary covers the whole file."""


def fingerprint(path: Path, target: str, account_id: str) -> dict[str, Any]:
    """What must not change for a resume to be right: the file (size, time, first bytes),
    where it goes, and for which account."""
    stat = path.stat()
    with path.open("rb") as f:
        head = hashlib.sha256(f.read(_HEAD_BYTES)).hexdigest()
    return {"file": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "head": head,
            "target": target, "account_id": account_id}


class Checkpoint:
    def __init__(self, path: Path, identity: dict[str, Any]) -> None:
        self.path = path
        self.identity = identity

    def load(self) -> Position | None:
        """The saved position, if there is one for this very import; else None."""
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("identity") != self.identity:
            return None
        try:
            return Position(int(data["offset"]), int(data["line"]), {k: int(v) for k, v in data["counts"].items()})
        except (KeyError, TypeError, ValueError, AttributeError):
            return None

    def exists(self) -> bool:
        return self.path.exists()

    def save(self, position: Position) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({"identity": self.identity, "offset": position.offset, "line": position.line,
                                   "counts": position.counts}))
        os.replace(tmp, self.path)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
