"""The embedded LMS (provider ``local``), backed by lmsgate's own database."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lmsgate.connectors.local.connector import LocalConnector

__all__ = ["LocalConnector"]


def __getattr__(name: str) -> Any:
    # Loaded when asked for: an import's worker processes load only ``rows`` from here.
    if name == "LocalConnector":
        from lmsgate.connectors.local.connector import LocalConnector

        return LocalConnector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
