"""`Store`: one state database and its repositories, behind one unit of work.

    store = open_store("sqlite:///relance.sqlite")     # or postgresql+psycopg://user@host/db
    store.ledger.upsert_records("acme", page)            # each call: its own short transaction
    with store.transaction():                            # ... or one transaction for several
        store.outbox.mark_done(key, ledger_ids)
        store.tasks.add("acme", entry)
    with store.lease("acme", holder):                    # one applier per connection
        ...

The repositories (each in its own module):
  ledger       the ledger mirror: pages upserted, snapshots, streams, lookups, the on-demand view
  connections  connections and their pull cursors
  planning     the planner's inputs, streamed in batches of whole customers
  outbox       actions: recorded, claimed, settled, read back, the planner's history
  cases        disputes, pauses, payment plans
  tasks        tasks for a person
  audit        the audit trail;  quarantine: records a pull refused
  leases       who applies for which connection
The Store itself only composes them; it forwards nothing but `lease()`.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from connectors.base import Clock
from sync.store.audit import AuditLog, QuarantineLog
from sync.store.cases import Cases
from sync.store.connections import Connections
from sync.store.db import Database, create_engine, parse_url, upgrade
from sync.store.leases import Lease, Leases
from sync.store.ledger import Ledger
from sync.store.outbox import Outbox
from sync.store.planning import Planning
from sync.store.tasks import Tasks


def open_store(url: str, *, create: bool = True, clock: Clock | None = None) -> Store:
    """Open (and create/upgrade to the latest schema) the state database at `url`.

    `sqlite:///relance.sqlite` (relative to the working directory), `sqlite:////abs/path.sqlite`,
    `sqlite://` (in memory, tests) or `postgresql+psycopg://user@host:5432/db`.
    """
    parsed = parse_url(url)
    engine = create_engine(parsed, create=create)
    try:
        upgrade(engine)
    except BaseException:
        engine.dispose()
        raise
    return Store(engine, clock=clock)


class Store:
    """The state store of one database URL (`open_store`)."""

    def __init__(self, engine: Engine, *, clock: Clock | None = None) -> None:
        self.db = Database(engine, clock)
        self.audit = AuditLog(self.db)
        self.quarantine = QuarantineLog(self.db)
        self.connections = Connections(self.db)
        self.ledger = Ledger(self.db, self.connections)
        self.outbox = Outbox(self.db, self.connections, self.audit)
        self.planning = Planning(self.db, self.ledger, self.outbox)
        self.cases = Cases(self.db, self.audit)
        self.tasks = Tasks(self.db, self.audit)
        self.leases = Leases(self.db)

    @property
    def engine(self) -> Engine:
        return self.db.engine

    @property
    def dialect(self) -> str:
        return self.db.dialect

    @property
    def url(self) -> str:
        return self.db.url

    @property
    def path(self) -> Path | None:
        """The SQLite database file (None on PostgreSQL or in memory)."""
        return self.db.path

    def transaction(self) -> AbstractContextManager[sa.Connection]:
        """Every repository call inside the block shares one connection and one transaction:
        committed at the end, rolled back on an exception. Nested: a savepoint."""
        return self.db.transaction()

    def lease(
        self, connection: str, holder: str, ttl: float | timedelta = 3600.0, *, wait: float = 0.0
    ) -> Lease:
        """Exclusive right to apply for `connection` (see sync.store.leases). Raises LeaseBusy."""
        return self.leases.lease(connection, holder, ttl, wait=wait)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
