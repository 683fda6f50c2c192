"""Initial schema: connections, snapshots, the action outbox, disputes, pauses, payment plans,
tasks, audit, quarantine and leases.

Frozen: later changes go into new revisions (see migrations/env.py), never into this file.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import sync.store.schema

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('actions',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('connection', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('customer_id', sa.String(length=200), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('invoice_ids', sa.JSON(), nullable=False),
    sa.Column('step', sa.String(length=200), nullable=True),
    sa.Column('channel', sa.String(length=20), nullable=True),
    sa.Column('template', sa.String(length=200), nullable=True),
    sa.Column('instalment', sa.Integer(), nullable=True),
    sa.Column('charges', sa.JSON(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('ledger_ids', sa.JSON(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('planned_for', sa.Date(), nullable=True),
    sa.Column('created_at', sync.store.schema.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sync.store.schema.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', sync.store.schema.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sync.store.schema.UTCDateTime(timezone=True), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.CheckConstraint("status IN ('planned', 'in_flight', 'done', 'failed', 'superseded', 'uncertain')", name=op.f('ck_actions_status')),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_actions'))
    )
    with op.batch_alter_table('actions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_actions_connection_customer_id'), ['connection', 'customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_actions_connection_status'), ['connection', 'status'], unique=False)

    op.create_table('audit',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', sync.store.schema.UTCDateTime(timezone=True), nullable=False),
    sa.Column('connection', sa.String(length=200), nullable=True),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('event', sa.String(length=100), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit'))
    )
    with op.batch_alter_table('audit', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_connection_at'), ['connection', 'at'], unique=False)

    op.create_table('connections',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('ledger', sa.String(length=20), nullable=True),
    sa.Column('cursor', sa.JSON(), nullable=True),
    sa.Column('cursor_taken_at', sync.store.schema.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_full_pull_at', sync.store.schema.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_sync_at', sync.store.schema.UTCDateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=20), server_default='new', nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sync.store.schema.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_connections'))
    )
    op.create_table('credit_notes',
    sa.Column('connection', sa.String(length=200), nullable=False),
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('number', sa.String(length=100), nullable=False),
    sa.Column('customer_id', sa.String(length=200), nullable=False),
    sa.Column('date', sa.Date(), nullable=False),
    sa.Column('remaining', sync.store.schema.Amount(precision=24, scale=6), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('updated_at', sync.store.schema.UTCDateTime(timezone=True), nullable=True),
    sa.Column('stored_at', sync.store.schema.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('connection', 'id', name=op.f('pk_credit_notes'))
    )
    with op.batch_alter_table('credit_notes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credit_notes_connection_customer_id'), ['connection', 'customer_id'], unique=False)

    op.create_table('customers',
    sa.Column('connection', sa.String(length=200), nullable=False),
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('name', sa.String(length=500), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('updated_at', sync.store.schema.UTCDateTime(timezone=True), nullable=True),
    sa.Column('stored_at', sync.store.schema.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('connection', 'id', name=op.f('pk_customers'))
    )
    op.create_table('disputes',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('connection', sa.String(length=200), nullable=False),
    sa.Column('invoice_id', sa.String(length=200), nullable=False),
    sa.Column('until', sa.Date(), nullable=True),
    sa.Column('reason', sa.Text(), server_default='', nullable=False),
    sa.Column('created_at', sync.store.schema.UTCDateTime(timezone=True), nullable=False),
    sa.Column('cleared_at', sync.store.schema.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_disputes'))
    )
    with op.batch_alter_table('disputes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_disputes_connection_invoice_id'), ['connection', 'invoice_id'], unique=False)

    op.create_table('invoices',
    sa.Column('connection', sa.String(length=200), nullable=False),
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('number', sa.String(length=100), nullable=False),
    sa.Column('customer_id', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('is_open', sa.Boolean(), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('balance', sync.store.schema.Amount(precision=24, scale=6), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('updated_at', sync.store.schema.UTCDateTime(timezone=True), nullable=True),
    sa.Column('stored_at', sync.store.schema.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('connection', 'id', name=op.f('pk_invoices'))
    )
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invoices_connection_customer_id'), ['connection', 'customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_invoices_connection_due_date'), ['connection', 'due_date'], unique=False)
        batch_op.create_index(batch_op.f('ix_invoices_connection_is_open'), ['connection', 'is_open'], unique=False)
        batch_op.create_index(batch_op.f('ix_invoices_connection_number'), ['connection', 'number'], unique=False)

    op.create_table('leases',
    sa.Column('connection', sa.String(length=200), nullable=False),
    sa.Column('holder', sa.String(length=300), nullable=False),
    sa.Column('acquired_at', sync.store.schema.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sync.store.schema.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('connection', name=op.f('pk_leases'))
    )
    op.create_table('pauses',
    sa.Column('connection', sa.String(length=200), nullable=False),
    sa.Column('customer_id', sa.String(length=200), nullable=False),
    sa.Column('until', sa.Date(), nullable=False),
    sa.Column('reason', sa.Text(), server_default='', nullable=False),
    sa.Column('created_at', sync.store.schema.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('connection', 'customer_id', name=op.f('pk_pauses'))
    )
    op.create_table('payment_plans',
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('connection', sa.String(length=200), nullable=False),
    sa.Column('customer_id', sa.String(length=200), nullable=False),
    sa.Column('invoice_ids', sa.JSON(), nullable=False),
    sa.Column('instalments', sa.JSON(), nullable=False),
    sa.Column('acceleration_days', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('created_at', sync.store.schema.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sync.store.schema.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('active', 'completed', 'accelerated', 'cancelled')", name=op.f('ck_payment_plans_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_plans'))
    )
    with op.batch_alter_table('payment_plans', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payment_plans_connection_status'), ['connection', 'status'], unique=False)

    op.create_table('payments',
    sa.Column('connection', sa.String(length=200), nullable=False),
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('customer_id', sa.String(length=200), nullable=False),
    sa.Column('date', sa.Date(), nullable=False),
    sa.Column('amount', sync.store.schema.Amount(precision=24, scale=6), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('updated_at', sync.store.schema.UTCDateTime(timezone=True), nullable=True),
    sa.Column('stored_at', sync.store.schema.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('connection', 'id', name=op.f('pk_payments'))
    )
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payments_connection_customer_id'), ['connection', 'customer_id'], unique=False)

    op.create_table('quarantine',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('connection', sa.String(length=200), nullable=False),
    sa.Column('entity', sa.String(length=20), nullable=False),
    sa.Column('record_id', sa.String(length=200), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('raw', sa.Text(), nullable=False),
    sa.Column('at', sync.store.schema.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quarantine'))
    )
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quarantine_connection_at'), ['connection', 'at'], unique=False)

    op.create_table('tasks',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('connection', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('customer_id', sa.String(length=200), nullable=True),
    sa.Column('invoice_ids', sa.JSON(), nullable=False),
    sa.Column('title', sa.Text(), server_default='', nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('created_at', sync.store.schema.UTCDateTime(timezone=True), nullable=False),
    sa.Column('done_at', sync.store.schema.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('open', 'done')", name=op.f('ck_tasks_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tasks')),
    sa.UniqueConstraint('key', name=op.f('uq_tasks_key'))
    )
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tasks_connection_status'), ['connection', 'status'], unique=False)

    op.create_table('action_invoices',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('invoice_id', sa.String(length=200), nullable=False),
    sa.Column('connection', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['key'], ['actions.key'], name=op.f('fk_action_invoices_key_actions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('key', 'invoice_id', name=op.f('pk_action_invoices'))
    )
    with op.batch_alter_table('action_invoices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_action_invoices_connection_invoice_id'), ['connection', 'invoice_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('action_invoices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_action_invoices_connection_invoice_id'))

    op.drop_table('action_invoices')
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tasks_connection_status'))

    op.drop_table('tasks')
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quarantine_connection_at'))

    op.drop_table('quarantine')
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payments_connection_customer_id'))

    op.drop_table('payments')
    with op.batch_alter_table('payment_plans', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payment_plans_connection_status'))

    op.drop_table('payment_plans')
    op.drop_table('pauses')
    op.drop_table('leases')
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invoices_connection_number'))
        batch_op.drop_index(batch_op.f('ix_invoices_connection_is_open'))
        batch_op.drop_index(batch_op.f('ix_invoices_connection_due_date'))
        batch_op.drop_index(batch_op.f('ix_invoices_connection_customer_id'))

    op.drop_table('invoices')
    with op.batch_alter_table('disputes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_disputes_connection_invoice_id'))

    op.drop_table('disputes')
    op.drop_table('customers')
    with op.batch_alter_table('credit_notes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credit_notes_connection_customer_id'))

    op.drop_table('credit_notes')
    op.drop_table('connections')
    with op.batch_alter_table('audit', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_connection_at'))

    op.drop_table('audit')
    with op.batch_alter_table('actions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_actions_connection_status'))
        batch_op.drop_index(batch_op.f('ix_actions_connection_customer_id'))

    op.drop_table('actions')
