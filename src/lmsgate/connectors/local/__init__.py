"""The embedded LMS (provider ``local``), backed by lmsgate's own database."""

from lmsgate.connectors.local.connector import LocalConnector

__all__ = ["LocalConnector"]
