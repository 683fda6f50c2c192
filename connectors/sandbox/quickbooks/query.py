"""QBO's query language and change data capture, as the sandbox serves them:

- query: SELECT * | COUNT(*) FROM Invoice|Payment|Customer|CreditMemo|Attachable|Item|Account, WHERE
  with =, <, >, <=, >=, IN joined by AND (no OR, as in QBO), ORDERBY, STARTPOSITION (1-based),
  MAXRESULTS (default 100, at most 1000). The matching rows of a query are computed once per state
  version and query shape (paging clauses aside), see connectors.sandbox.paging.
- CDC: changedSince at most 30 days back, up to 1000 objects per entity, deleted objects as
  {"Id", "status": "Deleted"}.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from connectors.quickbooks import mapping
from connectors.sandbox.messages import JsonObject
from connectors.sandbox.paging import RowCache
from connectors.sandbox.quickbooks.errors import QboFault, invalid_context, query_error
from connectors.sandbox.quickbooks.state import ENTITY_NAMES, URL_ENTITY, QboRecord, QboState

MAX_RESULTS = 1000
DEFAULT_MAX_RESULTS = 100
CDC_WINDOW = timedelta(days=30)
CDC_LIMIT = 1000
QUERY_CACHE_SIZE = 16  # filtered+sorted row lists kept for paging (one per query shape)


_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.|'')*')|(?P<op>>=|<=|!=|<>|=|<|>)|(?P<punct>[(),*])"
    r"|(?P<num>-?\d+(?:\.\d+)?)(?![\w.])|(?P<word>[A-Za-z_][\w.]*))"
)


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    text = text.rstrip().rstrip(";")
    while position < len(text):
        if text[position:].strip() == "":
            break
        found = _TOKEN.match(text, position)
        if not found or found.end() == position:
            raise query_error(
                f"Encountered unexpected text at position {position}: {text[position : position + 20]!r}"
            )
        kind = found.lastgroup or ""
        value = found.group(kind)
        if kind == "str":
            value = value[1:-1].replace("''", "'").replace("\\'", "'")
        tokens.append((kind, value))
        position = found.end()
    return tokens


def _field_values(record: Any, path: str) -> list[Any]:
    """Values at a dotted path; lists fan out (AttachableRef.EntityRef.value), refs give .value."""
    values: list[Any] = [record]
    for part in path.split("."):
        found: list[Any] = []
        for value in values:
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, dict):
                    hit = next((v for k, v in item.items() if k.lower() == part.lower()), None)
                    if hit is not None:
                        found.append(hit)
        values = found
    flat: list[Any] = []
    for value in values:
        for item in value if isinstance(value, list) else [value]:
            flat.append(item["value"] if isinstance(item, dict) and "value" in item else item)  # CustomerRef
    return flat


def _field_value(record: QboRecord, path: str) -> Any:
    values = _field_values(record, path)
    return values[0] if values else None


def _typed(path: str, actual: Any, literal: str) -> tuple[Any, Any] | None:
    """(actual, literal) converted to comparable values of the same type; None if not comparable."""
    if actual is None:
        return None
    if isinstance(actual, bool):
        return actual, literal.strip().lower() == "true"
    if isinstance(actual, Decimal | int | float) and not isinstance(actual, bool):
        try:
            return Decimal(str(actual)), Decimal(literal)
        except ArithmeticError:
            raise query_error(f"{path} needs a number, got {literal!r}") from None
    text = str(actual)
    if path.split(".")[-1].lower() == "id" and text.isdigit() and literal.isdigit():
        return int(text), int(literal)
    if path.lower().endswith("time"):
        left, right = mapping.parse_datetime(text), mapping.parse_datetime(literal)
        if left is None or right is None:
            raise query_error(f"{path} needs a date-time, got {literal!r}")
        return left, right
    return text, literal


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<>": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
}

Condition = Callable[[QboRecord], bool]


def _condition(path: str, op: str, literals: list[str]) -> Condition:
    compare = _OPS["="] if op == "IN" else _OPS[op]

    def test(record: QboRecord) -> bool:
        for actual in _field_values(record, path):
            for literal in literals:
                pair = _typed(path, actual, literal)
                if pair is not None and compare(*pair):
                    return True
        return False

    return test


class ParsedQuery:
    """One query's entity, conditions, order and paging; `shape` is the query without paging."""

    def __init__(self, text: str) -> None:
        tokens = _tokenize(text)
        self.position = 0
        self.tokens = tokens
        self._keyword("SELECT")
        if self._peek_word() == "COUNT":
            self._next()
            for expected in ("(", "*", ")"):
                self._punct(expected)
            self.count = True
        else:
            self._punct("*")
            self.count = False
        self._keyword("FROM")
        name = self._next()[1]
        entity = next((e for e in ENTITY_NAMES if e.lower() == name.lower()), None)
        if entity is None:
            raise invalid_context(name)
        self.entity = entity
        self.conditions: list[Condition] = []
        self.order: list[tuple[str, bool]] = []
        self.start = 1
        self.max_results = DEFAULT_MAX_RESULTS
        # The query without its paging clauses: pages of one query share its filtered, sorted rows.
        shape: list[tuple[str, str]] = [("word", entity)]
        while self.position < len(tokens):
            word = self._peek_word()
            if word == "WHERE":
                begin = self.position
                self._next()
                self._where()
                shape.extend(self.tokens[begin : self.position])
            elif word == "ORDERBY" or word == "ORDER":
                begin = self.position
                self._next()
                if self._peek_word() == "BY":
                    self._next()
                self._orderby()
                shape.extend(self.tokens[begin : self.position])
            elif word == "STARTPOSITION":
                self._next()
                self.start = max(1, self._int())
            elif word == "MAXRESULTS":
                self._next()
                self.max_results = min(MAX_RESULTS, max(0, self._int()))
            else:
                raise query_error(f"Encountered {self.tokens[self.position][1]!r}")
        self.shape: tuple[tuple[str, str], ...] = tuple(
            (kind, value.upper() if kind == "word" else value) for kind, value in shape
        )

    def _next(self) -> tuple[str, str]:
        if self.position >= len(self.tokens):
            raise query_error("Encountered end of query")
        token = self.tokens[self.position]
        self.position += 1
        return token

    def _peek_word(self) -> str | None:
        if self.position < len(self.tokens) and self.tokens[self.position][0] == "word":
            return self.tokens[self.position][1].upper()
        return None

    def _keyword(self, word: str) -> None:
        kind, value = self._next()
        if kind != "word" or value.upper() != word:
            raise query_error(f"expected {word}, encountered {value!r}")

    def _punct(self, symbol: str) -> None:
        _, value = self._next()
        if value != symbol:
            raise query_error(f"expected {symbol!r}, encountered {value!r}")

    def _int(self) -> int:
        kind, value = self._next()
        if kind != "num" or not value.lstrip("-").isdigit():
            raise query_error(f"expected a whole number, encountered {value!r}")
        return int(value)

    def _literal(self) -> str:
        kind, value = self._next()
        if kind not in ("str", "num", "word"):
            raise query_error(f"expected a value, encountered {value!r}")
        return value

    def _where(self) -> None:
        while True:
            kind, path = self._next()
            if kind != "word":
                raise query_error(f"expected a property name, encountered {path!r}")
            if self._peek_word() == "IN":
                self._next()
                self._punct("(")
                literals = [self._literal()]
                while self.tokens[self.position][1] == ",":
                    self._next()
                    literals.append(self._literal())
                self._punct(")")
                self.conditions.append(_condition(path, "IN", literals))
            else:
                op_kind, op = self._next()
                if op_kind != "op":
                    raise query_error(f"expected an operator after {path}, encountered {op!r}")
                self.conditions.append(_condition(path, op, [self._literal()]))
            word = self._peek_word()
            if word == "AND":
                self._next()
                continue
            if word == "OR":
                raise query_error("OR is not supported")
            return

    def _orderby(self) -> None:
        while True:
            kind, path = self._next()
            if kind != "word":
                raise query_error(f"expected a property name, encountered {path!r}")
            descending = False
            if self._peek_word() in ("ASC", "DESC"):
                descending = self._next()[1].upper() == "DESC"
            self.order.append((path, descending))
            if self.position < len(self.tokens) and self.tokens[self.position][1] == ",":
                self._next()
                continue
            return

    def matches(self, record: QboRecord) -> bool:
        return all(condition(record) for condition in self.conditions)


