"""A lease per connection: two processes never apply for the same tenant at once.

The exclusion comes from a lock the operating system or the database server drops by itself when
its holder dies (no stale lease to clean up after a SIGKILL):
- PostgreSQL: a session advisory lock, pg_try_advisory_lock(hashtext('relance'), hashtext(name)),
  held on a dedicated connection for the life of the lease;
- SQLite: a `filelock` lock file next to the database file (one per connection name).
The `leases` row only says who holds it and until when (for the error message and for operators);
it is written after the lock is taken and removed on release.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from filelock import FileLock, Timeout

from policies.model.errors import RelanceError
from sync.store import schema as t

if TYPE_CHECKING:
    from sync.store.repository import Store

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


class Lease:
    """Context manager; see Store.lease(). `wait` seconds to wait for a busy lease (0: fail at once)."""

    def __init__(self, store: Store, connection: str, holder: str, *, ttl: float, wait: float = 0.0) -> None:
        self.store = store
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
        if self.store.dialect == "postgresql":
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
            with self.store._write() as conn:
                conn.execute(
                    sa.delete(t.leases).where(
                        t.leases.c.connection == self.connection, t.leases.c.holder == self.holder
                    )
                )
        finally:
            self._drop_lock()

    # ------------------------------------------------------------ PostgreSQL

    def _acquire_postgres(self) -> None:
        conn = self.store.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
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
        database = self.store.path
        if database is None:  # in-memory database: a lock private to this engine
            return Path(tempfile.gettempdir()) / f"relance-{id(self.store.engine)}-{slug}-{digest}.lease.lock"
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
        now = datetime.now(UTC)
        self.acquired_at = self.acquired_at or now
        self.expires_at = now + timedelta(seconds=self.ttl)
        values: dict[str, Any] = {
            "connection": self.connection,
            "holder": self.holder,
            "acquired_at": self.acquired_at,
            "expires_at": self.expires_at,
        }
        statement = self.store._insert(t.leases).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=["connection"],
            set_={name: statement.excluded[name] for name in ("holder", "acquired_at", "expires_at")},
        )
        with self.store._write() as conn:
            conn.execute(statement)

    def _busy(self) -> LeaseBusy:
        recorded = self.store.lease_holder(self.connection)
        if recorded is None:
            return LeaseBusy(self.connection, None, None)
        holder, _acquired, expires_at = recorded
        return LeaseBusy(self.connection, holder, expires_at)
