"""A lease per connection: two processes never apply for the same tenant at once.

The exclusion comes from a lock the operating system or the database server drops by itself when
its holder dies (no stale lease to clean up after a SIGKILL):
- PostgreSQL: a session advisory lock, pg_try_advisory_lock(hashtext('relance'), hashtext(name)),
  held on a dedicated connection for the life of the lease;
- SQLite: a `filelock` lock file next to the database file (one per connection name).
The `leases` row only says who holds it and until when (for the error message and for operators);
it is written after the lock is taken and removed on release, through the unit of work.

A Lease needs the database (the unit of work, its engine for the dedicated PostgreSQL connection)
and a clock, nothing of the Store: `Leases` is the repository (`store.leases`) that makes them.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from filelock import FileLock, Timeout

from policies.model.errors import RelanceError
from sync.store import schema as t
from sync.store.db import Database

_POLL_SECONDS = 0.2


class LeaseBusy(RelanceError):
    """Another process holds the lease of this connection."""

    def __init__(self, connection: str, holder: str | None, expires_at: datetime | None) -> None:
        who = holder or "another process"
        when = f" (lease recorded until {expires_at:%Y-%m-%d %H:%M:%S} UTC)" if expires_at else ""
        super().__init__(
            f"connection '{connection}' is busy: {who} is applying for it{when}",
            hint="wait for that run to finish (or stop it); relance never runs two applies on one connection",
        )
        self.connection = connection
        self.holder = holder
        self.expires_at = expires_at


class Leases:
    """`store.leases`: leases on connections, and who holds them."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def lease(
        self, connection: str, holder: str, ttl: float | timedelta = 3600.0, *, wait: float = 0.0
    ) -> Lease:
        """Exclusive right to apply for `connection` (a context manager). Raises LeaseBusy."""
        seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else float(ttl)
        return Lease(self._db, connection, holder, ttl=seconds, wait=wait, clock=self._db.now)

    def holder(self, connection: str) -> tuple[str, datetime, datetime] | None:
        """(holder, acquired_at, expires_at) of the last lease row written for a connection."""
        return lease_holder(self._db, connection)


def lease_holder(db: Database, connection: str) -> tuple[str, datetime, datetime] | None:
    with db.read() as conn:
        row = conn.execute(sa.select(t.leases).where(t.leases.c.connection == connection)).one_or_none()
    return None if row is None else (row.holder, row.acquired_at, row.expires_at)


class Lease:
    """Context manager; see Leases.lease(). `wait` seconds to wait for a busy lease (0: fail at once)."""

    def __init__(
        self,
        db: Database,
        connection: str,
        holder: str,
        *,
        ttl: float,
        wait: float = 0.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.db = db
        self.clock = clock or db.now
        self.connection = connection
        self.holder = holder
        self.ttl = ttl
        self.wait = wait
        self.acquired_at: datetime | None = None
        self.expires_at: datetime | None = None
        self._pg: sa.Connection | None = None
        self._file: FileLock | None = None

    # ------------------------------------------------------------ context manager

    def __enter__(self) -> Lease:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    @property
    def held(self) -> bool:
        return self._pg is not None or self._file is not None

    # ------------------------------------------------------------ acquire / renew / release

    def acquire(self) -> None:
        if self.held:
            raise RuntimeError("lease already held")
        if self.db.dialect == "postgresql":
            self._acquire_postgres()
        else:
            self._acquire_file()
        try:
            self._write_row()
        except BaseException:
            self._drop_lock()
            raise

    def renew(self, ttl: float | None = None) -> None:
        """Push the recorded expiry forward (long runs, the daemon)."""
        if not self.held:
            raise RuntimeError("lease not held")
        if ttl is not None:
            self.ttl = ttl
        self._write_row()

    def release(self) -> None:
        if not self.held:
            return
        try:
            with self.db.write() as conn:
                conn.execute(
                    sa.delete(t.leases).where(
                        t.leases.c.connection == self.connection, t.leases.c.holder == self.holder
                    )
                )
        finally:
            self._drop_lock()

    # ------------------------------------------------------------ PostgreSQL

    def _acquire_postgres(self) -> None:
        conn = self.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        statement = sa.text("SELECT pg_try_advisory_lock(hashtext('relance'), hashtext(:name))")
        deadline = time.monotonic() + self.wait
        try:
            while not conn.execute(statement, {"name": self.connection}).scalar_one():
                if time.monotonic() >= deadline:
                    raise self._busy()
                time.sleep(_POLL_SECONDS)
        except BaseException:
            conn.close()
            raise
        self._pg = conn

    # ------------------------------------------------------------ SQLite

    def _lock_path(self) -> Path:
        slug = re.sub(r"[^A-Za-z0-9_.-]", "_", self.connection)[:60]
        digest = hashlib.sha256(self.connection.encode()).hexdigest()[:8]
        database = self.db.path
        if database is None:  # in-memory database: a lock private to this engine
            return Path(tempfile.gettempdir()) / f"relance-{id(self.db.engine)}-{slug}-{digest}.lease.lock"
        return database.with_name(f"{database.name}.{slug}-{digest}.lease.lock")

    def _acquire_file(self) -> None:
        lock = FileLock(self._lock_path())
        try:
            if self.wait > 0:
                lock.acquire(timeout=self.wait, poll_interval=_POLL_SECONDS)
            else:
                lock.acquire(blocking=False)
        except Timeout:
            raise self._busy() from None
        self._file = lock

    # ------------------------------------------------------------ common

    def _drop_lock(self) -> None:
        pg, self._pg = self._pg, None
        if pg is not None:
            try:
                pg.execute(
                    sa.text("SELECT pg_advisory_unlock(hashtext('relance'), hashtext(:name))"),
                    {"name": self.connection},
                )
                pg.close()
            except Exception:
                pg.invalidate()  # closing the session drops the lock for sure
                pg.close()
        lock, self._file = self._file, None
        if lock is not None:
            lock.release()

    def _write_row(self) -> None:
        now = self.clock()
        self.acquired_at = self.acquired_at or now
        self.expires_at = now + timedelta(seconds=self.ttl)
        values: dict[str, Any] = {
            "connection": self.connection,
            "holder": self.holder,
            "acquired_at": self.acquired_at,
            "expires_at": self.expires_at,
        }
        statement = self.db.insert(t.leases).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=["connection"],
            set_={name: statement.excluded[name] for name in ("holder", "acquired_at", "expires_at")},
        )
        with self.db.write() as conn:
            conn.execute(statement)

    def _busy(self) -> LeaseBusy:
        recorded = lease_holder(self.db, self.connection)
        if recorded is None:
            return LeaseBusy(self.connection, None, None)
        holder, _acquired, expires_at = recorded
        return LeaseBusy(self.connection, holder, expires_at)
