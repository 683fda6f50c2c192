"""A stateful local copy of the QuickBooks Online Accounting API v3 subset relance uses.

Real HTTP (connectors.sandbox.server), real OAuth (Intuit-style discovery document, rotating refresh
tokens), shapes from Intuit's Finance.xsd and recorded real responses: QueryResponse envelopes with
startPosition/maxResults, Fault{Error[{Message, Detail, code}], type}, BatchItemResponse with bId,
CDCResponse[{QueryResponse[...]}], a `time` field on every answer.

Behaviour relance depends on, as QBO documents it:
- `requestid` query parameter: a write repeated with the same requestid returns the first answer
  and has no second effect (per realm). Invoice send has NO such protection: each call sends.
- sparse updates need the current SyncToken; a stale one is Fault 5010 "Stale Object Error".
- query: SELECT * | COUNT(*) FROM Invoice|Payment|Customer|CreditMemo|Attachable|Item|Account, WHERE with
  =, <, >, <=, >=, IN joined by AND (no OR, as in QBO), ORDERBY, STARTPOSITION (1-based),
  MAXRESULTS (default 100, at most 1000).
- CDC: changedSince at most 30 days back, up to 1000 objects per entity, deleted objects as
  {"Id", "status": "Deleted"}.
- batch: at most 30 BatchItemRequest, each processed on its own.
- sales lines (Invoice, CreditMemo) need SalesItemLineDetail.ItemRef naming an existing, active
  Item, or the write is a ValidationFault, as in QBO. The company starts with the Item "Services"
  and one Income account; /item creates more (Type Service needs an existing IncomeAccountRef).

Conventions for what QBO cannot store natively are in connectors/quickbooks/mapping.py.

Modules, one purpose each (QuickBooksSandbox in `sandbox` owns one of each and wires them):
- state: the company's records in memory, seeding, truth() and the state file;
- query: the query language and CDC (query rows cached for paging);
- create: what creating each entity does (validation, balances);
- writes: update / delete / void / send / batch and their effects;
- routes: the route table, the wrapper of every API call (realm, requestid replay, Faults) and the
  answers to injected faults;
- errors: QBO's Fault answers.
Constants read at call time (CDC_LIMIT, BATCH_LIMIT...) live in their module: patch them there.
"""

from connectors.sandbox.quickbooks.create import ITEM_TYPES
from connectors.sandbox.quickbooks.errors import QboFault
from connectors.sandbox.quickbooks.query import (
    CDC_LIMIT,
    CDC_WINDOW,
    DEFAULT_MAX_RESULTS,
    MAX_RESULTS,
    QUERY_CACHE_SIZE,
    Condition,
    ParsedQuery,
)
from connectors.sandbox.quickbooks.routes import (
    API_PREFIX,
    AUTHORIZE_PATH,
    DISCOVERY_PATH,
    REVOKE_PATH,
    SCOPE,
    TOKEN_PATH,
    USERINFO_PATH,
)
from connectors.sandbox.quickbooks.sandbox import QuickBooksSandbox
from connectors.sandbox.quickbooks.state import DEFAULT_REALM_ID, ENTITY_NAMES, WRITABLE
from connectors.sandbox.quickbooks.writes import BATCH_LIMIT

__all__ = [
    "API_PREFIX",
    "AUTHORIZE_PATH",
    "BATCH_LIMIT",
    "CDC_LIMIT",
    "CDC_WINDOW",
    "DEFAULT_MAX_RESULTS",
    "DEFAULT_REALM_ID",
    "DISCOVERY_PATH",
    "ENTITY_NAMES",
    "ITEM_TYPES",
    "MAX_RESULTS",
    "QUERY_CACHE_SIZE",
    "REVOKE_PATH",
    "SCOPE",
    "TOKEN_PATH",
    "USERINFO_PATH",
    "WRITABLE",
    "Condition",
    "ParsedQuery",
    "QboFault",
    "QuickBooksSandbox",
]
