"""The outbound HTTP policy: the only place lmsgate calls a provider.

    OutboundHttp            one per process: settings, TLS, rate-limit buckets, OAuth tokens
    └── ProviderSession     one per unified request: deadline, retry budget, masking
        └── request(...)    → ProviderResponse (2xx), or raises lmsgate's errors:
                              408 retries or lifetime used up · 400/404/409 as the provider
                              judged · 502 anything else (refused credentials, not JSON, …)

Retry rules: :mod:`lmsgate.http._retry`. SSRF guard: :mod:`lmsgate.http._ssrf`. Masking of
secrets in logs, ``raw`` and ``provider_errors``: :mod:`lmsgate.http._redact`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lmsgate.http._auth import (
    BasicCredentials,
    HeaderCredentials,
    NoCredentials,
    OAuth2Credentials,
    TokenCache,
)
from lmsgate.http._ratelimit import AccountBuckets
from lmsgate.http._redact import MASK, Redactor, install_log_redaction, remember_secrets
from lmsgate.http._retry import RetryPolicy, parse_retry_after
from lmsgate.http._ssrf import AddressGuard, BlockedAddress, UnresolvableHost, classify

__all__ = [
    "MASK",
    "AccountBuckets",
    "AddressGuard",
    "BasicCredentials",
    "BlockedAddress",
    "HeaderCredentials",
    "HttpSettings",
    "NoCredentials",
    "OAuth2Credentials",
    "OutboundHttp",
    "ProviderResponse",
    "ProviderSession",
    "RateSpec",
    "Redactor",
    "RetryPolicy",
    "TokenCache",
    "UnresolvableHost",
    "classify",
    "install_log_redaction",
    "parse_retry_after",
    "remember_secrets",
]

_CLIENT = ("HttpSettings", "OutboundHttp", "ProviderResponse", "ProviderSession", "RateSpec")

if TYPE_CHECKING:
    from lmsgate.http._client import HttpSettings, OutboundHttp, ProviderResponse, ProviderSession, RateSpec


def __getattr__(name: str) -> Any:
    # The client, and httpx with it, loads on first use: the masking above is also all that
    # the logs and the request log's own process need.
    if name in _CLIENT:
        from lmsgate.http import _client

        return getattr(_client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
