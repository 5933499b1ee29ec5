"""The xAPI provider: completions as statements in any xAPI 1.0.3 or 2.0 LRS."""

from lmsgate.connectors.xapi.connector import XAPI_SPEC, XapiConnector

__all__ = ["XAPI_SPEC", "XapiConnector"]
