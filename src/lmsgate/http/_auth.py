"""How a provider session authenticates, and the OAuth 2.0 token cache.

Credential objects hold decrypted secrets for the length of one unified request; their
``repr`` never shows them.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["BasicCredentials", "HeaderCredentials", "NoCredentials", "OAuth2Credentials", "TokenCache"]


@dataclass(frozen=True, slots=True)
class NoCredentials:
    def secrets(self) -> tuple[str, ...]:
        return ()


@dataclass(frozen=True, slots=True)
class BasicCredentials:
    username: str = field(repr=False)
    password: str = field(repr=False)

    def header(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()

    def secrets(self) -> tuple[str, ...]:
        return (self.username, self.password, self.header().split(" ", 1)[1])


@dataclass(frozen=True, slots=True)
class HeaderCredentials:
    name: str
    value: str = field(repr=False)

    def secrets(self) -> tuple[str, ...]:
        return (self.value,)


@dataclass(frozen=True, slots=True)
class OAuth2Credentials:
    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    scope: str | None = None

    def basic_header(self) -> str:
        return BasicCredentials(self.client_id, self.client_secret).header()

    def cache_key(self, account_id: str) -> tuple[str, ...]:
        digest = hashlib.sha256(self.client_secret.encode()).hexdigest()
        return (account_id, self.token_url, self.client_id, digest, self.scope or "")

    def secrets(self) -> tuple[str, ...]:
        return (self.client_secret, self.basic_header().split(" ", 1)[1])


Credentials = NoCredentials | BasicCredentials | HeaderCredentials | OAuth2Credentials


@dataclass(slots=True)
class _Token:
    value: str = field(repr=False)
    refresh_at: float
    """Monotonic time after which the token is refreshed (some time before it expires)."""


DEFAULT_EXPIRES_IN = 300.0
"""Lifetime assumed when a token endpoint does not say (``expires_in`` is only RECOMMENDED)."""


def refresh_margin(expires_in: float) -> float:
    """Refresh this many seconds before expiry: 10 % of the lifetime, between 5 s and 60 s."""
    return max(5.0, min(60.0, expires_in * 0.1))


class TokenCache:
    """Bearer tokens per (account, token endpoint, client, scope), refreshed before expiry."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tokens: dict[tuple[str, ...], _Token] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, ...]) -> str | None:
        with self._lock:
            token = self._tokens.get(key)
            if token is None or self._clock() >= token.refresh_at:
                return None
            return token.value

    def put(self, key: tuple[str, ...], value: str, expires_in: float | None) -> None:
        lifetime = float(expires_in) if expires_in and expires_in > 0 else DEFAULT_EXPIRES_IN
        with self._lock:
            self._tokens[key] = _Token(value, self._clock() + lifetime - refresh_margin(lifetime))

    def invalidate(self, key: tuple[str, ...]) -> None:
        with self._lock:
            self._tokens.pop(key, None)
