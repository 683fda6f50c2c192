"""Xero pulls. Full = Contacts (active), Invoices (ACCREC, open or dated >= history_from), Payments
and CreditNotes dated >= history_from, pageSize 1000. Incremental = If-Modified-Since on Contacts
(incl. archived), Invoices and Payments: 3 calls when nothing changed; CreditNotes are read only
when a changed invoice carries credit-note allocations (an unallocated credit note changes no
invoice; the next full pull brings it).

Call counts (benchmarks, contract tests): a full pull makes `max(1, ceil(rows / 1000))` GETs per
entity (Xero's pagination.pageCount ends the paging, so no trailing empty page):
`full_pull_list_calls`. A no-change incremental pull makes 3 (Contacts, Invoices, Payments).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from connectors.base import ConnectorError, Cursor, Entity, Page, PullMode
from connectors.streams import Bookmark, PageStream
from connectors.xero import mapping
from connectors.xero.client import LEDGER, PAGE_SIZE, XeroClient

CURSOR_OVERLAP = timedelta(minutes=5)  # clock skew and in-flight writes at the cursor's edge

ENVELOPES: dict[Entity, str] = {
    "customer": "Contacts",
    "invoice": "Invoices",
    "payment": "Payments",
    "credit_note": "CreditNotes",
}


def full_pull_list_calls(rows_per_entity: Sequence[int], page_size: int = PAGE_SIZE) -> int:
    """List calls of a full pull, given the rows pulled per entity (see module doc)."""
    return sum(max(1, -(-rows // page_size)) for rows in rows_per_entity)


def _datetime_literal(day: date) -> str:
    return f"DateTime({day.year},{day.month:02d},{day.day:02d})"


@dataclass(frozen=True, slots=True)
class Listing:
    """One entity's list call of a pull: the SDK's keyword arguments (where, If-Modified-Since...)."""

    entity: Entity
    params: dict[str, Any] = field(default_factory=dict)


def full_pull_plan(history_from: date) -> tuple[Listing, ...]:
    since_day = _datetime_literal(history_from)
    return (
        Listing("customer"),
        Listing("invoice", {"where": f'Type=="ACCREC" AND (Status=="AUTHORISED" OR Date>={since_day})'}),
        Listing("payment", {"where": f'PaymentType=="ACCRECPAYMENT" AND Date>={since_day}'}),
        Listing("credit_note", {"where": f'Type=="ACCRECCREDIT" AND Date>={since_day}'}),
    )


def incremental_plan(since: datetime) -> tuple[Listing, Listing, Listing, Listing]:
    """Contacts, Invoices, Payments, then CreditNotes (read only when an invoice carries some)."""
    # Xero reads a zone-less If-Modified-Since as UTC.
    header_since = since.astimezone(UTC).replace(tzinfo=None, microsecond=0)
    return (
        Listing("customer", {"if_modified_since": header_since, "include_archived": True}),
        Listing("invoice", {"if_modified_since": header_since, "where": 'Type=="ACCREC"'}),
        Listing("payment", {"if_modified_since": header_since, "where": 'PaymentType=="ACCRECPAYMENT"'}),
        Listing("credit_note", {"if_modified_since": header_since, "where": 'Type=="ACCRECCREDIT"'}),
    )


class XeroPull:
    def __init__(self, client: XeroClient, *, page_size: int = PAGE_SIZE) -> None:
        self.client = client
        self.page_size = max(1, min(PAGE_SIZE, page_size))

    def bookmark(self) -> Bookmark:
        """Cursors belong to one tenant: another tenant's cursor means a full pull."""
        return Bookmark(LEDGER, "modified_since", CURSOR_OVERLAP, scope={"tenant_id": self.client.tenant_id})

    def pull(self, cursor: Cursor | None, *, history_from: date) -> PageStream:
        client = self.client
        local_start = client.now()
        bookmark = self.bookmark()
        since = bookmark.since(cursor)
        client.start_pull()
        pages: Callable[[], Iterator[Page]]
        if since is None:
            mode, pages = PullMode.FULL, lambda: self._full_pages(history_from)
        else:
            mode, pages = PullMode.INCREMENTAL, lambda: self._incremental_pages(since)
        # Xero's own clock (DateTimeUTC of the first answer) when it sent one: the cursor is
        # compared with UpdatedDateUTC, which Xero stamps; the overlap covers in-flight writes.
        return PageStream(
            mode,
            pages,
            bookmark=bookmark,
            history_from=history_from,
            taken_at=lambda: client.pull_started_at or local_start,
        )

    def _full_pages(self, history_from: date) -> Iterator[Page]:
        for listing in full_pull_plan(history_from):
            yield from self._entity_pages(listing)

    def _incremental_pages(self, since: datetime) -> Iterator[Page]:
        contacts, invoices, payments, credit_notes = incremental_plan(since)
        yield from self._entity_pages(contacts)
        allocated: set[str] = set()
        yield from self._entity_pages(invoices, collect_credit_notes=allocated)
        yield from self._entity_pages(payments)
        if allocated:
            yield from self._entity_pages(credit_notes)

    def _fetcher(self, entity: Entity) -> Callable[..., Any]:
        api = self.client.api
        fetchers: dict[Entity, Callable[..., Any]] = {
            "customer": api.get_contacts,
            "invoice": api.get_invoices,
            "payment": api.get_payments,
            "credit_note": api.get_credit_notes,
        }
        return fetchers[entity]

    def _entity_pages(
        self, listing: Listing, *, collect_credit_notes: set[str] | None = None
    ) -> Iterator[Page]:
        client = self.client
        entity = listing.entity
        fetch = self._fetcher(entity)
        envelope = ENVELOPES[entity]
        page_number = 1
        while True:
            call = f"GET {envelope} page {page_number}"

            def invoke(page: int = page_number) -> Any:
                return fetch(
                    client.tenant_id,
                    page=page,
                    page_size=self.page_size,
                    **listing.params,
                    **client.options(),
                )

            data = client.json(call, invoke)
            if client.pull_started_at is None and isinstance(data, dict) and data.get("DateTimeUTC"):
                with contextlib.suppress(ValueError):
                    client.pull_started_at = mapping.parse_datetime(data["DateTimeUTC"])
            rows = data.get(envelope) if isinstance(data, dict) else None
            if not isinstance(rows, list):
                raise ConnectorError(
                    f"Xero answered without a {envelope} list",
                    connection=client.name,
                    call=call,
                    hint="check that base_url points at the Xero Accounting API",
                )
            if collect_credit_notes is not None:
                collect_credit_notes.update(mapping.embedded_credit_note_ids(rows))
            records, deleted, quarantined = mapping.map_records(entity, rows)
            if records or deleted or quarantined:
                yield Page(entity, tuple(records), tuple(deleted), tuple(quarantined))
            pagination = data.get("pagination") if isinstance(data, dict) else None
            page_count = pagination.get("pageCount") if isinstance(pagination, dict) else None
            if isinstance(page_count, int):
                if page_number >= page_count:
                    return
            elif len(rows) < self.page_size:
                return
            page_number += 1
