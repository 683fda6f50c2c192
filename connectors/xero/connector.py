"""The Xero connector, through xero-python (AccountingApi over urllib3).

One object per connection, made of parts with one purpose each:
- client.py: the SDK client, limiter, retries and token handling (every call);
- pull.py: full and If-Modified-Since pulls, paged by pageCount;
- writes.py, credit_notes.py (+ keys.py): fee invoices, emails, history notes, credit notes and
  their allocations, under Idempotency-Keys;
- verify.py: whether a write took effect, after an unknown outcome.
The Connector protocol's calls go to them as for every ledger (connectors/connector.py).
"""

from __future__ import annotations

from typing import Unpack

from connectors.base import AccessTokens, Capabilities
from connectors.client import CallSettings
from connectors.connector import LedgerConnector
from connectors.xero.client import LEDGER, PAGE_SIZE, XeroClient
from connectors.xero.credit_notes import XeroCreditNotes
from connectors.xero.pull import XeroPull
from connectors.xero.verify import XeroVerifier
from connectors.xero.writes import XeroWriter

SALES_ACCOUNT_CODE = "200"


class XeroConnector(LedgerConnector):
    """One Xero tenant; `calls`: clock, limiter, retries and timeout (connectors.client.CallSettings)."""

    ledger = LEDGER
    capabilities = Capabilities(
        fee_line_on_invoice=False,  # lines of an approved invoice cannot be changed safely
        fee_invoice=True,
        ledger_email=True,
        ledger_email_idempotent=True,
        notes=True,
        credit_notes=True,
        write_batch_size=50,
    )
    client: XeroClient
    puller: XeroPull
    writer: XeroWriter
    verifier: XeroVerifier

    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        tenant_id: str,
        tokens: AccessTokens,
        history_months: int = 24,
        page_size: int = PAGE_SIZE,
        account_code: str = SALES_ACCOUNT_CODE,
        **calls: Unpack[CallSettings],
    ) -> None:
        self.client = XeroClient(name=name, base_url=base_url, tenant_id=tenant_id, tokens=tokens, **calls)
        self.name = name
        self.tenant_id = tenant_id
        self.history_months = history_months
        self.puller = XeroPull(self.client, page_size=page_size)
        self.credit_notes = XeroCreditNotes(self.client, account_code=account_code)
        self.writer = XeroWriter(
            self.client,
            self.credit_notes,
            account_code=account_code,
            batch_size=self.capabilities.write_batch_size,
        )
        self.verifier = XeroVerifier(self.client)

    def __repr__(self) -> str:
        base_url = self.client.base_url
        return f"XeroConnector(name={self.name!r}, tenant_id={self.tenant_id!r}, base_url={base_url!r})"
