"""Wire the parts together once. The app factory, the CLI and the tests all call :func:`bootstrap`."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from lmsgate import __version__
from lmsgate.connectors.linking import linked_config, provider_session
from lmsgate.connectors.local import LocalConnector
from lmsgate.connectors.registry import ConnectorRegistry
from lmsgate.connectors.xapi import XAPI_SPEC, XapiConnector
from lmsgate.http import AddressGuard, HttpSettings, OutboundHttp, RetryPolicy, install_log_redaction
from lmsgate.service.accounts import AccountResolver, LinkedAccounts
from lmsgate.service.deliveries import DeliveryService
from lmsgate.service.lms import LmsService
from lmsgate.settings import Settings
from lmsgate.store.commit_process import CommitProcess
from lmsgate.store.db import create_db_engine, opened_sqlite_file, upgrade
from lmsgate.store.deliveries import DeliveryStore
from lmsgate.store.idempotency import IdempotencyStore
from lmsgate.store.page_readers import PageReaders
from lmsgate.store.pagination import CursorCodec
from lmsgate.store.records import LmsStore
from lmsgate.store.request_logs import RequestLogStore
from lmsgate.store.tenancy import Account, Tenancy
from lmsgate.vault import Vault, vault_for


@dataclass
class Container:
    settings: Settings
    engine: Engine
    tenancy: Tenancy
    store: LmsStore
    registry: ConnectorRegistry
    service: LmsService
    resolver: AccountResolver
    cursors: CursorCodec
    vault: Vault
    outbound: OutboundHttp
    accounts: LinkedAccounts
    request_logs: RequestLogStore
    deliveries: DeliveryService
    idempotency: IdempotencyStore
    page_readers: PageReaders | None = None
    """Processes reading list pages of a SQLite file (``store.page_readers``); the app stops
    its event loop's readers when it shuts down."""
    commit_process: CommitProcess | None = None
    """The process committing posted completions of a SQLite file (``store.commit_process``);
    the app starts and stops it with its event loop, as the readers."""


def bootstrap(settings: Settings | None = None, *, migrate: bool = True) -> Container:
    settings = settings or Settings()
    engine = create_db_engine(settings.database_url)
    if migrate:
        upgrade(engine)
    tenancy = Tenancy(engine)
    store = LmsStore(engine)
    tenancy.on_forget.append(store.forget_account_key)
    registry = ConnectorRegistry()
    database_file = opened_sqlite_file(engine) if settings.read_processes or settings.commit_process else None
    readers = PageReaders(database_file, settings.read_processes) \
        if database_file and settings.read_processes else None
    committer = CommitProcess(database_file) if database_file and settings.commit_process else None
    registry.register(LocalConnector, lambda _account: LocalConnector(store, readers, committer), shared=True)
    vault = vault_for(settings.vault_key.get_secret_value() if settings.vault_key else None,
                      settings.vault_key_file, settings.database_url, holds_sealed=tenancy.holds_sealed_credentials)
    outbound = OutboundHttp(outbound_settings(settings))
    install_log_redaction()

    def xapi(account: Account) -> XapiConnector:
        linked = linked_config(vault, account)
        session = provider_session(outbound, account, XAPI_SPEC, linked,
                                   XapiConnector.default_headers(linked.config))
        return XapiConnector(account, linked, session)

    registry.register(XapiConnector, xapi)
    deliveries = DeliveryService(DeliveryStore(engine), settings)
    return Container(
        settings=settings,
        engine=engine,
        tenancy=tenancy,
        store=store,
        registry=registry,
        service=LmsService(registry, deliveries),
        resolver=AccountResolver(tenancy),
        cursors=CursorCodec(tenancy.instance_secret("cursor_secret")),
        vault=vault,
        outbound=outbound,
        accounts=LinkedAccounts(tenancy, registry, vault, outbound),
        request_logs=RequestLogStore(engine),
        deliveries=deliveries,
        idempotency=IdempotencyStore(engine),
        page_readers=readers,
        commit_process=committer,
    )


def outbound_settings(settings: Settings) -> HttpSettings:
    return HttpSettings(
        connect_timeout=settings.outbound_connect_timeout_seconds,
        read_timeout=settings.outbound_read_timeout_seconds,
        retry=RetryPolicy(max_retries=settings.outbound_max_retries,
                          lifetime=settings.outbound_request_lifetime_seconds,
                          base=settings.outbound_backoff_base_seconds),
        guard=AddressGuard.allowing(settings.outbound_allow_networks),
        user_agent=f"lmsgate/{__version__}",
    )
