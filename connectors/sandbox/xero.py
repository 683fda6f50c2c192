"""A local, stateful copy of the Xero Accounting API (the subset relance uses), over real HTTP.

Shapes follow Xero's official OpenAPI spec (xero_accounting.yaml): `{"Invoices": [...],
"pagination": {...}}` envelopes, MS-JSON dates ("/Date(1700000000000+0000)/"), UpdatedDateUTC,
Xero-tenant-id required (403 otherwise), 400 ValidationException with Elements[].ValidationErrors,
404, 429 with Retry-After and X-Rate-Limit-Problem (minute | day), and the rate headers
X-MinLimit-Remaining / X-DayLimit-Remaining / X-AppMinLimit-Remaining on every API answer.

Writes honour the Idempotency-Key header: the same key on the same endpoint replays the stored
response and has no second effect. Effects (emails, notes, fee invoices, credit notes) are recorded
for exactly-once tests.

Contacts carry relance's kind / language / tags as contact groups (see connectors/xero/mapping.py).
Ids are UUIDs derived from the generator's ids (uuid5), so a seed always gives the same company.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connectors.sandbox.server import (
    Effect,
    FaultKind,
    Faults,
    OAuthAuthority,
    RequestLog,
    Route,
    SandboxClock,
    SandboxLifecycle,
    SandboxRequest,
    SandboxResponse,
    SandboxServer,
    json_response,
    oauth_routes,
    request_root,
    write_json_atomic,
)
from connectors.xero.mapping import (
    KIND_GROUP_PREFIX,
    LANGUAGE_GROUP_PREFIX,
    ms_date,
    ms_datetime,
    parse_date,
)
from policies.model.ledger import (
    Allocation,
    CreditNote,
    Customer,
    CustomerKind,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    LedgerSnapshot,
    Payment,
)
from policies.model.money import Money, round_half_up

if TYPE_CHECKING:
    from connectors.sandbox.generator import GeneratedCompany

DEFAULT_TENANT_ID = "6f1c3a52-8f0e-4c43-9d5e-2b7a1c0de001"
API_PREFIX = "/api.xro/2.0"
_NAMESPACE = uuid.UUID("2f6f0a3e-5d4b-4b8e-9a57-0c1d2e3f4a5b")
_GUID = r"[0-9a-fA-F-]{36}"
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
LIST_CACHE_SIZE = 16  # filtered+sorted row lists kept for paging (one per list request shape)
_PAGING_PARAMS = frozenset({"page", "pagesize"})
SALES_ACCOUNT = {"AccountID": "5040915e-8ce7-4177-8d08-fde416232f18", "Code": "200"}
BANK_ACCOUNT = {"AccountID": "bd9e85e0-0478-433d-ae9f-0b3c4f04bfe4", "Code": "090"}

_STATUS_FROM_NEUTRAL = {
    InvoiceStatus.DRAFT: "DRAFT",
    InvoiceStatus.OPEN: "AUTHORISED",
    InvoiceStatus.PAID: "PAID",
    InvoiceStatus.VOID: "VOIDED",
}
_NEUTRAL_STATUS = {
    "DRAFT": InvoiceStatus.DRAFT,
    "SUBMITTED": InvoiceStatus.DRAFT,
    "AUTHORISED": InvoiceStatus.OPEN,
    "PAID": InvoiceStatus.PAID,
    "VOIDED": InvoiceStatus.VOID,
    "DELETED": InvoiceStatus.VOID,
}


def _money(value: Decimal, currency: str) -> Decimal:
    return round_half_up(value, currency)


def _ms_truncate(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


# ---------------------------------------------------------------- state records


@dataclass
class XContact:
    id: str
    name: str
    email: str | None
    country: str | None
    currency: str | None
    groups: list[str]
    status: str  # ACTIVE | ARCHIVED
    updated: datetime


@dataclass
class XInvoice:
    id: str
    number: str
    type: str
    contact_id: str
    date: date
    due_date: date
    currency: str
    status: str
    lines: list[tuple[str, Decimal]]
    total: Decimal
    sent: bool
    reference: str | None
    updated: datetime
    payment_ids: list[str] = field(default_factory=list)
    credited: list[tuple[str, Decimal, date]] = field(default_factory=list)  # (credit note, amount, date)
    fully_paid_on: date | None = None


@dataclass
class XPayment:
    id: str
    invoice_id: str
    date: date
    amount: Decimal
    status: str  # AUTHORISED | DELETED
    updated: datetime
    reference: str | None = None


@dataclass
class XCreditNote:
    id: str
    number: str
    contact_id: str
    date: date
    currency: str
    total: Decimal
    lines: list[tuple[str, Decimal]]
    status: str  # AUTHORISED | PAID | VOIDED
    reference: str | None
    updated: datetime
    allocations: list[tuple[str, str, Decimal, date]] = field(
        default_factory=list
    )  # (alloc id, inv, amt, day)


@dataclass
class XHistory:
    changes: str
    details: str
    user: str
    at: datetime


_RECORD_TYPES: dict[str, type] = {
    "contacts": XContact,
    "invoices": XInvoice,
    "payments": XPayment,
    "credit_notes": XCreditNote,
}


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, date):
        return {"$d": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$dec": str(value)}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if "$dt" in value:
            return datetime.fromisoformat(value["$dt"])
        if "$d" in value:
            return date.fromisoformat(value["$d"])
        if "$dec" in value:
            return Decimal(value["$dec"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


# ---------------------------------------------------------------- the where-clause subset


class WhereError(ValueError):
    pass


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

    def parse(self) -> Callable[[Callable[[str], Any]], bool]:
        expr = self.or_expr()
        if self.peek() is not None:
            raise WhereError(f"unexpected {self.peek()[1]!r} in the where clause")  # type: ignore[index]
        return expr

    def or_expr(self) -> Callable[[Callable[[str], Any]], bool]:
        parts = [self.and_expr()]
        while (tok := self.peek()) and (tok[1] == "||" or tok[1].upper() == "OR"):
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else (lambda get, ps=parts: any(p(get) for p in ps))

    def and_expr(self) -> Callable[[Callable[[str], Any]], bool]:
        parts = [self.atom()]
        while (tok := self.peek()) and (tok[1] == "&&" or tok[1].upper() == "AND"):
            self.take()
            parts.append(self.atom())
        return parts[0] if len(parts) == 1 else (lambda get, ps=parts: all(p(get) for p in ps))

    def atom(self) -> Callable[[Callable[[str], Any]], bool]:
        kind, text = self.take()
        if text == "(":
            inner = self.or_expr()
            if self.take()[1] != ")":
                raise WhereError("missing ) in the where clause")
            return inner
        if kind == "word" and text.upper() == "NOT":
            inner = self.atom()
            return lambda get: not inner(get)
        if kind != "word":
            raise WhereError(f"expected a field name, got {text!r}")
        name = text
        op = self.take()[1]
        if op not in ("==", "!=", ">=", "<=", ">", "<"):
            raise WhereError(f"unsupported operator {op!r} in the where clause")
        value = self.value()
        return _comparison(name, op, value)

    def value(self) -> Any:
        kind, text = self.take()
        if kind == "string":
            return json.loads(text)
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
                return date(*args[:3]) if len(args) == 3 else datetime(*args, tzinfo=UTC)
        raise WhereError(f"unsupported value {text!r} in the where clause")


def _comparison(name: str, op: str, value: Any) -> Callable[[Callable[[str], Any]], bool]:
    def compare(get: Callable[[str], Any]) -> bool:
        actual = get(name)
        expected = value
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


def compile_where(text: str) -> Callable[[Callable[[str], Any]], bool]:
    return _WhereParser(text).parse()


# ---------------------------------------------------------------- errors like Xero


class XeroValidation(Exception):
    def __init__(self, messages: Sequence[str], element: dict[str, Any] | None = None) -> None:
        super().__init__("; ".join(messages))
        self.messages = list(messages)
        self.element = element or {}


def validation_response(
    messages: Sequence[str], elements: Sequence[dict[str, Any]] | None = None
) -> SandboxResponse:
    if elements is None:
        elements = [{"ValidationErrors": [{"Message": m} for m in messages]}]
    return json_response(
        {
            "ErrorNumber": 10,
            "Type": "ValidationException",
            "Message": "A validation exception occurred",
            "Elements": list(elements),
        },
        400,
    )


def _problem(status: int, title: str, detail: str) -> SandboxResponse:
    return json_response(
        {"Type": None, "Title": title, "Status": status, "Detail": detail, "Instance": str(uuid.uuid4())},
        status,
    )


def _not_found() -> SandboxResponse:
    return SandboxResponse(
        404,
        b"The resource you're looking for cannot be found",
        {"Content-Type": "text/plain; charset=utf-8"},
    )


# ---------------------------------------------------------------- the sandbox


class XeroSandbox(SandboxLifecycle):
    """The Xero Accounting API subset relance uses, stateful, over real HTTP (SandboxControl)."""

    ledger = "xero"

    def __init__(
        self,
        *,
        seed: int | None = None,
        customers: int = 0,
        invoices: int = 0,
        today: date | None = None,
        state_file: Path | None = None,
        tenant_id: str = DEFAULT_TENANT_ID,
        faults: Faults | None = None,
        client_id: str = "xero-sandbox-client",
        client_secret: str = "xero-sandbox-secret",
        minute_limit: int = 60,
        app_minute_limit: int = 10_000,
        day_limit: int = 5_000,
        tenant_name: str = "Relance Demo Company",
        country: str = "FR",
        currency: str = "EUR",
        language: str = "fr",
    ) -> None:
        self.clock = SandboxClock(today)
        self.faults = faults if faults is not None else Faults(seed=seed or 0)
        self.log = RequestLog()
        self.tenant_id = tenant_id
        self.tenant_name = tenant_name
        self.client_id = client_id
        self.client_secret = client_secret
        self.base_currency = currency.upper()
        self.minute_limit = minute_limit
        self.app_minute_limit = app_minute_limit
        self.day_limit = day_limit
        self.state_file = Path(state_file) if state_file else None
        self.authority = OAuthAuthority(client_id, client_secret, clock=self.clock)
        self.lock = threading.RLock()
        self._reset_state()
        self._minute_calls: deque[float] = deque()
        self._app_calls: deque[float] = deque()
        self._day_calls: dict[date, int] = {}
        self.server = SandboxServer(
            self._routes(),
            authority=self.authority,
            clock=self.clock,
            faults=self.faults,
            log=self.log,
            fault_response=self._fault_response,
            state_lock=self.lock,
        )
        if self.state_file is not None and self.state_file.exists():
            self.load(self.state_file)
        elif customers or invoices:
            from connectors.sandbox.generator import generate_company

            self.seed(
                generate_company(
                    seed=seed or 0,
                    customers=max(1, customers),
                    invoices=invoices,
                    today=today or self.clock.today(),
                    country=country,
                    currency=currency,
                    other_currencies=("USD", "GBP"),
                    language=language,
                )
            )

    def _reset_state(self) -> None:
        self.contacts: dict[str, XContact] = {}
        self.invoices: dict[str, XInvoice] = {}
        self.payments: dict[str, XPayment] = {}
        self.credit_notes: dict[str, XCreditNote] = {}
        self.history: dict[str, list[XHistory]] = {}
        self._idempotent: dict[str, tuple[int, bytes, dict[str, str]]] = {}
        self._effects: list[Effect] = []
        self._invoice_seq = 0
        self._credit_seq = 0
        self._list_cache: OrderedDict[tuple[Any, ...], tuple[int, list[Any]]] = OrderedDict()
        self.changed()

    _version = 0

    def changed(self) -> None:
        """Bump the state version: cached list results are recomputed. Every write path calls it;
        code that edits the records directly (tests) must call it too."""
        self._version += 1

    def _listed(self, request: SandboxRequest, kind: str, compute: Callable[[], list[Any]]) -> list[Any]:
        """A list request's filtered, ordered rows, computed once per state version and request
        shape (paging aside; If-Modified-Since included), so page N costs O(page), not O(rows)."""
        shape = tuple(
            sorted(
                (name, tuple(values))
                for name, values in request.query.items()
                if name.lower() not in _PAGING_PARAMS
            )
        )
        key = (kind, request.headers.get("If-Modified-Since"), shape)
        cached = self._list_cache.get(key)
        if cached is not None and cached[0] == self._version:
            self._list_cache.move_to_end(key)
            return cached[1]
        rows = compute()
        self._list_cache[key] = (self._version, rows)
        self._list_cache.move_to_end(key)
        while len(self._list_cache) > LIST_CACHE_SIZE:
            self._list_cache.popitem(last=False)
        return rows

    # ------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        return self.server.url + API_PREFIX

    @property
    def identity_url(self) -> str:
        return self.server.url

    def grant(self) -> dict[str, Any]:
        """A token pair without the consent step (tests, benchmarks)."""
        return self.authority.grant("offline_access accounting.transactions accounting.contacts")

    # ------------------------------------------------------------ ids

    def _uuid(self, kind: str, neutral_id: str) -> str:
        return str(uuid.uuid5(_NAMESPACE, f"{self.tenant_id}:{kind}:{neutral_id}"))

    def xero_id(self, kind: str, neutral_id: str) -> str:
        """The Xero UUID the seed gave a generator record ("customer"|"invoice"|"payment"|"credit_note")."""
        return self._uuid(kind, neutral_id)

    # ------------------------------------------------------------ seeding

    def seed(self, company: GeneratedCompany) -> None:
        with self.lock:
            self._reset_state()
            now = self.clock.now()
            # The generator stamps records at office hours on their day, possibly later today than the
            # sandbox clock: Xero never reports an UpdatedDateUTC in the future (a pull right after
            # seeding would see those records again as "changed"), so clamp them to the past.
            ceiling = now - timedelta(hours=1)

            def stamp(moment: datetime | None) -> datetime:
                return _ms_truncate(min(moment, ceiling) if moment is not None else ceiling)

            for customer in company.customers:
                groups = list(customer.tags)
                if customer.kind is not None:
                    groups.append(f"{KIND_GROUP_PREFIX}{customer.kind.value}")
                if customer.language:
                    groups.append(f"{LANGUAGE_GROUP_PREFIX}{customer.language}")
                contact = XContact(
                    id=self._uuid("customer", customer.id),
                    name=customer.name,
                    email=customer.emails[0] if customer.emails else None,
                    country=customer.country,
                    currency=customer.currency,
                    groups=groups,
                    status="ACTIVE" if customer.active else "ARCHIVED",
                    updated=stamp(customer.updated_at),
                )
                self.contacts[contact.id] = contact
            for invoice in company.invoices:
                self._seed_invoice(invoice, ceiling)
            for payment in company.payments:
                for allocation in payment.allocations:
                    invoice_id = self._uuid("invoice", allocation.invoice_id)
                    xp = XPayment(
                        id=self._uuid(
                            "payment",
                            payment.id
                            if len(payment.allocations) == 1
                            else f"{payment.id}:{allocation.invoice_id}",
                        ),
                        invoice_id=invoice_id,
                        date=payment.date,
                        amount=allocation.amount,
                        status="AUTHORISED",
                        updated=stamp(payment.updated_at),
                    )
                    self.payments[xp.id] = xp
                    self.invoices[invoice_id].payment_ids.append(xp.id)
            for note in company.credit_notes:
                self._credit_seq += 1
                xc = XCreditNote(
                    id=self._uuid("credit_note", note.id),
                    number=note.number,
                    contact_id=self._uuid("customer", note.customer_id),
                    date=note.date,
                    currency=note.total.currency,
                    total=note.total.amount,
                    lines=[("Credit", note.total.amount)],
                    status="AUTHORISED",
                    reference=note.reference,
                    updated=stamp(note.updated_at),
                )
                for index, allocation in enumerate(note.allocations):
                    invoice_id = self._uuid("invoice", allocation.invoice_id)
                    xc.allocations.append(
                        (
                            self._uuid("allocation", f"{note.id}:{index}"),
                            invoice_id,
                            allocation.amount,
                            note.date,
                        )
                    )
                    self.invoices[invoice_id].credited.append((xc.id, allocation.amount, note.date))
                if xc.total - sum(a[2] for a in xc.allocations) <= 0:
                    xc.status = "PAID"
                self.credit_notes[xc.id] = xc
            for xi in self.invoices.values():
                if xi.status == "PAID" and xi.fully_paid_on is None:
                    days = [self.payments[p].date for p in xi.payment_ids] + [c[2] for c in xi.credited]
                    xi.fully_paid_on = max(days) if days else xi.date
            self._invoice_seq = len(self.invoices)
            self.changed()

    def _seed_invoice(self, invoice: Invoice, ceiling: datetime) -> None:
        xi = XInvoice(
            id=self._uuid("invoice", invoice.id),
            number=invoice.number,
            type="ACCREC",
            contact_id=self._uuid("customer", invoice.customer_id),
            date=invoice.issue_date,
            due_date=invoice.due_date,
            currency=invoice.currency,
            status=_STATUS_FROM_NEUTRAL[invoice.status],
            lines=[(line.description, line.amount) for line in invoice.lines]
            or [("Services", invoice.total.amount)],
            total=invoice.total.amount,
            sent=invoice.email_status == "EmailSent",
            reference=invoice.reference,
            updated=_ms_truncate(min(invoice.updated_at, ceiling) if invoice.updated_at else ceiling),
        )
        self.invoices[xi.id] = xi

    # ------------------------------------------------------------ derived amounts

    def _paid(self, xi: XInvoice) -> Decimal:
        return sum(
            (self.payments[p].amount for p in xi.payment_ids if self.payments[p].status != "DELETED"),
            Decimal(0),
        )

    def _credited(self, xi: XInvoice) -> Decimal:
        return sum((c[1] for c in xi.credited), Decimal(0))

    def _due(self, xi: XInvoice) -> Decimal:
        if xi.status in ("VOIDED", "DELETED"):
            return Decimal(0)
        return xi.total - self._paid(xi) - self._credited(xi)

    def _settle_status(self, xi: XInvoice, day: date) -> None:
        if xi.status == "AUTHORISED" and self._due(xi) <= 0:
            xi.status = "PAID"
            xi.fully_paid_on = day
        elif xi.status == "PAID" and self._due(xi) > 0:
            xi.status = "AUTHORISED"
            xi.fully_paid_on = None

    # ------------------------------------------------------------ rendering (Xero JSON)

    def _contact_ref(self, contact_id: str) -> dict[str, Any]:
        contact = self.contacts.get(contact_id)
        ref: dict[str, Any] = {"ContactID": contact_id}
        if contact is not None:
            ref["Name"] = contact.name
        return ref

    def render_contact(self, contact: XContact) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ContactID": contact.id,
            "ContactStatus": contact.status,
            "Name": contact.name,
            "Addresses": [{"AddressType": "STREET", "Country": contact.country or ""}],
            "Phones": [],
            "UpdatedDateUTC": ms_datetime(contact.updated),
            "ContactGroups": [
                {
                    "Name": name,
                    "Status": "ACTIVE",
                    "ContactGroupID": self._uuid("group", name),
                    "Contacts": [],
                }
                for name in contact.groups
            ],
            "IsSupplier": False,
            "IsCustomer": True,
            "ContactPersons": [],
            "HasAttachments": False,
            "HasValidationErrors": False,
        }
        if contact.email:
            body["EmailAddress"] = contact.email
        if contact.currency:
            body["DefaultCurrency"] = contact.currency
        return body

    def _line_items(self, lines: list[tuple[str, Decimal]], kind: str, owner: str) -> list[dict[str, Any]]:
        return [
            {
                "LineItemID": self._uuid(f"{kind}-line", f"{owner}:{index}"),
                "Description": description,
                "Quantity": Decimal(1),
                "UnitAmount": amount,
                "LineAmount": amount,
                "TaxAmount": Decimal(0),
                "TaxType": "NONE",
                "AccountCode": SALES_ACCOUNT["Code"],
                "AccountID": SALES_ACCOUNT["AccountID"],
                "Tracking": [],
            }
            for index, (description, amount) in enumerate(lines)
        ]

    def render_invoice(self, xi: XInvoice) -> dict[str, Any]:
        paid = self._paid(xi)
        credited = self._credited(xi)
        body: dict[str, Any] = {
            "Type": xi.type,
            "InvoiceID": xi.id,
            "InvoiceNumber": xi.number,
            "Reference": xi.reference or "",
            "Contact": self._contact_ref(xi.contact_id),
            "Date": ms_date(xi.date),
            "DueDate": ms_date(xi.due_date),
            "Status": xi.status,
            "LineAmountTypes": "NoTax",
            "LineItems": self._line_items(xi.lines, "invoice", xi.id),
            "SubTotal": xi.total,
            "TotalTax": Decimal(0),
            "Total": xi.total,
            "AmountDue": self._due(xi),
            "AmountPaid": paid,
            "AmountCredited": credited,
            "CurrencyCode": xi.currency,
            "CurrencyRate": Decimal(1),
            "SentToContact": xi.sent,
            "IsDiscounted": False,
            "HasAttachments": False,
            "HasErrors": False,
            "UpdatedDateUTC": ms_datetime(xi.updated),
            "Payments": [
                {
                    "PaymentID": p.id,
                    "Date": ms_date(p.date),
                    "Amount": p.amount,
                    "Reference": p.reference or "",
                    "CurrencyRate": Decimal(1),
                    "HasAccount": False,
                    "HasValidationErrors": False,
                }
                for p in (self.payments[pid] for pid in xi.payment_ids)
                if p.status != "DELETED"
            ],
            "CreditNotes": [
                {
                    "CreditNoteID": note_id,
                    "CreditNoteNumber": self.credit_notes[note_id].number,
                    "AppliedAmount": amount,
                    "Date": ms_date(day),
                    "Total": self.credit_notes[note_id].total,
                    "HasErrors": False,
                }
                for note_id, amount, day in xi.credited
            ],
            "Prepayments": [],
            "Overpayments": [],
        }
        if xi.fully_paid_on is not None and xi.status == "PAID":
            body["FullyPaidOnDate"] = ms_date(xi.fully_paid_on)
        return body

    def render_payment(self, xp: XPayment) -> dict[str, Any]:
        xi = self.invoices[xp.invoice_id]
        return {
            "PaymentID": xp.id,
            "Date": ms_date(xp.date),
            "BankAmount": xp.amount,
            "Amount": xp.amount,
            "Reference": xp.reference or "",
            "CurrencyRate": Decimal(1),
            "PaymentType": "ACCRECPAYMENT",
            "Status": xp.status,
            "UpdatedDateUTC": ms_datetime(xp.updated),
            "HasAccount": True,
            "IsReconciled": False,  # a boolean: the spec's example string would break the SDK
            "Account": dict(SALES_ACCOUNT | BANK_ACCOUNT),
            "Invoice": {
                "Type": xi.type,
                "InvoiceID": xi.id,
                "InvoiceNumber": xi.number,
                "Contact": self._contact_ref(xi.contact_id),
                "CurrencyCode": xi.currency,
                "Payments": [],
                "CreditNotes": [],
                "Prepayments": [],
                "Overpayments": [],
                "HasErrors": False,
                "IsDiscounted": False,
                "LineItems": [],
            },
            "HasValidationErrors": False,
        }

    def render_credit_note(self, xc: XCreditNote) -> dict[str, Any]:
        allocated = sum((a[2] for a in xc.allocations), Decimal(0))
        return {
            "CreditNoteID": xc.id,
            "CreditNoteNumber": xc.number,
            "Type": "ACCRECCREDIT",
            "Contact": self._contact_ref(xc.contact_id),
            "Date": ms_date(xc.date),
            "Status": xc.status,
            "LineAmountTypes": "NoTax",
            "LineItems": self._line_items(xc.lines, "credit", xc.id),
            "SubTotal": xc.total,
            "TotalTax": Decimal(0),
            "Total": xc.total,
            "UpdatedDateUTC": ms_datetime(xc.updated),
            "CurrencyCode": xc.currency,
            "CurrencyRate": Decimal(1),
            "Reference": xc.reference or "",
            "SentToContact": False,
            "RemainingCredit": xc.total - allocated if xc.status != "VOIDED" else Decimal(0),
            "Allocations": [
                {
                    "AllocationID": alloc_id,
                    "Amount": amount,
                    "Date": ms_date(day),
                    "Invoice": {
                        "InvoiceID": invoice_id,
                        "InvoiceNumber": self.invoices[invoice_id].number,
                        "Payments": [],
                        "CreditNotes": [],
                        "Prepayments": [],
                        "Overpayments": [],
                        "HasErrors": False,
                        "IsDiscounted": False,
                        "LineItems": [],
                    },
                    "IsDeleted": False,
                }
                for alloc_id, invoice_id, amount, day in xc.allocations
            ],
            "HasAttachments": False,
            "HasErrors": False,
        } | (
            {"FullyPaidOnDate": ms_date(xc.allocations[-1][3])}
            if xc.status == "PAID" and xc.allocations
            else {}
        )

    # ------------------------------------------------------------ field access for where / order

    def _invoice_field(self, xi: XInvoice) -> Callable[[str], Any]:
        def get(name: str) -> Any:
            key = name.lower()
            values: dict[str, Callable[[], Any]] = {
                "type": lambda: xi.type,
                "status": lambda: xi.status,
                "date": lambda: xi.date,
                "duedate": lambda: xi.due_date,
                "invoicenumber": lambda: xi.number,
                "reference": lambda: xi.reference or "",
                "contact.contactid": lambda: xi.contact_id,
                "contact.name": lambda: (
                    self.contacts[xi.contact_id].name if xi.contact_id in self.contacts else ""
                ),
                "invoiceid": lambda: xi.id,
                "amountdue": lambda: self._due(xi),
                "total": lambda: xi.total,
                "currencycode": lambda: xi.currency,
                "senttocontact": lambda: xi.sent,
                "updateddateutc": lambda: xi.updated,
            }
            if key not in values:
                raise WhereError(f"unsupported field {name} for Invoices")
            return values[key]()

        return get

    def _payment_field(self, xp: XPayment) -> Callable[[str], Any]:
        def get(name: str) -> Any:
            key = name.lower()
            xi = self.invoices[xp.invoice_id]
            values: dict[str, Callable[[], Any]] = {
                "paymenttype": lambda: "ACCRECPAYMENT",
                "status": lambda: xp.status,
                "date": lambda: xp.date,
                "amount": lambda: xp.amount,
                "invoice.invoiceid": lambda: xp.invoice_id,
                "invoice.contact.contactid": lambda: xi.contact_id,
                "paymentid": lambda: xp.id,
                "updateddateutc": lambda: xp.updated,
            }
            if key not in values:
                raise WhereError(f"unsupported field {name} for Payments")
            return values[key]()

        return get

    def _contact_field(self, contact: XContact) -> Callable[[str], Any]:
        def get(name: str) -> Any:
            key = name.lower()
            values: dict[str, Callable[[], Any]] = {
                "contactstatus": lambda: contact.status,
                "name": lambda: contact.name,
                "emailaddress": lambda: contact.email or "",
                "contactid": lambda: contact.id,
                "iscustomer": lambda: True,
                "updateddateutc": lambda: contact.updated,
            }
            if key not in values:
                raise WhereError(f"unsupported field {name} for Contacts")
            return values[key]()

        return get

    def _credit_note_field(self, xc: XCreditNote) -> Callable[[str], Any]:
        def get(name: str) -> Any:
            key = name.lower()
            values: dict[str, Callable[[], Any]] = {
                "type": lambda: "ACCRECCREDIT",
                "status": lambda: xc.status,
                "date": lambda: xc.date,
                "contact.contactid": lambda: xc.contact_id,
                "creditnoteid": lambda: xc.id,
                "creditnotenumber": lambda: xc.number,
                "reference": lambda: xc.reference or "",
                "updateddateutc": lambda: xc.updated,
            }
            if key not in values:
                raise WhereError(f"unsupported field {name} for CreditNotes")
            return values[key]()

        return get

    # ------------------------------------------------------------ routing

    def _routes(self) -> list[Route]:
        api = API_PREFIX.replace(".", r"\.")
        guid = f"(?P<id>{_GUID})"
        return [
            *oauth_routes(self.authority, authorize_path="/connect/authorize", token_path="/connect/token"),
            Route("GET", r"/connections", self._connections),
            Route("GET", rf"{api}/Invoices", self._api(self._get_invoices)),
            Route("PUT", rf"{api}/Invoices", self._api(self._idempotent_call(self._put_invoices))),
            Route("POST", rf"{api}/Invoices", self._api(self._idempotent_call(self._put_invoices))),
            Route("GET", rf"{api}/Invoices/{guid}", self._api(self._get_invoice)),
            Route("POST", rf"{api}/Invoices/{guid}/Email", self._api(self._idempotent_call(self._email))),
            Route("GET", rf"{api}/Invoices/{guid}/History", self._api(self._get_history)),
            Route(
                "PUT", rf"{api}/Invoices/{guid}/History", self._api(self._idempotent_call(self._put_history))
            ),
            Route("GET", rf"{api}/Invoices/{guid}/OnlineInvoice", self._api(self._online_invoice)),
            Route("GET", rf"{api}/Payments", self._api(self._get_payments)),
            Route("PUT", rf"{api}/Payments", self._api(self._idempotent_call(self._put_payments))),
            Route("GET", rf"{api}/Contacts", self._api(self._get_contacts)),
            Route("GET", rf"{api}/CreditNotes", self._api(self._get_credit_notes)),
            Route("PUT", rf"{api}/CreditNotes", self._api(self._idempotent_call(self._put_credit_notes))),
            Route(
                "PUT",
                rf"{api}/CreditNotes/{guid}/Allocations",
                self._api(self._idempotent_call(self._put_allocations)),
            ),
        ]

    # ------------------------------------------------------------ rate limits and tenant check

    def _rate_headers(self) -> dict[str, str]:
        now = time.monotonic()
        for window in (self._minute_calls, self._app_calls):
            while window and window[0] <= now - 60:
                window.popleft()
        used_today = self._day_calls.get(self.clock.today(), 0)
        day_left = self.faults.day_limit_remaining
        if day_left is None:
            day_left = max(0, self.day_limit - used_today)
        return {
            "X-MinLimit-Remaining": str(max(0, self.minute_limit - len(self._minute_calls))),
            "X-DayLimit-Remaining": str(max(0, day_left)),
            "X-AppMinLimit-Remaining": str(max(0, self.app_minute_limit - len(self._app_calls))),
        }

    def _api(
        self, handler: Callable[[SandboxRequest, re.Match[str]], SandboxResponse]
    ) -> Callable[[SandboxRequest, re.Match[str]], SandboxResponse]:
        def wrapped(request: SandboxRequest, match: re.Match[str]) -> SandboxResponse:
            tenant = request.headers.get("Xero-tenant-id")
            if not tenant or tenant.strip().lower() != self.tenant_id.lower():
                return _problem(403, "Forbidden", "AuthenticationUnsuccessful")
            now = time.monotonic()
            headers = self._rate_headers()
            if len(self._minute_calls) >= self.minute_limit:
                retry = max(1, int(self._minute_calls[0] + 60 - now) + 1)
                response = SandboxResponse(429, b"", {"Content-Type": "text/plain"})
                response.headers.update(headers)
                response.headers.update({"Retry-After": str(retry), "X-Rate-Limit-Problem": "minute"})
                return response
            self._minute_calls.append(now)
            self._app_calls.append(now)
            today = self.clock.today()
            self._day_calls[today] = self._day_calls.get(today, 0) + 1
            try:
                response = handler(request, match)
            except XeroValidation as error:
                response = validation_response(error.messages)
            except WhereError as error:
                response = validation_response([str(error)])
            except (json.JSONDecodeError, ValueError, TypeError, KeyError) as error:
                response = validation_response([f"the request body could not be read: {error}"])
            finally:
                if request.method != "GET":
                    self.changed()
            response.headers.update(self._rate_headers())
            return response

        return wrapped

    def _idempotent_call(
        self, handler: Callable[[SandboxRequest, re.Match[str]], SandboxResponse]
    ) -> Callable[[SandboxRequest, re.Match[str]], SandboxResponse]:
        def wrapped(request: SandboxRequest, match: re.Match[str]) -> SandboxResponse:
            key = request.headers.get("Idempotency-Key")
            if not key:
                return handler(request, match)
            if len(key) > 128:
                return validation_response(["Idempotency-Key must be 128 characters or fewer"])
            slot = f"{request.method} {request.path} {key}"
            stored = self._idempotent.get(slot)
            if stored is not None:
                status, body, headers = stored
                return SandboxResponse(status, body, dict(headers))
            self._current_key = key
            try:
                response = handler(request, match)
            finally:
                self._current_key = None
            if response.status < 500:
                self._idempotent[slot] = (response.status, response.body, dict(response.headers))
            return response

        return wrapped

    _current_key: str | None = None

    def _fault_response(self, kind: FaultKind, request: SandboxRequest) -> SandboxResponse:
        headers = self._rate_headers()
        if kind == "429":
            response = SandboxResponse(429, b"", {"Content-Type": "text/plain"})
            response.headers.update(headers)
            response.headers["X-Rate-Limit-Problem"] = "minute"
            return response
        if kind == "day_limit":
            response = SandboxResponse(429, b"", {"Content-Type": "text/plain"})
            response.headers.update(headers)
            response.headers["X-DayLimit-Remaining"] = "0"
            response.headers["X-Rate-Limit-Problem"] = "day"
            return response
        if kind == "401":
            return _problem(401, "Unauthorized", "AuthenticationUnsuccessful")
        del request
        return SandboxResponse(
            503, b"The service is temporarily unavailable", {"Content-Type": "text/plain; charset=utf-8"}
        )

    # ------------------------------------------------------------ list helpers

    @staticmethod
    def _if_modified_since(request: SandboxRequest) -> datetime | None:
        value = request.headers.get("If-Modified-Since")
        if not value:
            return None
        value = value.strip()
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            try:
                parsed = parsedate_to_datetime(value)
            except (TypeError, ValueError):
                raise XeroValidation([f"If-Modified-Since is not a date: {value!r}"]) from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

    @staticmethod
    def _csv(request: SandboxRequest, name: str) -> set[str] | None:
        values = request.query.get(name)
        if not values:
            return None
        return {part.strip().lower() for value in values for part in value.split(",") if part.strip()}

    def _page(
        self,
        request: SandboxRequest,
        rows: list[Any],
        render: Callable[[Any], dict[str, Any]],
        envelope: str,
    ) -> SandboxResponse:
        page_text = request.param("page")
        body: dict[str, Any] = {
            "Id": str(uuid.uuid4()),
            "Status": "OK",
            "ProviderName": "relance sandbox",
            "DateTimeUTC": ms_datetime(self.clock.now()),
        }
        if page_text is None:
            selected = rows
        else:
            try:
                page = max(1, int(page_text))
                size = int(request.param("pageSize") or DEFAULT_PAGE_SIZE)
            except ValueError:
                raise XeroValidation(["page and pageSize must be whole numbers"]) from None
            size = max(1, min(MAX_PAGE_SIZE, size))
            selected = rows[(page - 1) * size : page * size]
            body["pagination"] = {
                "page": page,
                "pageSize": size,
                "pageCount": (len(rows) + size - 1) // size,
                "itemCount": len(rows),
            }
        body[envelope] = [render(row) for row in selected]
        return json_response(body)

    def _order(
        self, request: SandboxRequest, rows: list[Any], get: Callable[[Any], Callable[[str], Any]]
    ) -> None:
        order = request.param("order")
        if not order:
            return
        for part in reversed([p.strip() for p in order.split(",") if p.strip()]):
            name, _, direction = part.partition(" ")
            reverse = direction.strip().upper() == "DESC"
            rows.sort(key=lambda row, n=name: _sort_key(get(row)(n)), reverse=reverse)

    # ------------------------------------------------------------ handlers: reads

    def _connections(self, request: SandboxRequest, _: re.Match[str]) -> SandboxResponse:
        del request
        stamp = self.clock.now().replace(microsecond=0).isoformat().replace("+00:00", "")
        return json_response(
            [
                {
                    "id": self._uuid("connection", "1"),
                    "authEventId": self._uuid("auth-event", "1"),
                    "tenantId": self.tenant_id,
                    "tenantType": "ORGANISATION",
                    "tenantName": self.tenant_name,
                    "createdDateUtc": stamp,
                    "updatedDateUtc": stamp,
                }
            ]
        )

    def _get_invoices(self, request: SandboxRequest, _: re.Match[str]) -> SandboxResponse:
        since = self._if_modified_since(request)
        where = request.param("where")
        condition = compile_where(where) if where else None
        ids = self._csv(request, "IDs")
        contacts = self._csv(request, "ContactIDs")
        statuses = self._csv(request, "Statuses")
        numbers = self._csv(request, "InvoiceNumbers")

        def compute() -> list[XInvoice]:
            rows: list[XInvoice] = []
            for xi in self.invoices.values():
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
                if condition is not None and not condition(self._invoice_field(xi)):
                    continue
                rows.append(xi)
            self._order(request, rows, self._invoice_field)
            return rows

        return self._page(
            request, self._listed(request, "Invoices", compute), self.render_invoice, "Invoices"
        )

    def _invoice_or_none(self, match: re.Match[str]) -> XInvoice | None:
        return self.invoices.get(match["id"].lower())

    def _get_invoice(self, request: SandboxRequest, match: re.Match[str]) -> SandboxResponse:
        del request
        xi = self._invoice_or_none(match)
        if xi is None:
            return _not_found()
        return json_response({"Invoices": [self.render_invoice(xi)]})

    def _online_invoice(self, request: SandboxRequest, match: re.Match[str]) -> SandboxResponse:
        xi = self._invoice_or_none(match)
        if xi is None:
            return _not_found()
        if xi.status == "DRAFT":
            raise XeroValidation(["An online invoice cannot be created for a draft invoice"])
        url = f"{request_root(request)}/invoice/{self._uuid('online', xi.id)}"
        return json_response({"OnlineInvoices": [{"OnlineInvoiceUrl": url}]})

    def _get_history(self, request: SandboxRequest, match: re.Match[str]) -> SandboxResponse:
        del request
        xi = self._invoice_or_none(match)
        if xi is None:
            return _not_found()
        return json_response(
            {"HistoryRecords": [self._render_history(h) for h in self.history.get(xi.id, [])]}
        )

    @staticmethod
    def _render_history(record: XHistory) -> dict[str, Any]:
        return {
            "Changes": record.changes,
            "DateUTCString": record.at.strftime("%Y-%m-%dT%H:%M:%S"),
            "DateUTC": ms_datetime(record.at),
            "User": record.user,
            "Details": record.details,
        }

    def _list(
        self,
        request: SandboxRequest,
        entity: str,
        records: Iterable[Any],
        field: Callable[[Any], Callable[[str], Any]],
        render: Callable[[Any], dict[str, Any]],
        keep: Callable[[Any], bool] = lambda _: True,
    ) -> SandboxResponse:
        """GET of a list: If-Modified-Since, the where subset, order, then one page of the cached rows."""
        since = self._if_modified_since(request)
        where = request.param("where")
        condition = compile_where(where) if where else None

        def compute() -> list[Any]:
            rows = [
                row
                for row in records
                if keep(row)
                and (since is None or row.updated > since)
                and (condition is None or condition(field(row)))
            ]
            self._order(request, rows, field)
            return rows

        return self._page(request, self._listed(request, entity, compute), render, entity)

    def _get_payments(self, request: SandboxRequest, _: re.Match[str]) -> SandboxResponse:
        return self._list(
            request, "Payments", self.payments.values(), self._payment_field, self.render_payment
        )

    def _get_contacts(self, request: SandboxRequest, _: re.Match[str]) -> SandboxResponse:
        ids = self._csv(request, "IDs")
        archived = (request.param("includeArchived") or "").lower() == "true"
        return self._list(
            request,
            "Contacts",
            self.contacts.values(),
            self._contact_field,
            self.render_contact,
            keep=lambda c: (archived or c.status == "ACTIVE") and (ids is None or c.id.lower() in ids),
        )

    def _get_credit_notes(self, request: SandboxRequest, _: re.Match[str]) -> SandboxResponse:
        return self._list(
            request,
            "CreditNotes",
            self.credit_notes.values(),
            self._credit_note_field,
            self.render_credit_note,
        )

    # ------------------------------------------------------------ handlers: writes

    def _effect(self, kind: Any, invoice_id: str, amount: Decimal | None, detail: str = "") -> None:
        self._effects.append(Effect(kind, invoice_id, self._current_key, amount, self.clock.now(), detail))

    def _now(self) -> datetime:
        return _ms_truncate(self.clock.now())

    @staticmethod
    def _body(request: SandboxRequest) -> dict[str, Any]:
        data = json.loads(request.body or b"{}", parse_float=Decimal)
        if not isinstance(data, dict):
            raise XeroValidation(["the request body must be a JSON object"])
        return data

    @staticmethod
    def _items(data: dict[str, Any], envelope: str) -> list[Any]:
        items = data.get(envelope)
        if items is None and data and envelope not in data:
            items = [data]  # Xero also accepts a single object without the envelope
        if not isinstance(items, list) or not items:
            raise XeroValidation([f"no {envelope} in the request body"])
        return items

    @staticmethod
    def _date_field(item: dict[str, Any], name: str, default: date | None) -> date:
        value = item.get(name)
        if value in (None, ""):
            if default is None:
                raise XeroValidation([f"{name} is required"])
            return default
        try:
            return parse_date(value)
        except ValueError:
            raise XeroValidation([f"{name} is not a valid date"]) from None

    def _lines(self, item: dict[str, Any]) -> list[tuple[str, Decimal]]:
        raw_lines = item.get("LineItems")
        if not isinstance(raw_lines, list) or not raw_lines:
            raise XeroValidation(["At least one line item is required"])
        lines: list[tuple[str, Decimal]] = []
        for raw in raw_lines:
            if not isinstance(raw, dict):
                raise XeroValidation(["a line item is not an object"])
            description = str(raw.get("Description") or "")
            if not description:
                raise XeroValidation(["Description is required for each line item"])
            if raw.get("LineAmount") is not None:
                amount = Decimal(str(raw["LineAmount"]))
            else:
                amount = Decimal(str(raw.get("UnitAmount") or 0)) * Decimal(str(raw.get("Quantity") or 1))
            lines.append((description, amount))
        return lines

    def _contact_of(self, item: dict[str, Any]) -> XContact:
        contact = item.get("Contact")
        contact_id = contact.get("ContactID") if isinstance(contact, dict) else None
        if not isinstance(contact_id, str) or contact_id.lower() not in self.contacts:
            raise XeroValidation(["The contact could not be found"])
        return self.contacts[contact_id.lower()]

    def _new_invoice(self, item: dict[str, Any]) -> XInvoice:
        if not isinstance(item, dict):
            raise XeroValidation(["an invoice is not an object"])
        kind = item.get("Type")
        if kind not in ("ACCREC", "ACCPAY"):
            raise XeroValidation(["Invoice Type must be ACCREC or ACCPAY"])
        contact = self._contact_of(item)
        lines = self._lines(item)
        currency = str(item.get("CurrencyCode") or contact.currency or self.base_currency).upper()
        lines = [(d, _money(a, currency)) for d, a in lines]
        issue = self._date_field(item, "Date", self.clock.today())
        due = self._date_field(item, "DueDate", None)
        status = str(item.get("Status") or "DRAFT")
        if status not in ("DRAFT", "SUBMITTED", "AUTHORISED"):
            raise XeroValidation([f"Invoice Status {status} cannot be set when creating an invoice"])
        number = item.get("InvoiceNumber")
        if number and any(x.number == number for x in self.invoices.values()):
            raise XeroValidation(["Invoice # must be unique."])
        self._invoice_seq += 1
        invoice_id = str(uuid.uuid4())
        return XInvoice(
            id=invoice_id,
            number=str(number or f"INV-{self._invoice_seq:06d}"),
            type=kind,
            contact_id=contact.id,
            date=issue,
            due_date=due,
            currency=currency,
            status=status,
            lines=lines,
            total=sum((a for _, a in lines), Decimal(0)),
            sent=False,
            reference=str(item["Reference"]) if item.get("Reference") else None,
            updated=self._now(),
        )

    def _put_invoices(self, request: SandboxRequest, _: re.Match[str]) -> SandboxResponse:
        items = self._items(self._body(request), "Invoices")
        summarize = (request.param("summarizeErrors") or "true").lower() != "false"
        results: list[tuple[XInvoice | None, dict[str, Any], list[str]]] = []
        for item in items:
            try:
                if request.method == "POST" and isinstance(item, dict) and item.get("InvoiceID"):
                    results.append((self._update_invoice(item), item, []))
                else:
                    results.append((self._new_invoice(item), item, []))
            except XeroValidation as error:
                results.append((None, item if isinstance(item, dict) else {}, error.messages))
        if summarize and any(errors for _, _, errors in results):
            elements = [
                {**_safe_echo(item), "ValidationErrors": [{"Message": m} for m in errors], "HasErrors": True}
                for _, item, errors in results
                if errors
            ]
            return validation_response([], elements)
        rendered: list[dict[str, Any]] = []
        for xi, item, errors in results:
            if xi is None:
                rendered.append(
                    {
                        **_safe_echo(item),
                        "HasErrors": True,
                        "ValidationErrors": [{"Message": m} for m in errors],
                    }
                )
                continue
            if xi.id not in self.invoices:
                self.invoices[xi.id] = xi
                self._effect("fee_invoice", xi.id, xi.total, xi.reference or "")
            rendered.append(self.render_invoice(xi))
        return json_response({"Id": str(uuid.uuid4()), "Status": "OK", "Invoices": rendered})

    def _update_invoice(self, item: dict[str, Any]) -> XInvoice:
        xi = self.invoices.get(str(item["InvoiceID"]).lower())
        if xi is None:
            raise XeroValidation(["The invoice could not be found"])
        if "Reference" in item:
            xi.reference = str(item["Reference"] or "") or None
        if item.get("DueDate"):
            xi.due_date = self._date_field(item, "DueDate", None)
        status = item.get("Status")
        if status and status != xi.status:
            allowed = {
                ("DRAFT", "AUTHORISED"),
                ("SUBMITTED", "AUTHORISED"),
                ("AUTHORISED", "VOIDED"),
                ("DRAFT", "DELETED"),
                ("SUBMITTED", "DELETED"),
                ("DRAFT", "SUBMITTED"),
            }
            if (xi.status, status) not in allowed:
                raise XeroValidation([f"Invoice status cannot change from {xi.status} to {status}"])
            if status == "VOIDED" and self._paid(xi) > 0:
                raise XeroValidation(["Invoice not of valid status for modification: it has payments"])
            xi.status = status
        xi.updated = self._now()
        return xi

    def _email(self, request: SandboxRequest, match: re.Match[str]) -> SandboxResponse:
        del request
        xi = self._invoice_or_none(match)
        if xi is None:
            return _not_found()
        if xi.type != "ACCREC" or xi.status not in ("AUTHORISED", "PAID", "SUBMITTED"):
            raise XeroValidation(["Invoice must be of status AUTHORISED, SUBMITTED or PAID to be emailed"])
        contact = self.contacts.get(xi.contact_id)
        if contact is None or not contact.email:
            raise XeroValidation(["The contact has no email address"])
        xi.sent = True
        xi.updated = self._now()
        self.history.setdefault(xi.id, []).append(
            XHistory("Emailed", f"Invoice {xi.number} emailed to {contact.email}.", "relance", self._now())
        )
        self._effect("email", xi.id, None, contact.email)
        return SandboxResponse(204, b"", {})

    def _put_history(self, request: SandboxRequest, match: re.Match[str]) -> SandboxResponse:
        xi = self._invoice_or_none(match)
        if xi is None:
            return _not_found()
        items = self._items(self._body(request), "HistoryRecords")
        created: list[XHistory] = []
        for item in items:
            details = item.get("Details") if isinstance(item, dict) else None
            if not isinstance(details, str) or not details.strip():
                raise XeroValidation(["The Details of a history record are required"])
            if len(details) > 2500:
                raise XeroValidation(["The Details of a history record must be 2500 characters or fewer"])
            created.append(XHistory("Note", details, "relance", self._now()))
        for record in created:
            self.history.setdefault(xi.id, []).append(record)
            self._effect("note", xi.id, None, record.details)
        return json_response({"HistoryRecords": [self._render_history(h) for h in created]})

    def _put_payments(self, request: SandboxRequest, _: re.Match[str]) -> SandboxResponse:
        items = self._items(self._body(request), "Payments")
        created: list[XPayment] = []
        for item in items:
            invoice = item.get("Invoice") if isinstance(item, dict) else None
            invoice_id = invoice.get("InvoiceID") if isinstance(invoice, dict) else None
            xi = self.invoices.get(str(invoice_id).lower()) if invoice_id else None
            if xi is None:
                raise XeroValidation(["The invoice could not be found"])
            if xi.status != "AUTHORISED":
                raise XeroValidation(["Payment cannot be applied: the invoice is not AUTHORISED"])
            amount = Decimal(str(item.get("Amount")))
            if amount <= 0 or amount > self._due(xi):
                raise XeroValidation(["Payment amount exceeds the amount outstanding on this document"])
            created.append(
                self._apply_payment(
                    xi, amount, self._date_field(item, "Date", self.clock.today()), item.get("Reference")
                )
            )
        return json_response({"Payments": [self.render_payment(p) for p in created]})

    def _apply_payment(self, xi: XInvoice, amount: Decimal, on: date, reference: Any = None) -> XPayment:
        xp = XPayment(
            id=str(uuid.uuid4()),
            invoice_id=xi.id,
            date=on,
            amount=amount,
            status="AUTHORISED",
            updated=self._now(),
            reference=str(reference) if reference else None,
        )
        self.payments[xp.id] = xp
        xi.payment_ids.append(xp.id)
        self._settle_status(xi, on)
        xi.updated = self._now()
        return xp

    def _new_credit_note(self, item: Any) -> XCreditNote:
        if not isinstance(item, dict) or item.get("Type") not in ("ACCRECCREDIT", "ACCPAYCREDIT"):
            raise XeroValidation(["CreditNote Type must be ACCRECCREDIT or ACCPAYCREDIT"])
        contact = self._contact_of(item)
        currency = str(item.get("CurrencyCode") or contact.currency or self.base_currency).upper()
        lines = [(d, _money(a, currency)) for d, a in self._lines(item)]
        status = str(item.get("Status") or "DRAFT")
        if status not in ("DRAFT", "SUBMITTED", "AUTHORISED"):
            raise XeroValidation([f"CreditNote Status {status} cannot be set when creating"])
        issued = self._date_field(item, "Date", self.clock.today())
        self._credit_seq += 1
        return XCreditNote(
            id=str(uuid.uuid4()),
            number=str(item.get("CreditNoteNumber") or f"CN-{self._credit_seq:05d}"),
            contact_id=contact.id,
            date=issued,
            currency=currency,
            total=sum((a for _, a in lines), Decimal(0)),
            lines=lines,
            status=status,
            reference=str(item["Reference"]) if item.get("Reference") else None,
            updated=self._now(),
        )

    def _put_credit_notes(self, request: SandboxRequest, _: re.Match[str]) -> SandboxResponse:
        """Several credit notes per PUT; with summarizeErrors=false each is created or refused on its
        own (HasErrors + ValidationErrors in its place), as Xero does; otherwise one refusal refuses all."""
        items = self._items(self._body(request), "CreditNotes")
        summarize = (request.param("summarizeErrors") or "true").lower() != "false"
        results: list[tuple[XCreditNote | None, Any, list[str]]] = []
        for item in items:
            try:
                results.append((self._new_credit_note(item), item, []))
            except XeroValidation as error:
                if summarize:
                    raise
                results.append((None, item, error.messages))
        rendered: list[dict[str, Any]] = []
        for xc, item, errors in results:
            if xc is None:
                echo = {
                    k: item[k]
                    for k in ("Type", "Reference", "Contact", "CurrencyCode", "Status")
                    if isinstance(item, dict) and item.get(k) is not None
                }
                rendered.append(
                    {**echo, "HasErrors": True, "ValidationErrors": [{"Message": m} for m in errors]}
                )
                continue
            self.credit_notes[xc.id] = xc
            rendered.append(self.render_credit_note(xc))
        return json_response({"Id": str(uuid.uuid4()), "Status": "OK", "CreditNotes": rendered})

    def _put_allocations(self, request: SandboxRequest, match: re.Match[str]) -> SandboxResponse:
        xc = self.credit_notes.get(match["id"].lower())
        if xc is None:
            return _not_found()
        if xc.status != "AUTHORISED":
            raise XeroValidation(["Only AUTHORISED credit notes can be allocated"])
        items = self._items(self._body(request), "Allocations")
        planned: list[tuple[XInvoice, Decimal, date]] = []
        remaining = xc.total - sum((a[2] for a in xc.allocations), Decimal(0))
        for item in items:
            invoice = item.get("Invoice") if isinstance(item, dict) else None
            invoice_id = invoice.get("InvoiceID") if isinstance(invoice, dict) else None
            xi = self.invoices.get(str(invoice_id).lower()) if invoice_id else None
            if xi is None:
                raise XeroValidation(["The invoice could not be found"])
            if xi.contact_id != xc.contact_id or xi.currency != xc.currency:
                raise XeroValidation(
                    ["The credit note and the invoice must have the same contact and currency"]
                )
            amount = Decimal(str(item.get("Amount")))
            if amount <= 0 or amount > remaining or amount > self._due(xi):
                raise XeroValidation(["The amount allocated exceeds the remaining credit or the amount due"])
            remaining -= amount
            planned.append((xi, amount, self._date_field(item, "Date", self.clock.today())))
        rendered: list[dict[str, Any]] = []
        for xi, amount, day in planned:
            alloc_id = str(uuid.uuid4())
            xc.allocations.append((alloc_id, xi.id, amount, day))
            xi.credited.append((xc.id, amount, day))
            self._settle_status(xi, day)
            xi.updated = self._now()
            self._effect("credit_note", xi.id, amount, xc.id)
            rendered.append(
                {
                    "AllocationID": alloc_id,
                    "Amount": amount,
                    "Date": ms_date(day),
                    "Invoice": {
                        "InvoiceID": xi.id,
                        "InvoiceNumber": xi.number,
                        "Payments": [],
                        "CreditNotes": [],
                        "Prepayments": [],
                        "Overpayments": [],
                        "HasErrors": False,
                        "IsDiscounted": False,
                        "LineItems": [],
                    },
                    "CreditNote": {"CreditNoteID": xc.id, "CreditNoteNumber": xc.number},
                    "IsDeleted": False,
                    "StatusAttributeString": "OK",
                }
            )
        if remaining <= 0:
            xc.status = "PAID"
        xc.updated = self._now()
        return json_response({"Allocations": rendered})

    # ------------------------------------------------------------ SandboxControl

    def add_payment(self, invoice_id: str, amount: Decimal, on: date) -> str:
        with self.lock:
            self.changed()
            xi = self.invoices[invoice_id.lower()]
            return self._apply_payment(xi, Decimal(amount), on).id

    def modify_invoices(self, ids: Sequence[str]) -> None:
        """Simulate edits in Xero: the due date moves a week later; UpdatedDateUTC changes."""
        with self.lock:
            self.changed()
            now = self._now()
            for invoice_id in ids:
                xi = self.invoices[invoice_id.lower()]
                xi.due_date = xi.due_date + timedelta(days=7)
                xi.updated = now

    def effects(self) -> list[Effect]:
        with self.lock:
            return list(self._effects)

    def truth(self) -> LedgerSnapshot:
        """Every record of the ledger in the neutral model (archived contacts with active=False,
        ACCREC invoices only, deleted payments and voided credit notes left out)."""
        with self.lock:
            customers = {c.id: self._neutral_customer(c) for c in self.contacts.values()}
            invoices = {
                xi.id: self._neutral_invoice(xi) for xi in self.invoices.values() if xi.type == "ACCREC"
            }
            payments = {
                xp.id: self._neutral_payment(xp) for xp in self.payments.values() if xp.status != "DELETED"
            }
            notes = {
                xc.id: self._neutral_credit_note(xc)
                for xc in self.credit_notes.values()
                if xc.status not in ("VOIDED", "DELETED")
            }
            return LedgerSnapshot(
                customers=customers, invoices=invoices, payments=payments, credit_notes=notes
            )

    def _neutral_customer(self, contact: XContact) -> Customer:
        kind = None
        language = None
        tags: list[str] = []
        for group in contact.groups:
            if group.startswith(KIND_GROUP_PREFIX):
                kind = CustomerKind(group[len(KIND_GROUP_PREFIX) :])
            elif group.startswith(LANGUAGE_GROUP_PREFIX):
                language = group[len(LANGUAGE_GROUP_PREFIX) :]
            else:
                tags.append(group)
        return Customer(
            id=contact.id,
            name=contact.name,
            emails=(contact.email,) if contact.email else (),
            language=language,
            country=contact.country,
            kind=kind,
            tags=tuple(sorted(tags)),
            currency=contact.currency,
            active=contact.status == "ACTIVE",
            updated_at=contact.updated,
        )

    def _neutral_invoice(self, xi: XInvoice) -> Invoice:
        return Invoice(
            id=xi.id,
            number=xi.number,
            customer_id=xi.contact_id,
            issue_date=xi.date,
            due_date=xi.due_date,
            currency=xi.currency,
            total=Money(xi.total, xi.currency),
            balance=Money(self._due(xi), xi.currency),
            status=_NEUTRAL_STATUS[xi.status],
            lines=tuple(
                InvoiceLine(d.removeprefix("[relance fee]").strip(), a, d.startswith("[relance fee]"))
                for d, a in xi.lines
            ),
            email_status="sent" if xi.sent else "not_sent",
            reference=xi.reference or None,
            updated_at=xi.updated,
        )

    def _neutral_payment(self, xp: XPayment) -> Payment:
        xi = self.invoices[xp.invoice_id]
        return Payment(
            id=xp.id,
            customer_id=xi.contact_id,
            date=xp.date,
            amount=Money(xp.amount, xi.currency),
            allocations=(Allocation(xi.id, xp.amount),),
            updated_at=xp.updated,
        )

    def _neutral_credit_note(self, xc: XCreditNote) -> CreditNote:
        allocated = sum((a[2] for a in xc.allocations), Decimal(0))
        return CreditNote(
            id=xc.id,
            number=xc.number,
            customer_id=xc.contact_id,
            date=xc.date,
            total=Money(xc.total, xc.currency),
            remaining=Money(xc.total - allocated, xc.currency),
            allocations=tuple(Allocation(inv, amount) for _, inv, amount, _ in xc.allocations),
            reference=xc.reference or None,
            updated_at=xc.updated,
        )

    # ------------------------------------------------------------ persistence

    def save(self, path: Path | None = None) -> None:
        target = Path(path) if path else self.state_file
        if target is None:
            raise ValueError("no state file: pass a path or construct the sandbox with state_file=")
        with self.lock:
            data = {
                "version": 1,
                "tenant_id": self.tenant_id,
                "today": self.clock.today().isoformat(),
                "contacts": [_encode(vars(c)) for c in self.contacts.values()],
                "invoices": [_encode(vars(i)) for i in self.invoices.values()],
                "payments": [_encode(vars(p)) for p in self.payments.values()],
                "credit_notes": [_encode(vars(c)) for c in self.credit_notes.values()],
                "history": {k: [_encode(vars(h)) for h in v] for k, v in self.history.items()},
                "idempotent": {
                    k: [status, body.decode("utf-8"), headers]
                    for k, (status, body, headers) in self._idempotent.items()
                },
                "effects": [_encode(vars_of_effect(e)) for e in self._effects],
                "seq": [self._invoice_seq, self._credit_seq],
                "authority": self.authority.to_dict(),
            }
        write_json_atomic(target, data)

    def load(self, path: Path) -> None:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        with self.lock:
            self._reset_state()
            self.tenant_id = data.get("tenant_id", self.tenant_id)
            for name, kind in _RECORD_TYPES.items():
                store = getattr(self, name)
                for raw in data.get(name, []):
                    record = kind(**_decode(raw))
                    if isinstance(record, XInvoice):
                        record.lines = [tuple(x) for x in record.lines]  # type: ignore[misc]
                        record.credited = [tuple(x) for x in record.credited]  # type: ignore[misc]
                    if isinstance(record, XCreditNote):
                        record.lines = [tuple(x) for x in record.lines]  # type: ignore[misc]
                        record.allocations = [tuple(x) for x in record.allocations]  # type: ignore[misc]
                    store[record.id] = record
            self.history = {
                k: [XHistory(**_decode(h)) for h in v] for k, v in data.get("history", {}).items()
            }
            self._idempotent = {
                k: (int(v[0]), v[1].encode("utf-8"), dict(v[2]))
                for k, v in data.get("idempotent", {}).items()
            }
            self._effects = [Effect(**_decode(e)) for e in data.get("effects", [])]
            self._invoice_seq, self._credit_seq = data.get(
                "seq", [len(self.invoices), len(self.credit_notes)]
            )
            self.changed()
            if "authority" in data:
                authority = OAuthAuthority.from_dict(data["authority"], clock=self.clock)
                self.authority._access = authority._access
                self.authority._refresh = authority._refresh
                self.authority.refresh_count = authority.refresh_count


def vars_of_effect(effect: Effect) -> dict[str, Any]:
    return {
        "kind": effect.kind,
        "invoice_id": effect.invoice_id,
        "idempotency_key": effect.idempotency_key,
        "amount": effect.amount,
        "at": effect.at,
        "detail": effect.detail,
    }


def _safe_echo(item: dict[str, Any]) -> dict[str, Any]:
    """The fields of a refused invoice Xero echoes back in its validation element."""
    keep = ("Type", "InvoiceNumber", "Reference", "Contact", "CurrencyCode", "Status")
    return {k: item[k] for k in keep if k in item and item[k] is not None}


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, str):
        return (1, value.lower())
    return (1, value)
