"""Append-only logs: the audit trail of operator and engine decisions (table `audit`) and the
records a pull could not map (table `quarantine`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from connectors.base import Quarantined
from sync.store import codec
from sync.store import schema as t
from sync.store.db import Database


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    connection: str | None
    actor: str
    event: str
    detail: dict[str, Any] = field(default_factory=dict)


class AuditLog:
    """`store.audit`: who decided what, when."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def record(
        self,
        event: str,
        *,
        connection: str | None = None,
        actor: str = "relance",
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        with self._db.write() as conn:
            conn.execute(
                sa.insert(t.audit).values(
                    at=self._db.now(),
                    connection=connection,
                    actor=actor,
                    event=event,
                    detail=codec.jsonable(dict(detail or {})),
                )
            )

    def entries(self, connection: str | None = None, *, limit: int = 1000) -> list[AuditEntry]:
        """Newest first."""
        query = sa.select(t.audit)
        if connection is not None:
            query = query.where(t.audit.c.connection == connection)
        with self._db.read() as conn:
            rows = conn.execute(query.order_by(t.audit.c.id.desc()).limit(limit)).all()
        return [AuditEntry(r.id, r.at, r.connection, r.actor, r.event, r.detail) for r in rows]


class QuarantineLog:
    """`store.quarantine`: records a pull refused, with the reason and (the start of) the raw payload."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, connection: str, item: Quarantined) -> None:
        with self._db.write() as conn:
            conn.execute(
                sa.insert(t.quarantine).values(
                    connection=connection,
                    entity=item.entity,
                    record_id=item.record_id,
                    reason=item.reason,
                    raw=item.raw[:10_000],
                    at=self._db.now(),
                )
            )

    def records(self, connection: str, *, since: datetime | None = None) -> list[dict[str, Any]]:
        q = t.quarantine
        query = sa.select(q).where(q.c.connection == connection)
        if since is not None:
            query = query.where(q.c.at >= since)
        with self._db.read() as conn:
            rows = conn.execute(query.order_by(q.c.id)).mappings().all()
        return [codec.jsonable(dict(row)) for row in rows]
