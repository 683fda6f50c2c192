"""QuickBooks pulls: paged queries for a full pull, change data capture (CDC) for an incremental one.

Call counts (benchmarks, contract tests):
- full pull: five paged queries (active customers; open invoices dated before history_from;
  invoices, payments, credit memos dated from history_from), each `rows // 1000 + 1` calls (the last
  page is the first one shorter than 1000 rows, possibly empty): `full_pull_list_calls`;
- incremental pull: one CDC call (a full pull instead when the cursor is older than CDC's 30-day
  window). An entity that reaches CDC's 1000-object limit is read again by a paged query on
  MetaData.LastUpdatedTime (`rows // 1000 + 1` calls); its deletions still come from the CDC answer.
"""

from __future__ import annotations

import calendar
import logging
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from connectors.base import Cursor, Entity, Page, PullMode, RejectedByLedger
from connectors.quickbooks import mapping
from connectors.quickbooks.client import LEDGER, PAGE_SIZE, QuickBooksClient, Row, quote
from connectors.streams import Bookmark, PageStream

CDC_WINDOW = timedelta(days=30)
CDC_SAFETY = timedelta(hours=1)  # fall back to a full pull a little before CDC's window closes
CDC_LIMIT = 1000  # objects per entity in one CDC answer; at the limit, changes may be missing
CURSOR_OVERLAP = timedelta(seconds=60)

BOOKMARK = Bookmark(
    LEDGER, "changed_since", CURSOR_OVERLAP, write=mapping.format_datetime, read=mapping.parse_datetime
)

log = logging.getLogger("relance.connectors.quickbooks")