def _id_key(record: QboRecord) -> tuple[int, str]:
    text = str(record.get("Id", ""))
    return (int(text), "") if text.isdigit() else (0, text)


def _sort_key(path: str) -> Callable[[QboRecord], tuple[int, Any]]:
    def key(record: QboRecord) -> tuple[int, Any]:
        value = _field_value(record, path)
        if value is None:
            return (1, "")
        if isinstance(value, Decimal | int | float) and not isinstance(value, bool):
            return (0, Decimal(str(value)))
        if path.lower().endswith("time"):
            return (0, mapping.parse_datetime(str(value)) or datetime.min.replace(tzinfo=UTC))
        if path.split(".")[-1].lower() == "id" and str(value).isdigit():
            return (0, int(value))
        return (0, str(value))

    return key


# ---------------------------------------------------------------- answering queries and CDC


class QboQuery:
    """Query and CDC answers over one company's state, query rows cached for paging."""

    def __init__(self, state: QboState) -> None:
        self.state = state
        self.cache = RowCache(QUERY_CACHE_SIZE)

    def reset(self) -> None:
        """Forget every cached row list (the ledger was replaced)."""
        self.cache.clear()

    def run(self, text: str) -> JsonObject:
        """A query's QueryResponse: one page of rows, or totalCount for COUNT(*)."""
        query = ParsedQuery(text)
        rows = self.rows(query)
        if query.count:
            return {"totalCount": len(rows)}
        page = rows[query.start - 1 : query.start - 1 + query.max_results]
        if not page:
            return {}
        return {query.entity: page, "startPosition": query.start, "maxResults": len(page)}

    def rows(self, query: ParsedQuery) -> list[QboRecord]:
        """The query's matching rows in answer order, computed once per state version and query shape
        (paging clauses aside), so that page N of a big pull costs O(page), not O(rows)."""

        def compute() -> list[QboRecord]:
            rows = [r for r in self.state.entities[query.entity].values() if query.matches(r)]
            rows.sort(key=_id_key)
            for path, descending in reversed(query.order):
                rows.sort(key=_sort_key(path), reverse=descending)
            return rows

        return self.cache.rows((query.entity, query.shape), self.state.version, compute)

    def cdc(self, names: list[str], since: datetime) -> JsonObject:
        """Objects of `names` changed (or deleted) since `since`, oldest first, CDC_LIMIT per entity."""
        if since < self.state.now() - CDC_WINDOW:
            raise QboFault(
                "4001",
                "Invalid query",
                "changedSince can be at most 30 days in the past",
                element="changedSince",
            )
        responses: list[JsonObject] = []
        for name in names:
            entity = URL_ENTITY.get(name.lower())
            if entity is None:
                raise invalid_context(name)
            changed: list[tuple[datetime, QboRecord]] = []
            for record in self.state.entities[entity].values():
                stamp = mapping.parse_datetime(record.get("MetaData", {}).get("LastUpdatedTime"))
                if stamp is not None and stamp >= since:
                    changed.append((stamp, record))
            for record_id, deleted_at in self.state.deleted[entity].items():
                stamp = mapping.parse_datetime(deleted_at)
                if stamp is not None and stamp >= since:
                    changed.append(
                        (
                            stamp,
                            {
                                "domain": "QBO",
                                "status": "Deleted",
                                "Id": record_id,
                                "MetaData": {"LastUpdatedTime": deleted_at},
                            },
                        )
                    )
            changed.sort(key=lambda pair: pair[0])
            items = [record for _, record in changed[:CDC_LIMIT]]
            if items:
                responses.append({entity: items, "startPosition": 1, "maxResults": len(items)})
            else:
                responses.append({})
        return {"CDCResponse": [{"QueryResponse": responses}]}
