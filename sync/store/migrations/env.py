"""Alembic environment for the state store.

Run programmatically by sync.store.db.upgrade(), which passes an open connection in
`config.attributes["connection"]`; the `alembic` command line (`alembic -c sync/store/alembic.ini`)
works too, with the URL from sqlalchemy.url or $RELANCE_STATE_URL.

Adding a revision: `alembic -c sync/store/alembic.ini revision -m "what" [--autogenerate]`, then
write upgrade() with op.add_column / op.batch_alter_table (SQLite needs batch mode to alter
tables, enabled below) and a data migration where a column changes meaning. Never drop data.
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from alembic import context

from sync.store.db import create_engine
from sync.store.schema import metadata

config = context.config
target_metadata = metadata


def _configure(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # ALTER TABLE on SQLite goes through batch (copy-and-move) mode
        compare_type=True,
    )


def run_offline() -> None:
    context.configure(
        url=os.environ.get("RELANCE_STATE_URL") or config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return

    url = os.environ.get("RELANCE_STATE_URL") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("set sqlalchemy.url in alembic.ini or $RELANCE_STATE_URL")
    engine = create_engine(url)
    with engine.begin() as connection:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
