"""The state store: snapshots of the ledgers, the action outbox, disputes/pauses/plans, audit, leases.

store = open_store("sqlite:///relance.sqlite")      # or postgresql+psycopg://user@host/db
with store.lease("acme", holder_name()):
    store.ledger.upsert_records("acme", page)
    with store.transaction():                        # several calls, one transaction
        store.outbox.mark_done(key)
        store.tasks.add("acme", entry)

Repositories: store.ledger, store.connections, store.planning, store.outbox, store.cases,
store.tasks, store.audit, store.quarantine, store.leases (see sync.store.facade).
"""

from sync.store.action_records import ActionRecord
from sync.store.audit import AuditEntry
from sync.store.cases import DisputeRecord, PauseRecord, PaymentPlanRecord
from sync.store.connections import ConnectionRecord
from sync.store.db import StoreError
from sync.store.facade import Store, open_store
from sync.store.leases import LeaseBusy
from sync.store.planning import PlanBatch
from sync.store.schema import ConnectionStatus
from sync.store.tasks import TaskRecord
from sync.store.views import LedgerView

__all__ = [
    "ActionRecord",
    "AuditEntry",
    "ConnectionRecord",
    "ConnectionStatus",
    "DisputeRecord",
    "LeaseBusy",
    "LedgerView",
    "PauseRecord",
    "PaymentPlanRecord",
    "PlanBatch",
    "Store",
    "StoreError",
    "TaskRecord",
    "open_store",
]
