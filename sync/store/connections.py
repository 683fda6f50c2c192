"""Connections and their pull cursors (table `connections`): where each pull stopped, how the last
run ended. Every other repository that writes a connection's rows makes sure its row exists first
(`ensure`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from connectors.base import Cursor
from sync.store import codec
from sync.store import schema as t
from sync.store.db import Database
from sync.store.schema import ConnectionStatus


@dataclass(frozen=True, slots=True)
class ConnectionRecord:
    name: str
    ledger: str | None
    cursor: Cursor | None
    last_full_pull_at: datetime | None
    last_sync_at: datetime | None
    status: ConnectionStatus
    last_error: str | None


class Connections:
    """`store.connections`: one row per connection name."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def ensure(self, conn: sa.Connection, name: str, ledger: str | None = None) -> None:
        """Insert the connection's row if missing (inside the caller's write)."""
        values: dict[str, Any] = {"name": name, "status": ConnectionStatus.NEW, "created_at": self._db.now()}
        if ledger is not None:
            values["ledger"] = ledger
        conn.execute(
            self._db.insert(t.connections).values(values).on_conflict_do_nothing(index_elements=["name"])
        )

    def touch(self, name: str, *, ledger: str | None = None, error: str | None = None) -> None:
        """Record the end of a run: last_sync_at now, status ok|error, the error if any."""
        with self._db.write() as conn:
            self.ensure(conn, name, ledger)
            values: dict[str, Any] = {
                "last_sync_at": self._db.now(),
                "status": ConnectionStatus.ERROR if error else ConnectionStatus.OK,
                "last_error": error,
            }
            if ledger is not None:
                values["ledger"] = ledger
            conn.execute(sa.update(t.connections).where(t.connections.c.name == name).values(values))

    def get(self, name: str) -> ConnectionRecord | None:
        with self._db.read() as conn:
            row = conn.execute(sa.select(t.connections).where(t.connections.c.name == name)).one_or_none()
        return None if row is None else _connection_record(row)

    def records(self) -> list[ConnectionRecord]:
        """Every connection, by name."""
        with self._db.read() as conn:
            rows = conn.execute(sa.select(t.connections).order_by(t.connections.c.name)).all()
        return [_connection_record(row) for row in rows]

    def cursor(self, name: str) -> Cursor | None:
        record = self.get(name)
        return record.cursor if record else None

    def set_cursor(self, name: str, cursor: Cursor | None, *, full: bool = False) -> None:
        """Save where the pull stopped (None forgets it: the next pull is full)."""
        with self._db.write() as conn:
            self.ensure(conn, name, cursor.ledger if cursor else None)
            values: dict[str, Any] = {
                "cursor": {"ledger": cursor.ledger, "data": codec.jsonable(cursor.data)} if cursor else None,
                "cursor_taken_at": cursor.taken_at if cursor else None,
            }
            if full and cursor is not None:
                values["last_full_pull_at"] = cursor.taken_at
            conn.execute(sa.update(t.connections).where(t.connections.c.name == name).values(values))


def _connection_record(row: sa.Row[Any]) -> ConnectionRecord:
    cursor = None
    if row.cursor is not None and row.cursor_taken_at is not None:
        cursor = Cursor(row.cursor["ledger"], row.cursor["data"], row.cursor_taken_at)
    return ConnectionRecord(
        row.name,
        row.ledger,
        cursor,
        row.last_full_pull_at,
        row.last_sync_at,
        ConnectionStatus(row.status),
        row.last_error,
    )
