"""The one pull stream every ledger uses: pages in order, then the cursor to resume from.

A ledger describes its bookmark as data (singer-sdk style): which key of Cursor.data holds the
moment the pull started, how much to step back from it (clock skew, writes in flight), and the
scope a cursor belongs to (a cursor of another tenant is not resumed). It hands PageStream the
pages of the mode it chose, and how to tell when the pull started (preferably on the ledger's
clock); PageStream does the rest the same way for every ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from connectors.base import Cursor, Page, PullMode


def read_iso_datetime(value: object) -> datetime | None:
    """An ISO-8601 timestamp as an aware datetime (naive: UTC); None when absent or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def write_iso_datetime(moment: datetime) -> str:
    return moment.isoformat()


@dataclass(frozen=True, slots=True)
class Bookmark:
    """How one ledger writes and reads its cursors."""

    ledger: str
    key: str  # the entry of Cursor.data holding the moment changes are read from next time
    overlap: timedelta  # stepped back from the pull's start
    scope: Mapping[str, str] = field(default_factory=dict)  # e.g. {"tenant_id": ...}
    write: Callable[[datetime], str] = write_iso_datetime
    read: Callable[[object], datetime | None] = read_iso_datetime

    def since(self, cursor: Cursor | None) -> datetime | None:
        """The moment to read changes from, or None: no cursor, another ledger's or scope's, or
        unreadable (then the ledger pulls in full)."""
        if cursor is None or cursor.ledger != self.ledger:
            return None
        data = cursor.data or {}
        if any(data.get(key) not in (None, value) for key, value in self.scope.items()):
            return None
        return self.read(data.get(self.key))

    def cursor(self, taken_at: datetime, history_from: date) -> Cursor:
        data = {
            self.key: self.write(taken_at - self.overlap),
            **self.scope,
            "history_from": history_from.isoformat(),
        }
        return Cursor(self.ledger, data, taken_at)


class PageStream:
    """One pull (connectors.base.PullStream): iterate once for the pages, then read `cursor`.

    `pages()` is called when iteration starts; it returns None when the ledger refuses the
    incremental window (QBO's CDC), and the stream then reads `fallback()` in full mode instead.
    `taken_at()` is read once the pages are exhausted: when the pull started."""

    def __init__(
        self,
        mode: PullMode,
        pages: Callable[[], Iterator[Page] | None],
        *,
        bookmark: Bookmark,
        history_from: date,
        taken_at: Callable[[], datetime],
        fallback: Callable[[], Iterator[Page]] | None = None,
    ) -> None:
        self.mode = mode
        self.history_from = history_from
        self._pages = pages
        self._fallback = fallback
        self._bookmark = bookmark
        self._taken_at = taken_at
        self._cursor: Cursor | None = None
        self._started = False

    def __iter__(self) -> Iterator[Page]:
        if self._started:
            raise RuntimeError("a pull stream can be iterated once")
        self._started = True
        pages = self._pages()
        if pages is None:
            if self._fallback is None:
                raise RuntimeError("the ledger refused the incremental pull and no full pull was given")
            self.mode = PullMode.FULL
            pages = self._fallback()
        yield from pages
        self._cursor = self._bookmark.cursor(self._taken_at(), self.history_from)

    @property
    def cursor(self) -> Cursor:
        if self._cursor is None:
            raise RuntimeError("read the cursor after iterating over every page")
        return self._cursor
