"""Linear paging for the sandboxes' list answers: the filtered, ordered rows of one request shape
(the request without its paging parameters) are computed once per state version and reused by
every page, so page N of a big pull costs O(page), not O(rows).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

Row = TypeVar("Row")


class RowCache:
    """The last `size` row lists, by request shape, each valid for one state version (LRU).
    One cache serves every entity of a ledger (the key names the entity)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._rows: OrderedDict[Hashable, tuple[int, list[Any]]] = OrderedDict()

    def rows(self, key: Hashable, version: int, compute: Callable[[], list[Row]]) -> list[Row]:
        """The rows cached under `key` for `version`, else `compute()`'s (then cached)."""
        cached = self._rows.get(key)
        if cached is not None and cached[0] == version:
            self._rows.move_to_end(key)
            return cached[1]
        rows = compute()
        self._rows[key] = (version, rows)
        self._rows.move_to_end(key)
        while len(self._rows) > self.size:
            self._rows.popitem(last=False)
        return rows

    def clear(self) -> None:
        self._rows.clear()

    def __len__(self) -> int:
        return len(self._rows)
