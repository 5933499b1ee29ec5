"""Which connector serves which provider. Unknown providers fail with the valid names listed."""

from __future__ import annotations

from collections.abc import Callable

from lmsgate.connectors.base import Connector
from lmsgate.store.tenancy import Account

ConnectorFactory = Callable[[Account], Connector]


class ConnectorRegistry:
    def __init__(self) -> None:
        self._factories: dict[str, ConnectorFactory] = {}
        self._shared: dict[str, Connector] = {}

    def register(self, provider: str, factory: ConnectorFactory, *, shared: bool = False) -> None:
        """Register a factory. ``shared`` connectors hold no per-account state and are reused."""
        if provider in self._factories:
            raise ValueError(f"provider {provider!r} is already registered")
        self._factories[provider] = factory
        if shared:
            self._shared[provider] = None  # type: ignore[assignment]

    @property
    def providers(self) -> list[str]:
        return sorted(self._factories)

    def for_account(self, account: Account) -> Connector:
        try:
            factory = self._factories[account.provider]
        except KeyError:
            raise LookupError(
                f"no connector for provider {account.provider!r}; known: {', '.join(self.providers)}"
            ) from None
        if account.provider in self._shared:
            if self._shared[account.provider] is None:
                self._shared[account.provider] = factory(account)
            return self._shared[account.provider]
        return factory(account)
