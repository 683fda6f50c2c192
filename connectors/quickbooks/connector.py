"""The QuickBooks Online connector: python-quickbooks over HTTP, within QBO's limits.

One object per connection, made of four parts with one purpose each:
- client.py: the SDK client, HTTP session, limiter, retries and token handling (every call);
- pull.py: full pulls by paged queries, incremental ones by change data capture;
- writes.py (+ items.py, keys.py): fee lines, fee invoices, notes, credit memos, invoice send,
  batched under requestids, each carrying its action key;
- verify.py: whether a write took effect, after an unknown outcome.
The Connector protocol's calls go to them as for every ledger (connectors/connector.py).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any, Unpack

from connectors.base import AccessTokens, Capabilities, ConnectorError, Cursor
from connectors.client import CallSettings
from connectors.connector import LedgerConnector
from connectors.quickbooks.client import BATCH_SIZE, LEDGER, MINOR_VERSION, QuickBooksClient
from connectors.quickbooks.items import FeeItem
from connectors.quickbooks.pull import QuickBooksPull
from connectors.quickbooks.verify import QuickBooksVerifier
from connectors.quickbooks.writes import QuickBooksWriter
from connectors.streams import PageStream


class QuickBooksConnector(LedgerConnector):
    """One QBO realm; `calls`: clock, limiter, retries and timeout (connectors.client.CallSettings)."""

    ledger = LEDGER
    capabilities = Capabilities(
        fee_line_on_invoice=True,
        fee_invoice=True,
        ledger_email=True,
        ledger_email_idempotent=False,  # invoice send has no requestid protection: verify first
        notes=True,
        credit_notes=True,
        write_batch_size=BATCH_SIZE,
    )
    client: QuickBooksClient
    puller: QuickBooksPull
    writer: QuickBooksWriter
    verifier: QuickBooksVerifier

    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        realm_id: str,
        tokens: AccessTokens,
        minor_version: int = MINOR_VERSION,
        history_months: int = 24,
        fee_mode: str = "line",
        fee_item_name: str = "Late fee",
        **calls: Unpack[CallSettings],
    ) -> None:
        if fee_mode not in ("line", "invoice"):
            raise ConnectorError(
                f"fee_mode must be 'line' or 'invoice', not {fee_mode!r}", connection=name, call="config"
            )
        self.client = QuickBooksClient(
            name=name,
            base_url=base_url,
            realm_id=realm_id,
            tokens=tokens,
            minor_version=minor_version,
            **calls,
        )
        self.name = name
        self.realm_id = self.client.realm_id
        self.fee_mode = fee_mode
        self.fee_item = FeeItem(self.client, fee_item_name)
        self.puller = QuickBooksPull(self.client, history_months=history_months)
        self.writer = QuickBooksWriter(self.client, self.fee_item, fee_mode=fee_mode)
        self.verifier = QuickBooksVerifier(self.client)
        if fee_mode == "invoice":
            self.capabilities = replace(QuickBooksConnector.capabilities, fee_line_on_invoice=False)

    # ------------------------------------------------------------ the Connector protocol

    def pull(self, cursor: Cursor | None, *, history_from: date | None = None) -> PageStream:
        """history_from None: `history_months` before the client's today."""
        return self.puller.pull(cursor, history_from=history_from)

    # ------------------------------------------------------------ reads on the client

    def query(self, select: str, describe: str | None = None) -> dict[str, Any]:
        return self.client.query(select, describe)

    def fee_item_ref(self) -> dict[str, str]:
        """ItemRef of the fee Item (found, else created once); cached. Raises ConnectorError."""
        return self.fee_item.ref()
