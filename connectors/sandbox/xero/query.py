"""Xero's list query language: the `where` subset (==, !=, <, >, <=, >=, AND/&&, OR/||, NOT,
parentheses, "strings", numbers, true/false/null, DateTime(y,m,d[,h,mi,s]) and Guid("...")), the
fields each entity exposes to it and to `order`, and the filtered, ordered rows of a list
request, computed once per state version and request shape (see connectors.sandbox.paging).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from connectors.sandbox.paging import RowCache
from connectors.sandbox.xero.records import XContact, XCreditNote, XInvoice, XPayment
from connectors.sandbox.xero.state import XeroState

LIST_CACHE_SIZE = 16  # filtered+sorted row lists kept for paging (one per list request shape)

FieldValue = str | date | Decimal | bool | None  # what a field holds (a datetime is a date)
FieldGetter = Callable[[str], object]  # field name (as written in the query) -> value
Predicate = Callable[[FieldGetter], bool]
Row = TypeVar("Row", XContact, XInvoice, XPayment, XCreditNote)


class WhereError(ValueError):
    pass


# ---------------------------------------------------------------- the where-clause subset


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<op>==|!=|>=|<=|>|<|&&|\|\||\(|\)|,)
      | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        found = _TOKEN.match(text, pos)
        if not found or found.end() == pos:
            raise WhereError(f"cannot parse the where clause near {text[pos : pos + 20]!r}")
        pos = found.end()
        kind = found.lastgroup or ""
        tokens.append((kind, found.group(kind)))
    return tokens


def _any_of(parts: list[Predicate]) -> Predicate:
    def test(get: FieldGetter) -> bool:
        return any(p(get) for p in parts)

    return test


def _all_of(parts: list[Predicate]) -> Predicate:
    def test(get: FieldGetter) -> bool:
        return all(p(get) for p in parts)

    return test


def _negated(inner: Predicate) -> Predicate:
    def test(get: FieldGetter) -> bool:
        return not inner(get)

    return test


class _WhereParser:
    """or_expr := and_expr (OR and_expr)*; and_expr := atom (AND atom)*;
    atom := '(' or_expr ')' | field op value | NOT atom."""

    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise WhereError("the where clause ends too early")
        self.pos += 1
        return token

    def parse(self) -> Predicate:
        expr = self.or_expr()
        extra = self.peek()
        if extra is not None:
            raise WhereError(f"unexpected {extra[1]!r} in the where clause")
        return expr

    def or_expr(self) -> Predicate:
        parts = [self.and_expr()]
        while (tok := self.peek()) and (tok[1] == "||" or tok[1].upper() == "OR"):
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else _any_of(parts)

    def and_expr(self) -> Predicate:
        parts = [self.atom()]
        while (tok := self.peek()) and (tok[1] == "&&" or tok[1].upper() == "AND"):
            self.take()
            parts.append(self.atom())
        return parts[0] if len(parts) == 1 else _all_of(parts)

    def atom(self) -> Predicate:
        kind, text = self.take()
        if text == "(":
            inner = self.or_expr()
            if self.take()[1] != ")":
                raise WhereError("missing ) in the where clause")
            return inner
        if kind == "word" and text.upper() == "NOT":
            return _negated(self.atom())
        if kind != "word":
            raise WhereError(f"expected a field name, got {text!r}")
        name = text
        op = self.take()[1]
        if op not in ("==", "!=", ">=", "<=", ">", "<"):
            raise WhereError(f"unsupported operator {op!r} in the where clause")
        value = self.value()
        return _comparison(name, op, value)

    def value(self) -> FieldValue:
        kind, text = self.take()
        if kind == "string":
            return str(json.loads(text))
        if kind == "number":
            return Decimal(text)
        if kind == "word":
            upper = text.upper()
            if upper == "TRUE":
                return True
            if upper == "FALSE":
                return False
            if upper == "NULL":
                return None
            if upper in ("DATETIME", "GUID"):
                if self.take()[1] != "(":
                    raise WhereError(f"{text} needs arguments")
                args: list[Any] = []
                while True:
                    k, t = self.take()
                    if t == ")":
                        break
                    if t == ",":
                        continue
                    args.append(json.loads(t) if k == "string" else int(t))
                if upper == "GUID":
                    return str(args[0]).lower()
                if len(args) == 3:
                    return date(*args)
                # mypy cannot know that *args stops before tzinfo (an 8th argument is a TypeError)
                return datetime(*args, tzinfo=UTC)  # type: ignore[misc]
        raise WhereError(f"unsupported value {text!r} in the where clause")


def _comparison(name: str, op: str, value: FieldValue) -> Predicate:
    def compare(get: FieldGetter) -> bool:
        # Any: values of different fields have different types, compared as Xero does
        actual: Any = get(name)
        expected: Any = value
        if isinstance(actual, str) and isinstance(expected, str):
            actual, expected = actual.lower(), expected.lower()
        if isinstance(actual, datetime) and isinstance(expected, date) and not isinstance(expected, datetime):
            actual = actual.date()
        if op == "==":
            return bool(actual == expected)
        if op == "!=":
            return bool(actual != expected)
        if actual is None or expected is None:
            return False
        try:
            if op == ">=":
                return bool(actual >= expected)
            if op == "<=":
                return bool(actual <= expected)
            if op == ">":
                return bool(actual > expected)
            return bool(actual < expected)
        except TypeError:
            raise WhereError(f"cannot compare {name} with {value!r}") from None

    return compare


def compile_where(text: str) -> Predicate:
    return _WhereParser(text).parse()


# ---------------------------------------------------------------- fields of each entity


_INVOICE_FIELDS: dict[str, Callable[[XeroState, XInvoice], FieldValue]] = {
    "type": lambda s, xi: xi.type,
    "status": lambda s, xi: xi.status,
    "date": lambda s, xi: xi.date,
    "duedate": lambda s, xi: xi.due_date,
    "invoicenumber": lambda s, xi: xi.number,
    "reference": lambda s, xi: xi.reference or "",
    "contact.contactid": lambda s, xi: xi.contact_id,
    "contact.name": lambda s, xi: s.contacts[xi.contact_id].name if xi.contact_id in s.contacts else "",
    "invoiceid": lambda s, xi: xi.id,
    "amountdue": lambda s, xi: s.due(xi),
    "total": lambda s, xi: xi.total,
    "currencycode": lambda s, xi: xi.currency,
    "senttocontact": lambda s, xi: xi.sent,
    "updateddateutc": lambda s, xi: xi.updated,
}
_PAYMENT_FIELDS: dict[str, Callable[[XPayment, XInvoice], FieldValue]] = {
    "paymenttype": lambda xp, xi: "ACCRECPAYMENT",
    "status": lambda xp, xi: xp.status,
    "date": lambda xp, xi: xp.date,
    "amount": lambda xp, xi: xp.amount,
    "invoice.invoiceid": lambda xp, xi: xp.invoice_id,
    "invoice.contact.contactid": lambda xp, xi: xi.contact_id,
    "paymentid": lambda xp, xi: xp.id,
    "updateddateutc": lambda xp, xi: xp.updated,
}
_CONTACT_FIELDS: dict[str, Callable[[XContact], FieldValue]] = {
    "contactstatus": lambda c: c.status,
    "name": lambda c: c.name,
    "emailaddress": lambda c: c.email or "",
    "contactid": lambda c: c.id,
    "iscustomer": lambda c: True,
    "updateddateutc": lambda c: c.updated,
}
_CREDIT_NOTE_FIELDS: dict[str, Callable[[XCreditNote], FieldValue]] = {
    "type": lambda xc: "ACCRECCREDIT",
    "status": lambda xc: xc.status,
    "date": lambda xc: xc.date,
    "contact.contactid": lambda xc: xc.contact_id,
    "creditnoteid": lambda xc: xc.id,
    "creditnotenumber": lambda xc: xc.number,
    "reference": lambda xc: xc.reference or "",
    "updateddateutc": lambda xc: xc.updated,
}


Reader = TypeVar("Reader")  # how one entity's field table reads a field


def _getter(fields: dict[str, Reader], entity: str, read: Callable[[Reader], FieldValue]) -> FieldGetter:
    """A row's FieldGetter: `fields` names the entity's fields (lower case), `read` applies one
    of its readers to the row."""

    def get(name: str) -> FieldValue:
        reader = fields.get(name.lower())
        if reader is None:
            raise WhereError(f"unsupported field {name} for {entity}")
        return read(reader)

    return get


@dataclass(frozen=True, slots=True)
class ListFilter:
    """What a list request asks for, besides its page and entity-specific filters."""

    since: datetime | None = None  # If-Modified-Since: rows updated after it
    where: Predicate | None = None
    order: str | None = None  # "Field [ASC|DESC], ..."


class XeroQuery:
    """The rows of list requests over one organisation's state, cached for paging."""

    def __init__(self, state: XeroState) -> None:
        self.state = state
        self.cache = RowCache(LIST_CACHE_SIZE)

    def reset(self) -> None:
        """Forget every cached row list (the ledger was replaced)."""
        self.cache.clear()

    # -- field access for where / order

    def invoice_field(self, xi: XInvoice) -> FieldGetter:
        state = self.state
        return _getter(_INVOICE_FIELDS, "Invoices", lambda read: read(state, xi))

    def payment_field(self, xp: XPayment) -> FieldGetter:
        invoices = self.state.invoices
        return _getter(_PAYMENT_FIELDS, "Payments", lambda read: read(xp, invoices[xp.invoice_id]))

    @staticmethod
    def contact_field(contact: XContact) -> FieldGetter:
        return _getter(_CONTACT_FIELDS, "Contacts", lambda read: read(contact))

    @staticmethod
    def credit_note_field(xc: XCreditNote) -> FieldGetter:
        return _getter(_CREDIT_NOTE_FIELDS, "CreditNotes", lambda read: read(xc))

    # -- list requests (`key`: the request's shape, paging aside)

    def invoices(
        self,
        key: Hashable,
        wanted: ListFilter,
        *,
        ids: set[str] | None,
        contacts: set[str] | None,
        statuses: set[str] | None,
        numbers: set[str] | None,
    ) -> list[XInvoice]:
        since, condition = wanted.since, wanted.where

        def compute() -> list[XInvoice]:
            rows: list[XInvoice] = []
            for xi in self.state.invoices.values():
                if since is not None and xi.updated <= since:
                    continue
                if ids is not None and xi.id.lower() not in ids:
                    continue
                if contacts is not None and xi.contact_id.lower() not in contacts:
                    continue
                if statuses is not None and xi.status.lower() not in statuses:
                    continue
                if numbers is not None and xi.number.lower() not in numbers:
                    continue
                if condition is not None and not condition(self.invoice_field(xi)):
                    continue
                rows.append(xi)
            _order(rows, wanted.order, self.invoice_field)
            return rows

        return self.cache.rows(key, self.state.version, compute)

    def payments(self, key: Hashable, wanted: ListFilter) -> list[XPayment]:
        return self._rows(key, wanted, self.state.payments.values(), self.payment_field)

    def contacts(
        self, key: Hashable, wanted: ListFilter, *, ids: set[str] | None, archived: bool
    ) -> list[XContact]:
        def keep(c: XContact) -> bool:
            return (archived or c.status == "ACTIVE") and (ids is None or c.id.lower() in ids)

        return self._rows(key, wanted, self.state.contacts.values(), self.contact_field, keep)

    def credit_notes(self, key: Hashable, wanted: ListFilter) -> list[XCreditNote]:
        return self._rows(key, wanted, self.state.credit_notes.values(), self.credit_note_field)

    def _rows(
        self,
        key: Hashable,
        wanted: ListFilter,
        records: Iterable[Row],
        field: Callable[[Row], FieldGetter],
        keep: Callable[[Row], bool] | None = None,
    ) -> list[Row]:
        since, condition = wanted.since, wanted.where

        def compute() -> list[Row]:
            rows = [
                row
                for row in records
                if (keep is None or keep(row))
                and (since is None or row.updated > since)
                and (condition is None or condition(field(row)))
            ]
            _order(rows, wanted.order, field)
            return rows

        return self.cache.rows(key, self.state.version, compute)


def _order(rows: list[Row], order: str | None, field: Callable[[Row], FieldGetter]) -> None:
    """Sort in place by `order` ("Name [ASC|DESC], ..."), stable, None first."""
    if not order:
        return
    for part in reversed([p.strip() for p in order.split(",") if p.strip()]):
        name, _, direction = part.partition(" ")
        rows.sort(key=_sort_by(field, name), reverse=direction.strip().upper() == "DESC")


def _sort_by(field: Callable[[Row], FieldGetter], name: str) -> Callable[[Row], tuple[int, Any]]:
    def key(row: Row) -> tuple[int, Any]:
        return _sort_key(field(row)(name))

    return key


def _sort_key(value: object) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, str):
        return (1, value.lower())
    return (1, value)
