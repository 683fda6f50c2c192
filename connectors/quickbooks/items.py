"""The service Item QuickBooks fee lines need.

QBO refuses sales lines without an Item: fee lines and fee invoices reference the service Item
named `fee_item_name` ("Late fee"), found by query or created once (Type Service, posting to the
first Income account; its requestid is derived from realm and name, so a retried or concurrent
create never makes two), then cached for the connector's life.
"""

from __future__ import annotations

import logging
import threading

from connectors.base import ConnectorError, RejectedByLedger
from connectors.quickbooks.client import QuickBooksClient, dumps, quote
from connectors.quickbooks.keys import item_request_id

log = logging.getLogger("relance.connectors.quickbooks")


class FeeItem:
    def __init__(self, client: QuickBooksClient, name: str) -> None:
        self.client = client
        self.name = name
        self._ref: dict[str, str] | None = None
        self._lock = threading.Lock()

    def ref(self) -> dict[str, str]:
        """ItemRef of the fee Item (found, else created once); cached. Raises ConnectorError."""
        with self._lock:
            if self._ref is None:
                self._ref = self._find_or_create()
            return dict(self._ref)

    def _find_or_create(self) -> dict[str, str]:
        client, name = self.client, self.name
        rows = client.rows("Item", f"SELECT * FROM Item WHERE Name = {quote(name)}", f"find item {name!r}")
        found = next((row for row in rows if row.get("Active", True) is not False), None)
        if found is not None:
            return {"value": str(found.get("Id")), "name": str(found.get("Name") or name)}
        accounts = client.rows(
            "Account",
            "SELECT * FROM Account WHERE AccountType = 'Income' MAXRESULTS 1",
            "find an income account",
        )
        if not accounts:
            raise RejectedByLedger(
                f"no Item named {name!r} and no Income account to create it with",
                connection=client.name,
                call=f"create item {name!r}",
                hint=f"create a service item named {name!r} in QuickBooks (or set fee_item_name)",
            )
        account = accounts[0]
        body = dumps(
            {
                "Name": name,
                "Type": "Service",
                "Description": "Late-payment fees and interest charged by relance",
                "IncomeAccountRef": {"value": str(account.get("Id")), "name": str(account.get("Name") or "")},
            }
        )
        try:
            answer = client.post(
                f"create item {name!r}",
                "item",
                body,
                request_id=item_request_id(client.realm_id, name),
                idempotent=True,  # deterministic requestid: a replay returns the first answer
            )
        except RejectedByLedger as error:
            if "6240" in str(error) or "duplicate name" in str(error).lower():
                # queries list active items only: the name belongs to an inactive item (or another list)
                error.hint = f"make the item {name!r} active in QuickBooks, or set another fee_item_name"
            raise
        item = answer.get("Item") or {}
        if not item.get("Id"):
            raise ConnectorError(
                "QuickBooks answered the item create without an Id",
                connection=client.name,
                call="create item",
            )
        log.info("[%s] created the service item %r (id %s) for fees", client.name, name, item.get("Id"))
        return {"value": str(item["Id"]), "name": str(item.get("Name") or name)}
