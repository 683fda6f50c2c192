"""What a person decided about a customer or an invoice, which the planner obeys: disputes (tables
`disputes`), pauses (`pauses`) and agreed payment plans (`payment_plans`). Every change is audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa

from policies.model.actions import PlanStatus
from policies.model.errors import RelanceError
from policies.model.ledger import Instalment
from policies.payment_plans import PaymentPlan
from sync.store import schema as t
from sync.store.audit import AuditLog
from sync.store.db import Database


@dataclass(frozen=True, slots=True)
class DisputeRecord:
    id: int
    connection: str
    invoice_id: str
    until: date | None
    reason: str
    created_at: datetime
    cleared_at: datetime | None


@dataclass(frozen=True, slots=True)
class PauseRecord:
    connection: str
    customer_id: str
    until: date
    reason: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PaymentPlanRecord:
    plan: PaymentPlan
    connection: str
    status: PlanStatus
    created_at: datetime
    updated_at: datetime


class Cases:
    """`store.cases`: disputes, pauses and payment plans."""

    def __init__(self, db: Database, audit: AuditLog) -> None:
        self._db = db
        self._audit = audit

    # ------------------------------------------------------------ disputes

    def set_dispute(
        self,
        connection: str,
        invoice_id: str,
        *,
        until: date | None = None,
        reason: str = "",
        actor: str = "operator",
    ) -> None:
        """Open (or change) the dispute on an invoice; `until` None = until cleared."""
        now = self._db.now()
        d = t.disputes
        with self._db.write() as conn:
            active = (
                conn.execute(
                    sa.select(d.c.id).where(
                        d.c.connection == connection, d.c.invoice_id == invoice_id, d.c.cleared_at.is_(None)
                    )
                )
                .scalars()
                .all()
            )
            if active:
                conn.execute(sa.update(d).where(d.c.id.in_(active)).values(until=until, reason=reason))
            else:
                conn.execute(
                    sa.insert(d).values(
                        connection=connection,
                        invoice_id=invoice_id,
                        until=until,
                        reason=reason,
                        created_at=now,
                    )
                )
        self._audit.record(
            "dispute_set",
            connection=connection,
            actor=actor,
            detail={"invoice_id": invoice_id, "until": until, "reason": reason},
        )

    def clear_dispute(self, connection: str, invoice_id: str, *, actor: str = "operator") -> bool:
        d = t.disputes
        with self._db.write() as conn:
            result = conn.execute(
                sa.update(d)
                .where(d.c.connection == connection, d.c.invoice_id == invoice_id, d.c.cleared_at.is_(None))
                .values(cleared_at=self._db.now())
            )
        if result.rowcount:
            self._audit.record(
                "dispute_cleared", connection=connection, actor=actor, detail={"invoice_id": invoice_id}
            )
        return result.rowcount > 0

    def disputes(self, connection: str, today: date) -> dict[str, date | None]:
        """Invoices disputed on `today` (end date inclusive) -> end date (None: open-ended)."""
        d = t.disputes
        query = sa.select(d.c.invoice_id, d.c.until).where(
            d.c.connection == connection,
            d.c.cleared_at.is_(None),
            sa.or_(d.c.until.is_(None), d.c.until >= today),
        )
        result: dict[str, date | None] = {}
        with self._db.read() as conn:
            for invoice_id, until in conn.execute(query):
                previous = result.get(invoice_id, until)
                result[invoice_id] = None if until is None or previous is None else max(until, previous)
        return result

    def dispute_records(self, connection: str, *, include_cleared: bool = False) -> list[DisputeRecord]:
        d = t.disputes
        query = sa.select(d).where(d.c.connection == connection)
        if not include_cleared:
            query = query.where(d.c.cleared_at.is_(None))
        with self._db.read() as conn:
            rows = conn.execute(query.order_by(d.c.created_at, d.c.id)).all()
        return [
            DisputeRecord(r.id, r.connection, r.invoice_id, r.until, r.reason, r.created_at, r.cleared_at)
            for r in rows
        ]

    # ------------------------------------------------------------ pauses

    def set_pause(
        self, connection: str, customer_id: str, until: date, *, reason: str = "", actor: str = "operator"
    ) -> None:
        """Pause chasing a customer up to and including `until` (replaces an earlier pause)."""
        statement = self._db.insert(t.pauses).values(
            connection=connection,
            customer_id=customer_id,
            until=until,
            reason=reason,
            created_at=self._db.now(),
        )
        statement = statement.on_conflict_do_update(
            index_elements=["connection", "customer_id"],
            set_={
                "until": statement.excluded.until,
                "reason": statement.excluded.reason,
                "created_at": statement.excluded.created_at,
            },
        )
        with self._db.write() as conn:
            conn.execute(statement)
        self._audit.record(
            "pause_set",
            connection=connection,
            actor=actor,
            detail={"customer_id": customer_id, "until": until, "reason": reason},
        )

    def clear_pause(self, connection: str, customer_id: str, *, actor: str = "operator") -> bool:
        p = t.pauses
        with self._db.write() as conn:
            result = conn.execute(
                sa.delete(p).where(p.c.connection == connection, p.c.customer_id == customer_id)
            )
        if result.rowcount:
            self._audit.record(
                "pause_cleared", connection=connection, actor=actor, detail={"customer_id": customer_id}
            )
        return result.rowcount > 0

    def pauses(self, connection: str, today: date) -> dict[str, date]:
        """Customers paused on `today` (inclusive) -> last paused day."""
        p = t.pauses
        query = sa.select(p.c.customer_id, p.c.until).where(p.c.connection == connection, p.c.until >= today)
        with self._db.read() as conn:
            return {customer_id: until for customer_id, until in conn.execute(query)}

    def pause_records(self, connection: str) -> list[PauseRecord]:
        p = t.pauses
        with self._db.read() as conn:
            rows = conn.execute(
                sa.select(p).where(p.c.connection == connection).order_by(p.c.customer_id)
            ).all()
        return [PauseRecord(r.connection, r.customer_id, r.until, r.reason, r.created_at) for r in rows]

    # ------------------------------------------------------------ payment plans

    def add_payment_plan(self, connection: str, plan: PaymentPlan, *, actor: str = "operator") -> str:
        """Store a new active plan (its id must be new). Returns the plan id."""
        now = self._db.now()
        row = {
            "id": plan.id,
            "connection": connection,
            "customer_id": plan.customer_id,
            "invoice_ids": list(plan.invoice_ids),
            "instalments": [
                {"due_date": i.due_date.isoformat(), "amount": str(i.amount)} for i in plan.instalments
            ],
            "acceleration_days": plan.acceleration_days,
            "status": PlanStatus.ACTIVE,
            "created_at": now,
            "updated_at": now,
        }
        with self._db.write() as conn:
            exists = conn.execute(
                sa.select(t.payment_plans.c.id).where(t.payment_plans.c.id == plan.id)
            ).first()
            if exists is not None:
                raise RelanceError(f"payment plan {plan.id!r} already exists", hint="choose another plan id")
            conn.execute(sa.insert(t.payment_plans).values(row))
        self._audit.record(
            "payment_plan_added",
            connection=connection,
            actor=actor,
            detail={
                "plan": plan.id,
                "customer_id": plan.customer_id,
                "invoice_ids": list(plan.invoice_ids),
                "total": str(plan.total),
            },
        )
        return plan.id

    def set_payment_plan_status(self, plan_id: str, status: PlanStatus, *, actor: str = "relance") -> bool:
        if status not in t.PLAN_STATUSES:
            raise ValueError(f"payment plan status must be one of {', '.join(t.PLAN_STATUSES)}")
        pp = t.payment_plans
        with self._db.write() as conn:
            connection = conn.execute(
                sa.select(pp.c.connection).where(pp.c.id == plan_id)
            ).scalar_one_or_none()
            if connection is None:
                raise RelanceError(
                    f"no payment plan {plan_id!r}", hint="list them with `relance payment-plan --list`"
                )
            result = conn.execute(
                sa.update(pp)
                .where(pp.c.id == plan_id, pp.c.status != status)
                .values(status=status, updated_at=self._db.now())
            )
        if result.rowcount:
            self._audit.record(
                "payment_plan_status",
                connection=connection,
                actor=actor,
                detail={"plan": plan_id, "status": status},
            )
        return result.rowcount > 0

    def payment_plans(self, connection: str) -> dict[str, PaymentPlan]:
        """Active plans by id: what the planner takes."""
        return {r.plan.id: r.plan for r in self.payment_plan_records(connection, status=PlanStatus.ACTIVE)}

    def payment_plan_records(
        self, connection: str, *, status: PlanStatus | None = None
    ) -> list[PaymentPlanRecord]:
        pp = t.payment_plans
        query = sa.select(pp).where(pp.c.connection == connection)
        if status is not None:
            query = query.where(pp.c.status == status)
        with self._db.read() as conn:
            rows = conn.execute(query.order_by(pp.c.created_at, pp.c.id)).all()
        return [
            PaymentPlanRecord(
                PaymentPlan(
                    id=r.id,
                    customer_id=r.customer_id,
                    invoice_ids=tuple(r.invoice_ids),
                    instalments=tuple(
                        Instalment(date.fromisoformat(i["due_date"]), Decimal(i["amount"]))
                        for i in r.instalments
                    ),
                    acceleration_days=r.acceleration_days,
                ),
                r.connection,
                PlanStatus(r.status),
                r.created_at,
                r.updated_at,
            )
            for r in rows
        ]
