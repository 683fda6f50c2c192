"""Read-only mappings over the store that load on demand: what a plan batch knows (`BatchLookup`)
and a connection's ledger in the LedgerSnapshot's shape (`LedgerView` of `LazyRecords`).

Pure Python over callables: no SQL here (the ledger and planning repositories supply the loaders).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from policies.model.ledger import CreditNote, Customer, Invoice, Payment


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


V = TypeVar("V")
R = TypeVar("R", bound=_HasId)
_MISSING: Any = object()


class _LoadingMapping(Mapping[str, V]):
    """A mapping whose lookups all go through `get` (which may load): [] and `in` follow it."""

    __slots__ = ()

    def get(self, key: str, default: Any = None) -> Any:
        raise NotImplementedError

    def __getitem__(self, key: str) -> V:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key, _MISSING) is not _MISSING


class BatchLookup(_LoadingMapping[V]):
    """What one plan batch knows, by id (customer or invoice): complete for the ids in `scope`
    (absent = nothing), any other id is loaded on demand and remembered. Values are never None.

    Always truthy, so `mapping or {}` keeps it (its misses would otherwise be lost)."""

    __slots__ = ("_load", "_scope", "_values")

    def __init__(self, values: dict[str, V], scope: set[str], load: Callable[[str], V | None]) -> None:
        self._values = values
        self._scope = scope
        self._load = load

    def get(self, key: str, default: Any = None) -> Any:
        value = self._values.get(key)
        if value is not None:
            return value
        if key in self._scope:
            return default
        loaded = self._load(key)
        self._scope.add(key)
        if loaded is None:
            return default
        self._values[key] = loaded
        return loaded


    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __bool__(self) -> bool:
        return True


class _Streamed(Generic[V]):
    """An iterable that queries afresh each time it is iterated."""

    __slots__ = ("_make",)

    def __init__(self, make: Callable[[], Iterator[V]]) -> None:
        self._make = make

    def __iter__(self) -> Iterator[V]:
        return self._make()


class LazyRecords(_LoadingMapping[R]):
    """Records by id from the store on demand, with an LRU cache; iteration streams by pages."""

    def __init__(
        self,
        fetch: Callable[[str], R | None],
        stream: Callable[[], Iterator[R]],
        count: Callable[[], int],
        size: int,
    ) -> None:
        self._fetch = fetch
        self._stream = stream
        self._count = count
        self._size = max(1, size)
        self._cache: OrderedDict[str, R | None] = OrderedDict()

    def get(self, key: str, default: Any = None) -> Any:
        cache = self._cache
        if key in cache:
            cache.move_to_end(key)
            value = cache[key]
        else:
            value = self._fetch(key)
            cache[key] = value
            if len(cache) > self._size:
                cache.popitem(last=False)
        return default if value is None else value


    def __iter__(self) -> Iterator[str]:
        return (record.id for record in self._stream())

    def __len__(self) -> int:
        return self._count()

    def values(self) -> _Streamed[R]:  # type: ignore[override]
        return _Streamed(self._stream)

    def items(self) -> _Streamed[tuple[str, R]]:  # type: ignore[override]
        return _Streamed(lambda: ((record.id, record) for record in self._stream()))


@dataclass(frozen=True, slots=True)
class LedgerView:
    """A connection's ledger in the LedgerSnapshot's shape (customers, invoices, payments,
    credit_notes mappings), read from the store on demand instead of held in memory."""

    customers: LazyRecords[Customer]
    invoices: LazyRecords[Invoice]
    payments: LazyRecords[Payment]
    credit_notes: LazyRecords[CreditNote]
