"""The state store's tables (SQLAlchemy Core), identical on SQLite and PostgreSQL.

Conventions:
- money is exact: `Amount` is NUMERIC on PostgreSQL and a decimal string on SQLite (whose NUMERIC
  affinity would store a binary float); neutral records keep their amounts as strings in `payload`;
- datetimes are timezone-aware UTC in Python (`UTCDateTime`), dates are plain DATE;
- JSON columns hold only str/int/bool/list/dict (no floats, no Decimals);
- snapshots keep the whole neutral record in `payload` plus a few indexed columns for queries.

Tasks are a table, not a view over actions: a task entry is a rendered artefact (who to call, what
to say, the letter file) written by the channel when the action is applied, keyed by the action key
so repeating the effect after a crash never duplicates it, and closed by a person independently of
the action's status.

This module is the *current* shape; migrations/versions/ holds the frozen history that builds it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from policies.model.actions import ActionStatus, PlanStatus, TaskStatus

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING)


class ConnectionStatus(StrEnum):
    """How a connection's last run ended (`connections.status`)."""

    NEW = "new"  # never run to the end
    OK = "ok"
    ERROR = "error"


# The CHECK constraints' values: the enums' (their order is the constraints' order in 0001).
ACTION_STATUSES = tuple(status.value for status in ActionStatus)
PLAN_STATUSES = tuple(status.value for status in PlanStatus)
TASK_STATUSES = tuple(status.value for status in TaskStatus)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes in and out. SQLite has no time zones: stored as naive UTC there."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store only takes timezone-aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Amount(sa.TypeDecorator[Decimal]):
    """An exact decimal amount: NUMERIC(24, 6) on PostgreSQL, its string form on SQLite."""

    impl = sa.Numeric(24, 6)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String(40))
        return dialect.type_descriptor(sa.Numeric(24, 6, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise TypeError(f"amounts must be Decimal, got {type(value).__name__}: {value!r}")
        return str(value) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(str(value))


def _now() -> datetime:
    return datetime.now(UTC)


def _name() -> sa.String:
    return sa.String(200)


connections = sa.Table(
    "connections",
    metadata,
    sa.Column("name", _name(), primary_key=True),
    sa.Column("ledger", sa.String(20)),
    sa.Column("cursor", sa.JSON),
    sa.Column("cursor_taken_at", UTCDateTime),
    sa.Column("last_full_pull_at", UTCDateTime),
    sa.Column("last_sync_at", UTCDateTime),
    sa.Column("status", sa.String(20), nullable=False, server_default=ConnectionStatus.NEW.value),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False, default=_now),
)


def _snapshot_table(name: str, *extra: sa.Column[Any], indexes: tuple[str, ...] = ()) -> sa.Table:
    table = sa.Table(
        name,
        metadata,
        sa.Column("connection", _name(), primary_key=True),
        sa.Column("id", _name(), primary_key=True),
        *extra,
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("updated_at", UTCDateTime),
        sa.Column("stored_at", UTCDateTime, nullable=False),
    )
    for column in indexes:
        sa.Index(None, table.c.connection, table.c[column])
    return table


customers = _snapshot_table(
    "customers",
    sa.Column("name", sa.String(500), nullable=False),
    sa.Column("currency", sa.String(3)),
    sa.Column("active", sa.Boolean, nullable=False),
)

invoices = _snapshot_table(
    "invoices",
    sa.Column("number", sa.String(100), nullable=False),
    sa.Column("customer_id", _name(), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("is_open", sa.Boolean, nullable=False),
    sa.Column("due_date", sa.Date, nullable=False),
    sa.Column("balance", Amount, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    indexes=("customer_id", "number", "is_open", "due_date"),
)

payments = _snapshot_table(
    "payments",
    sa.Column("customer_id", _name(), nullable=False),
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("amount", Amount, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    indexes=("customer_id",),
)

credit_notes = _snapshot_table(
    "credit_notes",
    sa.Column("number", sa.String(100), nullable=False),
    sa.Column("customer_id", _name(), nullable=False),
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("remaining", Amount, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    indexes=("customer_id",),
)

SNAPSHOT_TABLES: dict[str, sa.Table] = {
    "customer": customers,
    "invoice": invoices,
    "payment": payments,
    "credit_note": credit_notes,
}

actions = sa.Table(
    "actions",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),  # UNIQUE by being the primary key
    sa.Column("connection", _name(), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("customer_id", _name(), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("invoice_ids", sa.JSON, nullable=False),
    sa.Column("step", sa.String(200)),
    sa.Column("channel", sa.String(20)),
    sa.Column("template", sa.String(200)),
    sa.Column("instalment", sa.Integer),
    sa.Column("charges", sa.JSON, nullable=False),  # [{component, amount (str), currency, description}]
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("ledger_ids", sa.JSON, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("planned_for", sa.Date),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("started_at", UTCDateTime),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("details", sa.JSON, nullable=False),
    sa.CheckConstraint(sa.column("status").in_(ACTION_STATUSES), name="status"),
    sa.Index(None, "connection", "status"),
    sa.Index(None, "connection", "customer_id"),
)

# Which invoices an action concerns, as rows (indexed), so "everything about invoice X" is a lookup.
action_invoices = sa.Table(
    "action_invoices",
    metadata,
    sa.Column("key", sa.String(200), sa.ForeignKey("actions.key", ondelete="CASCADE"), primary_key=True),
    sa.Column("invoice_id", _name(), primary_key=True),
    sa.Column("connection", _name(), nullable=False),
    sa.Index(None, "connection", "invoice_id"),
)

disputes = sa.Table(
    "disputes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("connection", _name(), nullable=False),
    sa.Column("invoice_id", _name(), nullable=False),
    sa.Column("until", sa.Date),  # None: open-ended
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("cleared_at", UTCDateTime),
    sa.Index(None, "connection", "invoice_id"),
)

pauses = sa.Table(
    "pauses",
    metadata,
    sa.Column("connection", _name(), primary_key=True),
    sa.Column("customer_id", _name(), primary_key=True),
    sa.Column("until", sa.Date, nullable=False),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

payment_plans = sa.Table(
    "payment_plans",
    metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("connection", _name(), nullable=False),
    sa.Column("customer_id", _name(), nullable=False),
    sa.Column("invoice_ids", sa.JSON, nullable=False),
    sa.Column("instalments", sa.JSON, nullable=False),  # [{due_date: iso, amount: str}]
    sa.Column("acceleration_days", sa.Integer),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.CheckConstraint(sa.column("status").in_(PLAN_STATUSES), name="status"),
    sa.Index(None, "connection", "status"),
)

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(200), nullable=False, unique=True),  # the action key: one task per action
    sa.Column("connection", _name(), nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("customer_id", _name()),
    sa.Column("invoice_ids", sa.JSON, nullable=False),
    sa.Column("title", sa.Text, nullable=False, server_default=""),
    sa.Column("note", sa.Text),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("done_at", UTCDateTime),
    sa.CheckConstraint(sa.column("status").in_(TASK_STATUSES), name="status"),
    sa.Index(None, "connection", "status"),
)

audit = sa.Table(
    "audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("connection", _name()),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("event", sa.String(100), nullable=False),
    sa.Column("detail", sa.JSON, nullable=False),
    sa.Index(None, "connection", "at"),
)

quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("connection", _name(), nullable=False),
    sa.Column("entity", sa.String(20), nullable=False),
    sa.Column("record_id", _name()),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("raw", sa.Text, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Index(None, "connection", "at"),
)

leases = sa.Table(
    "leases",
    metadata,
    sa.Column("connection", _name(), primary_key=True),
    sa.Column("holder", sa.String(300), nullable=False),
    sa.Column("acquired_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
)
