"""The state store: snapshots of the ledgers, the action outbox, disputes/pauses/plans, audit, leases.

store = open_store("sqlite:///relance.sqlite")      # or postgresql+psycopg://user@host/db
with store.lease("acme", holder_name()):
    store.upsert_records("acme", page)
    ...
"""

from sync.store.db import StoreError
from sync.store.lease import LeaseBusy
from sync.store.repository import (
    ActionRecord,
    AuditEntry,
    ConnectionRecord,
    DisputeRecord,
    PauseRecord,
    PaymentPlanRecord,
    Store,
    TaskRecord,
    open_store,
)

__all__ = [
    "ActionRecord",
    "AuditEntry",
    "ConnectionRecord",
    "DisputeRecord",
    "LeaseBusy",
    "PauseRecord",
    "PaymentPlanRecord",
    "Store",
    "StoreError",
    "TaskRecord",
    "open_store",
]