def full_pull_list_calls(rows_per_query: Sequence[int]) -> int:
    """Query calls of a full pull, given the rows each of its five queries returns (see module doc)."""
    return sum(rows // PAGE_SIZE + 1 for rows in rows_per_query)


def months_before(day: date, months: int) -> date:
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def full_pull_plan(history_from: date) -> tuple[tuple[Entity, str, str], ...]:
    """(neutral entity, QBO entity, WHERE) of each query of a full pull, in order."""
    since = quote(history_from.isoformat())
    return (
        ("customer", "Customer", "Active = true"),
        ("invoice", "Invoice", f"Balance > '0' AND TxnDate < {since}"),  # old but still open
        ("invoice", "Invoice", f"TxnDate >= {since}"),
        ("payment", "Payment", f"TxnDate >= {since}"),
        ("credit_note", "CreditMemo", f"TxnDate >= {since}"),
    )


def _page(entity: Entity, rows: list[Row], deleted: tuple[str, ...] = ()) -> Page:
    records, quarantined = mapping.map_records(entity, rows)
    return Page(entity, tuple(records), deleted_ids=deleted, quarantined=tuple(quarantined))


def _is_deleted(row: object) -> bool:
    return isinstance(row, dict) and row.get("status") == "Deleted"


class QuickBooksPull:
    """Pages in order customers, invoices, payments, credit notes; cursor after exhaustion."""

    def __init__(self, client: QuickBooksClient, *, history_months: int) -> None:
        self.client = client
        self.history_months = history_months

    def pull(self, cursor: Cursor | None, *, history_from: date | None = None) -> PageStream:
        client = self.client
        day = (
            history_from
            if history_from is not None
            else months_before(client.now().date(), self.history_months)
        )
        if cursor is not None and cursor.ledger == LEDGER:
            changed_since = BOOKMARK.since(cursor)
            if changed_since is not None and changed_since > client.now() - CDC_WINDOW + CDC_SAFETY:
                return self._stream(
                    PullMode.INCREMENTAL,
                    lambda: self._incremental_pages(changed_since),
                    day,
                    fallback=lambda: self._full_pages(day),  # when CDC refuses the window
                )
            log.info("[%s] cursor older than CDC's 30-day window: full pull", client.name)
        return self._stream(PullMode.FULL, lambda: self._full_pages(day), day)

    def _stream(
        self,
        mode: PullMode,
        pages: Callable[[], Iterator[Page] | None],
        history_from: date,
        fallback: Callable[[], Iterator[Page]] | None = None,
    ) -> PageStream:
        def start() -> Iterator[Page] | None:
            self.client.start_pull()  # the cursor is taken at this pull's first answer
            return pages()

        return PageStream(
            mode,
            start,
            bookmark=BOOKMARK,
            history_from=history_from,
            taken_at=lambda: self.client.pull_started_at or self.client.now(),
            fallback=fallback,
        )

    def _paged(self, entity: str, where: str) -> Iterator[list[Row]]:
        start = 1
        page_number = 1
        while True:
            select = (
                f"SELECT * FROM {entity}{' WHERE ' + where if where else ''} ORDERBY Id "
                f"STARTPOSITION {start} MAXRESULTS {PAGE_SIZE}"
            )
            rows = self.client.rows(entity, select, f"query {entity} page {page_number}")
            if rows:
                yield rows
            if len(rows) < PAGE_SIZE:
                return
            start += PAGE_SIZE
            page_number += 1

    def _full_pages(self, history_from: date) -> Iterator[Page]:
        for neutral, entity, where in full_pull_plan(history_from):
            for rows in self._paged(entity, where):
                yield _page(neutral, rows)

    def _incremental_pages(self, changed_since: datetime) -> Iterator[Page] | None:
        """One CDC call (made now); None when CDC refuses the window and a full pull is needed.

        An entity whose CDC answer reaches the 1000-object limit may be missing changes: its live
        records are read by a paged query on MetaData.LastUpdatedTime instead (ceil(changes / 1000)
        calls rather than a full pull). The query pages ORDERBY Id: a record changed while we page
        keeps its position (ordering by LastUpdatedTime would move it to the end and shift an
        unread record onto a page already read). Its deletions come from the CDC answer only: QBO
        offers no other way to list deleted objects (a full pull does not see them either)."""
        client = self.client
        entities = ",".join(mapping.QBO_ENTITY.values())
        stamp = mapping.format_datetime(changed_since)
        try:
            answer: dict[str, Any] = client.call(
                "change data capture",
                lambda qb: qb.change_data_capture(entities, stamp),
                idempotent=True,
            )
        except RejectedByLedger as error:
            if "changedsince" in str(error).lower():
                log.info("[%s] QuickBooks refused changedSince (%s): full pull", client.name, stamp)
                return None
            raise
        groups: dict[str, list[Row]] = {}
        for block in answer.get("CDCResponse") or []:
            for response in block.get("QueryResponse") or []:
                for entity, rows in response.items():
                    if isinstance(rows, list):
                        groups.setdefault(entity, []).extend(rows)
        overflowing = {entity for entity, rows in groups.items() if len(rows) >= CDC_LIMIT}
        if overflowing:
            log.info(
                "[%s] CDC answer at its 1000-object limit for %s: paged query on LastUpdatedTime",
                client.name,
                ", ".join(sorted(overflowing)),
            )
        return self._changed_pages(groups, overflowing, stamp)

    def _changed_pages(
        self, groups: dict[str, list[Row]], overflowing: set[str], stamp: str
    ) -> Iterator[Page]:
        for neutral, entity in mapping.QBO_ENTITY.items():
            rows = groups.get(entity, [])
            deleted = tuple(str(r.get("Id")) for r in rows if _is_deleted(r))
            if entity in overflowing:
                if deleted:
                    yield Page(neutral, (), deleted_ids=deleted)
                where = f"MetaData.LastUpdatedTime >= {quote(stamp)}"
                for page_rows in self._paged(entity, where):
                    yield _page(neutral, page_rows)
                continue
            live = [r for r in rows if not _is_deleted(r)]
            page = _page(neutral, live, deleted)
            if page.records or deleted or page.quarantined:
                yield page
