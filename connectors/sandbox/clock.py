"""The sandboxes' idea of now: real time shifted by whole days, so tests can travel in time."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta


class SandboxClock:
    """The sandbox's idea of now: real time shifted by a whole number of days (time travel)."""

    def __init__(self, today: date | None = None) -> None:
        self._lock = threading.Lock()
        self._offset = timedelta(0)
        if today is not None:
            self.set_today(today)

    def now(self) -> datetime:
        with self._lock:
            offset = self._offset
        return datetime.now(UTC) + offset

    def today(self) -> date:
        return self.now().date()

    def set_today(self, day: date) -> None:
        with self._lock:
            self._offset = timedelta(days=(day - datetime.now(UTC).date()).days)

    def advance(self, days: int) -> None:
        with self._lock:
            self._offset += timedelta(days=days)

    def seconds_to_next_day(self) -> int:
        """Whole seconds until midnight UTC by this clock (at least 1): a day limit's Retry-After."""
        now = self.now()
        tomorrow = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
        return max(1, int((tomorrow - now).total_seconds()))
