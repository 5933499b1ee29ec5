"""The ``Prefer`` request header (RFC 7240): which preferences a request states.

``Prefer: respond-async`` asks for a write to be accepted now and carried out later; lmsgate
answers it with 202 and a ``Location`` to watch (``lmsgate.api.writes``). ``heartbeat`` is
handled by ``lmsgate.api.heartbeat``. A header may carry several preferences (``Prefer:
respond-async, heartbeat``), and a request may carry several ``Prefer`` headers; both work, and
preferences lmsgate does not know are ignored, as the RFC asks.
"""

from __future__ import annotations

from collections.abc import Iterable

RESPOND_ASYNC = "respond-async"


def preferences(values: Iterable[str]) -> set[str]:
    """The preference names (lower case) in the given ``Prefer`` header values."""
    out: set[str] = set()
    for value in values:
        for preference in value.split(","):
            token = preference.split(";", 1)[0].split("=", 1)[0].strip().lower()
            if token:
                out.add(token)
    return out


def prefers(values: Iterable[str], name: str) -> bool:
    return name in preferences(values)
