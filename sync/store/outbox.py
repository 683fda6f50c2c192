"""The action outbox (tables `actions`, `action_invoices`): the heart of exactly-once.

  planned --claim--> in_flight --mark_done--> done
                              --mark_failed--> failed --claim--> in_flight (retry)
                              --mark_uncertain--> uncertain --resolve_uncertain--> done | planned
                              --release--> planned (the effect provably did not happen)
  planned | failed --mark_superseded--> superseded (no longer due; never applied)
`claim` is a compare-and-set in one UPDATE, so two processes can never both claim an action.

History for planning (`history`) counts done, in_flight, uncertain and superseded actions as
already done, so nothing is planned again while its fate is unknown. An action superseded before
it was applied (cancelled) has had no effect: its charges are left out of the history (what was not
posted stays owed and rolls into the next charge), while its key and step still count.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from policies.model.actions import OPEN_STATUSES, ActionKind, ActionStatus, DoneAction, PlannedAction
from sync.store import codec
from sync.store import schema as t
from sync.store.action_records import ActionRecord, action_record, action_row, done_action, history_columns
from sync.store.audit import AuditLog
from sync.store.connections import Connections
from sync.store.db import CHUNK, IN_CHUNK, Database, StoreError
from sync.store.details_codec import encode_details

S = ActionStatus
# What the planner must not repeat: done, or whose fate is unknown, or recorded never to be sent.
HISTORY_STATUSES = (S.DONE, S.SUPERSEDED, S.IN_FLIGHT, S.UNCERTAIN)
CLAIMABLE = OPEN_STATUSES  # planned | failed


class Outbox:
    """`store.outbox`: recording planned actions, their transitions, and reading them back."""

    def __init__(self, db: Database, connections: Connections, audit: AuditLog) -> None:
        self._db = db
        self._connections = connections
        self._audit = audit

    # ------------------------------------------------------------ recording

    def record_planned(self, connection: str, actions: Sequence[PlannedAction]) -> list[str]:
        """Insert actions not yet in the outbox as `planned`; returns the keys newly inserted, in order.
        Keys already present (in any status) are left untouched."""
        return self._record(connection, _unique(actions), S.PLANNED)

    def record_superseded(self, connection: str, actions: Sequence[PlannedAction]) -> list[str]:
        """Record skipped steps (kind SUPERSEDED) as `superseded`: remembered, never applied."""
        return self._record(connection, _unique(actions), S.SUPERSEDED)

    def _record(self, connection: str, actions: Sequence[PlannedAction], status: ActionStatus) -> list[str]:
        now = self._db.now()
        inserted: list[str] = []
        with self._db.write() as conn:
            self._connections.ensure(conn, connection)
            for start in range(0, len(actions), CHUNK):
                chunk = actions[start : start + CHUNK]
                rows = [action_row(connection, action, status, now) for action in chunk]
                statement = (
                    self._db.insert(t.actions)
                    .on_conflict_do_nothing(index_elements=["key"])
                    .returning(t.actions.c.key)
                )
                new = set(conn.execute(statement, rows).scalars().all())
                links = [
                    {"key": action.key, "invoice_id": invoice_id, "connection": connection}
                    for action in chunk
                    if action.key in new
                    for invoice_id in dict.fromkeys(action.invoice_ids)
                ]
                if links:
                    conn.execute(
                        self._db.insert(t.action_invoices).on_conflict_do_nothing(
                            index_elements=["key", "invoice_id"]
                        ),
                        links,
                    )
                inserted.extend(action.key for action in chunk if action.key in new)
        return inserted

    def update_planned(self, actions: Sequence[PlannedAction]) -> int:
        """Refresh the intent (reason, charges, details, ...) of actions still planned or failed from a
        fresh plan of the same keys. Actions in any other status are never touched. Returns rows updated."""
        if not actions:
            return 0
        now = self._db.now()
        rows = [
            {
                "b_key": a.key,
                "reason": a.reason,
                "charges": codec.encode_charges(a.charges),
                "details": encode_details(a.details),
                "step": a.step,
                "channel": a.channel,
                "template": a.template,
                "instalment": a.instalment,
                "planned_for": a.due_on,
                "currency": a.currency,
                "updated_at": now,
            }
            for a in _unique(actions)
        ]
        values: dict[str, Any] = {name: sa.bindparam(name) for name in rows[0] if name != "b_key"}
        statement = (
            sa.update(t.actions)
            .where(
                t.actions.c.key == sa.bindparam("b_key"),
                sa.or_(*(t.actions.c.status == status for status in CLAIMABLE)),
            )  # no IN: executemany
            .values(values)
        )
        with self._db.write() as conn:
            result = conn.execute(statement, rows)
        return max(result.rowcount, 0)

    # ------------------------------------------------------------ transitions

    def _transition(
        self,
        key: str,
        from_statuses: Collection[ActionStatus],
        values: Mapping[str, Any],
        *,
        merge_details: Mapping[str, Any] | None = None,
    ) -> bool:
        now = self._db.now()
        with self._db.write() as conn:
            if merge_details:
                current = conn.execute(
                    sa.select(t.actions.c.details).where(t.actions.c.key == key).with_for_update()
                ).scalar_one_or_none()
                if current is None:
                    raise StoreError(f"state: no action with key {key!r}")
                values = {**values, "details": {**current, **codec.jsonable(dict(merge_details))}}
            result = conn.execute(
                sa.update(t.actions)
                .where(t.actions.c.key == key, t.actions.c.status.in_(tuple(from_statuses)))
                .values({**values, "updated_at": now})
            )
            if result.rowcount == 1:
                return True
            exists = conn.execute(sa.select(t.actions.c.key).where(t.actions.c.key == key)).first()
        if exists is None:
            raise StoreError(
                f"state: no action with key {key!r}", hint="check the key with `relance history`"
            )
        return False

    def claim(self, key: str) -> bool:
        """planned|failed -> in_flight (attempts + 1, started_at now), atomically. False when the action
        is in any other status (someone else claimed it, or it is settled)."""
        return self._transition(
            key,
            CLAIMABLE,
            {
                "status": S.IN_FLIGHT,
                "attempts": t.actions.c.attempts + 1,
                "started_at": self._db.now(),
                "finished_at": None,
            },
        )

    def mark_done(
        self, key: str, ledger_ids: Sequence[str] = (), detail: Mapping[str, Any] | None = None
    ) -> bool:
        """in_flight|uncertain|planned|failed -> done, with the ledger ids and the outcome detail merged
        into `details`. False if it was already done or superseded."""
        return self._transition(
            key,
            (S.IN_FLIGHT, S.UNCERTAIN, S.PLANNED, S.FAILED),
            {"status": S.DONE, "ledger_ids": list(ledger_ids), "error": None, "finished_at": self._db.now()},
            merge_details=detail,
        )

    def mark_failed(self, key: str, error: str) -> bool:
        """in_flight -> failed: the ledger refused, nothing happened; may be claimed again."""
        return self._transition(
            key, (S.IN_FLIGHT,), {"status": S.FAILED, "error": error, "finished_at": self._db.now()}
        )

    def mark_uncertain(self, key: str, error: str) -> bool:
        """in_flight -> uncertain: may or may not have happened; only a person (resolve) moves it on."""
        return self._transition(
            key, (S.IN_FLIGHT,), {"status": S.UNCERTAIN, "error": error, "finished_at": self._db.now()}
        )

    def mark_superseded(self, key: str, reason: str) -> bool:
        """planned|failed -> superseded (no longer due). Never touches in-flight or settled actions."""
        return self._transition(
            key, CLAIMABLE, {"status": S.SUPERSEDED, "error": reason, "finished_at": self._db.now()}
        )

    def release(self, key: str, reason: str) -> bool:
        """in_flight -> planned when the effect provably did not happen (the attempt is not counted)."""
        return self._transition(
            key,
            (S.IN_FLIGHT,),
            {
                "status": S.PLANNED,
                "error": reason,
                "started_at": None,
                "attempts": sa.case((t.actions.c.attempts > 0, t.actions.c.attempts - 1), else_=0),
            },
        )

    def resolve_uncertain(self, key: str, *, happened: bool, actor: str = "operator", note: str = "") -> bool:
        """An operator settles an uncertain action: it happened (-> done) or it did not (-> planned)."""
        if happened:
            changed = self._transition(
                key,
                (S.UNCERTAIN,),
                {"status": S.DONE, "error": None, "finished_at": self._db.now()},
                merge_details={"resolved": "happened", "resolved_note": note},
            )
        else:
            changed = self._transition(
                key,
                (S.UNCERTAIN,),
                {"status": S.PLANNED, "error": None, "started_at": None, "finished_at": None},
                merge_details={"resolved": "not_happened", "resolved_note": note},
            )
        if changed:
            record = self.action(key)
            self._audit.record(
                "action_resolved",
                connection=record.connection if record else None,
                actor=actor,
                detail={"key": key, "happened": happened, "note": note},
            )
        return changed

    # ------------------------------------------------------------ reading

    def action(self, key: str) -> ActionRecord | None:
        with self._db.read() as conn:
            row = conn.execute(sa.select(t.actions).where(t.actions.c.key == key)).one_or_none()
        return None if row is None else action_record(row)

    def actions(
        self,
        connection: str | None = None,
        status: ActionStatus | Collection[ActionStatus] | None = None,
        kind: str | Collection[str] | None = None,
        invoice_id: str | None = None,
    ) -> list[ActionRecord]:
        """Outbox rows, oldest first. status/kind: one value or several."""
        query = sa.select(t.actions)
        if connection is not None:
            query = query.where(t.actions.c.connection == connection)
        if status is not None:
            query = query.where(t.actions.c.status.in_([status] if isinstance(status, str) else list(status)))
        if kind is not None:
            query = query.where(t.actions.c.kind.in_([kind] if isinstance(kind, str) else list(kind)))
        if invoice_id is not None:
            links = sa.select(t.action_invoices.c.key).where(t.action_invoices.c.invoice_id == invoice_id)
            if connection is not None:
                links = links.where(t.action_invoices.c.connection == connection)
            query = query.where(t.actions.c.key.in_(links))
        query = query.order_by(t.actions.c.created_at, t.actions.c.key)
        with self._db.read() as conn:
            return [action_record(row) for row in conn.execute(query)]

    def in_flight(self, connection: str) -> list[ActionRecord]:
        return self.actions(connection, status=S.IN_FLIGHT)

    def status_counts(self, connection: str | None = None) -> dict[ActionStatus, int]:
        query = sa.select(t.actions.c.status, sa.func.count()).group_by(t.actions.c.status)
        if connection is not None:
            query = query.where(t.actions.c.connection == connection)
        with self._db.read() as conn:
            return {ActionStatus(status): count for status, count in conn.execute(query)}

    def history(self, connection: str) -> dict[str, list[DoneAction]]:
        """What the planner must not repeat, by invoice id (done, superseded, in_flight, uncertain)."""
        a = t.actions
        query = sa.select(*history_columns(a)).where(
            a.c.connection == connection, a.c.status.in_(HISTORY_STATUSES)
        )
        result: dict[str, list[DoneAction]] = defaultdict(list)
        with self._db.read() as conn:
            for row in conn.execute(query.order_by(a.c.created_at, a.c.key)):
                done = done_action(row)
                for invoice_id in dict.fromkeys(row.invoice_ids):
                    result[invoice_id].append(done)
        return dict(result)

    def history_for(self, connection: str, invoice_ids: Sequence[str]) -> dict[str, list[DoneAction]]:
        """`history` restricted to some invoices (same lists, same order)."""
        ids = list(dict.fromkeys(invoice_ids))
        a, links = t.actions, t.action_invoices
        result: dict[str, list[DoneAction]] = defaultdict(list)
        shared: dict[str, DoneAction] = {}  # one object per action, as in `history`
        with self._db.read() as conn:
            for start in range(0, len(ids), IN_CHUNK):
                chunk = ids[start : start + IN_CHUNK]
                query = (
                    sa.select(links.c.invoice_id, *history_columns(a))
                    .select_from(links.join(a, a.c.key == links.c.key))
                    .where(
                        links.c.connection == connection,
                        links.c.invoice_id.in_(chunk),
                        a.c.connection == connection,
                        a.c.status.in_(HISTORY_STATUSES),
                    )
                    .order_by(a.c.created_at, a.c.key)
                )
                for row in conn.execute(query):
                    done = shared.get(row.key)
                    if done is None:
                        done = shared[row.key] = done_action(row)
                    result[row.invoice_id].append(done)
        return dict(result)

    def breaches(self, connection: str) -> list[dict[str, Any]]:
        """Credit-limit breaches recorded (CREDIT_ALERT or call TASK actions), newest first."""
        records = [
            r
            for r in self.actions(connection, kind=(ActionKind.CREDIT_ALERT.value, ActionKind.TASK.value))
            if r.step == "credit-limit" and r.status != S.SUPERSEDED
        ]
        return [record.as_dict() for record in reversed(records)]


def _unique(actions: Iterable[PlannedAction]) -> list[PlannedAction]:
    """First occurrence of each key (a plan never repeats a key; a bad caller must not fail the insert)."""
    seen: dict[str, PlannedAction] = {}
    for action in actions:
        seen.setdefault(action.key, action)
    return list(seen.values())
