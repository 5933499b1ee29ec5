"""Wire the parts together once. The app factory, the CLI and the tests all call :func:`bootstrap`."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from lmsgate.connectors.local import LocalConnector
from lmsgate.connectors.registry import ConnectorRegistry
from lmsgate.service.accounts import AccountResolver
from lmsgate.service.lms import LmsService
from lmsgate.settings import Settings
from lmsgate.store.db import create_db_engine, upgrade
from lmsgate.store.pagination import CursorCodec
from lmsgate.store.records import LmsStore
from lmsgate.store.tenancy import Tenancy


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


def bootstrap(settings: Settings | None = None, *, migrate: bool = True) -> Container:
    settings = settings or Settings()
    engine = create_db_engine(settings.database_url)
    if migrate:
        upgrade(engine)
    tenancy = Tenancy(engine)
    store = LmsStore(engine)
    registry = ConnectorRegistry()
    registry.register("local", lambda _account: LocalConnector(store), shared=True)
    return Container(
        settings=settings,
        engine=engine,
        tenancy=tenancy,
        store=store,
        registry=registry,
        service=LmsService(registry),
        resolver=AccountResolver(tenancy),
        cursors=CursorCodec(tenancy.instance_secret("cursor_secret")),
    )
