"""Tasks for a person (table `tasks`): a call to make, a letter to print, an agency hand-over.

A task is a rendered artefact written by the channel when its action is applied, keyed by the action
key so that repeating the effect after a crash never duplicates it, and closed by a person
independently of the action's status."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from policies.model.actions import TaskStatus
from sync.store import codec
from sync.store import schema as t
from sync.store.audit import AuditLog
from sync.store.db import Database


@dataclass(frozen=True, slots=True)
class TaskRecord:
    id: int
    key: str
    connection: str
    kind: str
    customer_id: str | None
    invoice_ids: tuple[str, ...]
    title: str
    note: str | None
    payload: dict[str, Any]
    status: TaskStatus
    created_at: datetime
    done_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return codec.jsonable({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})


class Tasks:
    """`store.tasks`: one task per action key."""

    def __init__(self, db: Database, audit: AuditLog) -> None:
        self._db = db
        self._audit = audit

    def add(self, connection: str, entry: object, *, note: str | None = None) -> bool:
        """Record a task (call, letter, agency hand-over) once per action key. `entry` is a dataclass or
        mapping with at least `key` (or `action_key`) and `kind`; the whole entry is kept as payload.
        Returns False when the task already exists (a repeated effect after a crash)."""
        data = _as_mapping(entry)
        key = data.get("key") or data.get("action_key")
        if not key:
            raise ValueError("a task entry needs the action key (`key` or `action_key`)")
        row = {
            "key": str(key),
            "connection": connection,
            "kind": str(data.get("kind") or "task"),
            "customer_id": data.get("customer_id"),
            "invoice_ids": list(data.get("invoice_ids") or data.get("invoices") or ()),
            "title": str(data.get("title") or data.get("summary") or data.get("subject") or ""),
            "note": note,
            "payload": codec.jsonable(data),
            "status": TaskStatus.OPEN,
            "created_at": self._db.now(),
        }
        with self._db.write() as conn:
            inserted = conn.execute(
                self._db.insert(t.tasks)
                .values(row)
                .on_conflict_do_nothing(index_elements=["key"])
                .returning(t.tasks.c.id)
            ).first()
        return inserted is not None

    def records(self, connection: str | None = None, status: TaskStatus | None = None) -> list[TaskRecord]:
        """Tasks, oldest first; all connections unless one is named, any status unless one is."""
        query = sa.select(t.tasks)
        if connection is not None:
            query = query.where(t.tasks.c.connection == connection)
        if status is not None:
            query = query.where(t.tasks.c.status == status)
        with self._db.read() as conn:
            rows = conn.execute(query.order_by(t.tasks.c.created_at, t.tasks.c.id)).all()
        return [
            TaskRecord(
                row.id,
                row.key,
                row.connection,
                row.kind,
                row.customer_id,
                tuple(row.invoice_ids),
                row.title,
                row.note,
                row.payload,
                TaskStatus(row.status),
                row.created_at,
                row.done_at,
            )
            for row in rows
        ]

    def complete(self, task: int | str, *, actor: str = "operator") -> bool:
        """Close an open task, by id or by action key."""
        column = t.tasks.c.id if isinstance(task, int) else t.tasks.c.key
        with self._db.write() as conn:
            result = conn.execute(
                sa.update(t.tasks)
                .where(column == task, t.tasks.c.status == TaskStatus.OPEN)
                .values(status=TaskStatus.DONE, done_at=self._db.now())
            )
        if result.rowcount == 1:
            self._audit.record("task_done", actor=actor, detail={"task": task})
        return result.rowcount == 1


def _as_mapping(entry: object) -> dict[str, Any]:
    if isinstance(entry, Mapping):
        return dict(entry)
    as_dict = getattr(entry, "as_dict", None)
    if callable(as_dict):  # the entry's own JSON shape (channels.handover.TaskEntry)
        return dict(as_dict())
    if dataclasses.is_dataclass(entry) and not isinstance(entry, type):
        return {f.name: getattr(entry, f.name) for f in dataclasses.fields(entry)}
    if hasattr(entry, "_asdict"):
        return dict(entry._asdict())
    return dict(vars(entry))
