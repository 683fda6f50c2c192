"""A local, stateful copy of the Xero Accounting API (the subset relance uses), over real HTTP.

Shapes follow Xero's official OpenAPI spec (xero_accounting.yaml): `{"Invoices": [...],
"pagination": {...}}` envelopes, MS-JSON dates ("/Date(1700000000000+0000)/"), UpdatedDateUTC,
Xero-tenant-id required (403 otherwise), 400 ValidationException with Elements[].ValidationErrors,
404, 429 with Retry-After and X-Rate-Limit-Problem (minute | day), and the rate headers
X-MinLimit-Remaining / X-DayLimit-Remaining / X-AppMinLimit-Remaining on every API answer.

Writes honour the Idempotency-Key header: the same key on the same endpoint replays the stored
response and has no second effect. Effects (emails, notes, fee invoices, credit notes) are recorded
for exactly-once tests.

Contacts carry relance's kind / language / tags as contact groups (see connectors/xero/mapping.py).
Ids are UUIDs derived from the generator's ids (uuid5), so a seed always gives the same company.

Modules, one purpose each (XeroSandbox in `sandbox` owns one of each and wires them):
- records: the dataclasses the organisation is made of;
- state: the records in memory, derived amounts, seeding, truth() and the state file;
- query: the `where` / `order` language and the cached rows of list requests;
- render: records to Xero JSON;
- writes: the write endpoints and Idempotency-Key replays;
- limits: minute / app / day rate limits, their headers and the injected faults' answers;
- routes: the route table, the checks around every API call, reads and paging;
- errors: Xero's error answers.
"""

from connectors.sandbox.xero.errors import XeroValidation, validation_response
from connectors.sandbox.xero.query import LIST_CACHE_SIZE, WhereError, compile_where
from connectors.sandbox.xero.records import XContact, XCreditNote, XHistory, XInvoice, XPayment
from connectors.sandbox.xero.render import BANK_ACCOUNT, SALES_ACCOUNT
from connectors.sandbox.xero.routes import API_PREFIX, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from connectors.sandbox.xero.sandbox import XeroSandbox
from connectors.sandbox.xero.state import DEFAULT_TENANT_ID, vars_of_effect

__all__ = [
    "API_PREFIX",
    "BANK_ACCOUNT",
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_TENANT_ID",
    "LIST_CACHE_SIZE",
    "MAX_PAGE_SIZE",
    "SALES_ACCOUNT",
    "WhereError",
    "XContact",
    "XCreditNote",
    "XHistory",
    "XInvoice",
    "XPayment",
    "XeroSandbox",
    "XeroValidation",
    "compile_where",
    "validation_response",
    "vars_of_effect",
]
