"""Alembic environment: lmsgate passes its own connection in ``config.attributes``."""

from alembic import context

from lmsgate.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only when alembic is run by hand
    from lmsgate.settings import Settings
    from lmsgate.store.db import create_db_engine

    engine = create_db_engine(Settings().database_url)
    with engine.begin() as connection:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
