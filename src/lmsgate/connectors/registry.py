"""Which connector serves which provider. Unknown providers fail with the valid names listed.

Registering a connector checks its declared spec, so a contradictory declaration fails at
start-up, not on the first request that needs it."""

from __future__ import annotations

from collections.abc import Callable

from lmsgate.connectors.base import Connector
from lmsgate.connectors.spec import ConnectorSpec, InvalidSpec
from lmsgate.errors import BadRequest, LmsGateError, NotImplementedByProvider
from lmsgate.store.tenancy import Account

ConnectorFactory = Callable[[Account], Connector]


class ConnectorNotInstalled(NotImplementedByProvider, LookupError):
    """501: the linked account names a provider this lmsgate process has no connector for.

    The database can hold such accounts: one linked through a newer lmsgate during a rolling
    upgrade, or one whose connector was removed. Such an account supports no operation, which
    is what 501 says; it is not a server fault (500). Still a ``LookupError`` for callers of
    :meth:`ConnectorRegistry.for_account` that catch that.
    """

    def __init__(self, provider: str, known: list[str]) -> None:
        LmsGateError.__init__(
            self,
            f"No connector for provider {provider!r} is installed in this lmsgate, so the account "
            f"supports no operation; installed: {', '.join(known)}",
        )


class ConnectorRegistry:
    def __init__(self) -> None:
        self._factories: dict[str, ConnectorFactory] = {}
        self._shared: dict[str, Connector] = {}
        self._classes: dict[str, type[Connector]] = {}

    def register(self, connector: type[Connector], factory: ConnectorFactory, *,
                 shared: bool = False) -> None:
        """Register a connector class and the factory that builds it for an account.

        The class's :class:`~lmsgate.connectors.spec.ConnectorSpec` is checked here
        (:class:`~lmsgate.connectors.spec.InvalidSpec` if it contradicts itself), and its key
        must equal the class's ``provider``. ``shared`` connectors hold no per-account state
        and are built once.
        """
        spec = connector.spec
        if spec is None:
            raise InvalidSpec(f"{connector.__name__} declares no spec")
        spec.check_spec()
        if spec.key != connector.provider:
            raise InvalidSpec(
                f"{connector.__name__}: spec key {spec.key!r} != provider {connector.provider!r}")
        provider = spec.key
        if provider in self._factories:
            raise ValueError(f"provider {provider!r} is already registered")
        self._factories[provider] = factory
        self._classes[provider] = connector
        if shared:
            self._shared[provider] = None  # type: ignore[assignment]

    @property
    def providers(self) -> list[str]:
        return sorted(self._factories)

    def connector_class(self, provider: str) -> type[Connector]:
        """The class registered for ``provider``; 400 naming the installed ones if there is none."""
        try:
            return self._classes[provider]
        except KeyError:
            raise BadRequest(
                f"provider: {provider!r} has no connector in this lmsgate; "
                f"installed: {', '.join(self.providers)}"
            ) from None

    def spec(self, provider: str) -> ConnectorSpec:
        spec = self.connector_class(provider).spec
        assert spec is not None  # checked at registration
        return spec

    def specs(self) -> list[ConnectorSpec]:
        return [self.spec(p) for p in self.providers]

    def for_account(self, account: Account) -> Connector:
        try:
            factory = self._factories[account.provider]
        except KeyError:
            raise ConnectorNotInstalled(account.provider, self.providers) from None
        if account.provider in self._shared:
            if self._shared[account.provider] is None:
                self._shared[account.provider] = factory(account)
            return self._shared[account.provider]
        return factory(account)
