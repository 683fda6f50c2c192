"""A stateful local copy of the QuickBooks Online Accounting API v3 subset relance uses.

Real HTTP (connectors.sandbox.server), real OAuth (Intuit-style discovery document, rotating refresh
tokens), shapes from Intuit's Finance.xsd and recorded real responses: QueryResponse envelopes with
startPosition/maxResults, Fault{Error[{Message, Detail, code}], type}, BatchItemResponse with bId,
CDCResponse[{QueryResponse[...]}], a `time` field on every answer.

Behaviour relance depends on, as QBO documents it:
- `requestid` query parameter: a write repeated with the same requestid returns the first answer
  and has no second effect (per realm). Invoice send has NO such protection: each call sends.
- sparse updates need the current SyncToken; a stale one is Fault 5010 "Stale Object Error".
- query: SELECT * | COUNT(*) FROM Invoice|Payment|Customer|CreditMemo|Attachable|Item|Account, WHERE with
  =, <, >, <=, >=, IN joined by AND (no OR, as in QBO), ORDERBY, STARTPOSITION (1-based),
  MAXRESULTS (default 100, at most 1000).
- CDC: changedSince at most 30 days back, up to 1000 objects per entity, deleted objects as
  {"Id", "status": "Deleted"}.
- batch: at most 30 BatchItemRequest, each processed on its own.
- sales lines (Invoice, CreditMemo) need SalesItemLineDetail.ItemRef naming an existing, active
  Item, or the write is a ValidationFault, as in QBO. The company starts with the Item "Services"
  and one Income account; /item creates more (Type Service needs an existing IncomeAccountRef).

Conventions for what QBO cannot store natively are in connectors/quickbooks/mapping.py.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connectors.quickbooks import mapping
from connectors.sandbox.server import (
    QBO_THROTTLE_XML,
    Effect,
    EffectKind,
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
    json_dumps,
    json_response,
    oauth_routes,
    openid_discovery_route,
    text_response,
    write_json_atomic,
)
from policies.model.ledger import LedgerSnapshot

if TYPE_CHECKING:
    from connectors.sandbox.generator import GeneratedCompany

DEFAULT_REALM_ID = "9130350000000000"
API_PREFIX = "/v3"
AUTHORIZE_PATH = "/connect/oauth2"
TOKEN_PATH = "/oauth2/v1/tokens/bearer"
REVOKE_PATH = "/oauth2/v1/tokens/revoke"
USERINFO_PATH = "/v1/openid_connect/userinfo"
DISCOVERY_PATH = "/.well-known/openid_configuration"
SCOPE = "com.intuit.quickbooks.accounting"

ENTITY_NAMES = ("Customer", "Invoice", "Payment", "CreditMemo", "Attachable", "Item", "Account")
WRITABLE = ("Customer", "Invoice", "Payment", "CreditMemo", "Attachable", "Item")
ITEM_TYPES = ("Service", "NonInventory", "Inventory", "Other Charge", "Group", "Category", "Bundle")
_URL_ENTITY = {name.lower(): name for name in ENTITY_NAMES}
MAX_RESULTS = 1000
DEFAULT_MAX_RESULTS = 100
BATCH_LIMIT = 30
CDC_WINDOW = timedelta(days=30)
CDC_LIMIT = 1000
QUERY_CACHE_SIZE = 16  # filtered+sorted row lists kept for paging (one per query shape)
_ITEM_DETAIL_TYPES = ("SalesItemLineDetail", "DescriptionOnly", "GroupLineDetail")


class QboFault(Exception):
    """A Fault answer (HTTP 400 unless said otherwise)."""

    def __init__(
        self,
        code: str,
        message: str,
        detail: str = "",
        *,
        element: str = "",
        kind: str = "ValidationFault",
        status: int = 400,
    ) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message
        self.detail = detail
        self.element = element
        self.kind = kind
        self.status = status

    def body(self) -> dict[str, Any]:
        error = {"Message": self.message, "Detail": self.detail or self.message, "code": self.code}
        if self.element:
            error["element"] = self.element
        return {"Error": [error], "type": self.kind}


def _not_found(entity: str, entity_id: str) -> QboFault:
    return QboFault(
        "610",
        "Object Not Found",
        f"Object Not Found : Something you're trying to use has been made inactive. "
        f"Check the fields with accounts, customers, items, vendors or employees. ({entity} {entity_id})",
    )


def _decimal(value: Any, field: str) -> Decimal:
    try:
        return mapping.parse_amount(value, field)
    except mapping.MappingError:
        raise QboFault("2040", "Invalid Number", f"{field} is not a valid number", element=field) from None


# ---------------------------------------------------------------- query language


_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.|'')*')|(?P<op>>=|<=|!=|<>|=|<|>)|(?P<punct>[(),*])"
    r"|(?P<num>-?\d+(?:\.\d+)?)(?![\w.])|(?P<word>[A-Za-z_][\w.]*))"
)


def _query_error(detail: str) -> QboFault:
    return QboFault("4000", "Error parsing query", f"QueryParserError: {detail}")


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    text = text.rstrip().rstrip(";")
    while position < len(text):
        if text[position:].strip() == "":
            break
        found = _TOKEN.match(text, position)
        if not found or found.end() == position:
            raise _query_error(
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


def _field_value(record: dict[str, Any], path: str) -> Any:
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
            raise _query_error(f"{path} needs a number, got {literal!r}") from None
    text = str(actual)
    if path.split(".")[-1].lower() == "id" and text.isdigit() and literal.isdigit():
        return int(text), int(literal)
    if path.lower().endswith("time"):
        left, right = mapping.parse_datetime(text), mapping.parse_datetime(literal)
        if left is None or right is None:
            raise _query_error(f"{path} needs a date-time, got {literal!r}")
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

Condition = Callable[[dict[str, Any]], bool]


def _condition(path: str, op: str, literals: list[str]) -> Condition:
    compare = _OPS["="] if op == "IN" else _OPS[op]

    def test(record: dict[str, Any]) -> bool:
        for actual in _field_values(record, path):
            for literal in literals:
                pair = _typed(path, actual, literal)
                if pair is not None and compare(*pair):
                    return True
        return False

    return test


class ParsedQuery:
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
            raise QboFault(
                "4001", "Invalid query", f"QueryValidationError: invalid context declaration: {name}"
            )
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
                raise _query_error(f"Encountered {self.tokens[self.position][1]!r}")
        self.shape: tuple[tuple[str, str], ...] = tuple(
            (kind, value.upper() if kind == "word" else value) for kind, value in shape
        )

    def _next(self) -> tuple[str, str]:
        if self.position >= len(self.tokens):
            raise _query_error("Encountered end of query")
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
            raise _query_error(f"expected {word}, encountered {value!r}")

    def _punct(self, symbol: str) -> None:
        _, value = self._next()
        if value != symbol:
            raise _query_error(f"expected {symbol!r}, encountered {value!r}")

    def _int(self) -> int:
        kind, value = self._next()
        if kind != "num" or not value.lstrip("-").isdigit():
            raise _query_error(f"expected a whole number, encountered {value!r}")
        return int(value)

    def _literal(self) -> str:
        kind, value = self._next()
        if kind not in ("str", "num", "word"):
            raise _query_error(f"expected a value, encountered {value!r}")
        return value

    def _where(self) -> None:
        while True:
            kind, path = self._next()
            if kind != "word":
                raise _query_error(f"expected a property name, encountered {path!r}")
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
                    raise _query_error(f"expected an operator after {path}, encountered {op!r}")
                self.conditions.append(_condition(path, op, [self._literal()]))
            word = self._peek_word()
            if word == "AND":
                self._next()
                continue
            if word == "OR":
                raise _query_error("OR is not supported")
            return

    def _orderby(self) -> None:
        while True:
            kind, path = self._next()
            if kind != "word":
                raise _query_error(f"expected a property name, encountered {path!r}")
            descending = False
            if self._peek_word() in ("ASC", "DESC"):
                descending = self._next()[1].upper() == "DESC"
            self.order.append((path, descending))
            if self.position < len(self.tokens) and self.tokens[self.position][1] == ",":
                self._next()
                continue
            return

    def matches(self, record: dict[str, Any]) -> bool:
        return all(condition(record) for condition in self.conditions)


def _id_key(record: dict[str, Any]) -> tuple[int, str]:
    text = str(record.get("Id", ""))
    return (int(text), "") if text.isdigit() else (0, text)


def _sort_key(path: str) -> Callable[[dict[str, Any]], tuple[int, Any]]:
    def key(record: dict[str, Any]) -> tuple[int, Any]:
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


# ---------------------------------------------------------------- the sandbox


class QuickBooksSandbox(SandboxLifecycle):
    """The QBO v3 API subset relance uses, stateful, over real HTTP (implements SandboxControl)."""

    ledger = "quickbooks"

    def __init__(
        self,
        *,
        seed: int | None = None,
        customers: int = 0,
        invoices: int = 0,
        today: date | None = None,
        state_file: Path | None = None,
        realm_id: str = DEFAULT_REALM_ID,
        faults: Faults | None = None,
        client_id: str = "qbo-sandbox-client",
        client_secret: str = "qbo-sandbox-secret",
        country: str = "FR",
        currency: str = "EUR",
        language: str = "fr",
    ) -> None:
        self.clock = SandboxClock(today)
        self.faults = faults if faults is not None else Faults(seed=seed or 0)
        self.log = RequestLog()
        self.realm_id = str(realm_id)
        self.client_id = client_id
        self.client_secret = client_secret
        self.home_currency = currency.upper()
        self.state_file = Path(state_file) if state_file else None
        self.authority = OAuthAuthority(client_id, client_secret, clock=self.clock)
        self.lock = threading.RLock()
        self._reset_state()
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
        elif seed is not None and (customers or invoices):
            from connectors.sandbox.generator import generate_company

            self.seed(
                generate_company(
                    seed=seed,
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
        self.entities: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in ENTITY_NAMES}
        self.deleted: dict[str, dict[str, str]] = {name: {} for name in ENTITY_NAMES}
        self._next_id: dict[str, int] = {name: 1 for name in ENTITY_NAMES}
        self._replays: dict[str, tuple[int, str]] = {}
        self._effects: list[Effect] = []
        self._query_cache: OrderedDict[tuple[Any, ...], tuple[int, list[dict[str, Any]]]] = OrderedDict()
        self.changed()
        # A new QBO company's defaults: an income account and the "Services" item posting to it.
        self.entities["Account"]["1"] = {
            "Id": "1",
            "Name": "Services",
            "FullyQualifiedName": "Services",
            "AccountType": "Income",
            "AccountSubType": "ServiceFeeIncome",
            "Classification": "Revenue",
            "Active": True,
            "SubAccount": False,
            "CurrentBalance": Decimal(0),
            "CurrencyRef": {"value": self.home_currency, "name": self.home_currency},
            "SyncToken": "0",
            "domain": "QBO",
            "sparse": False,
            "MetaData": mapping._meta(self.clock.now()),
        }
        self._next_id["Account"] = 2
        self.entities["Item"]["1"] = {
            "Id": "1",
            "Name": "Services",
            "FullyQualifiedName": "Services",
            "Type": "Service",
            "Active": True,
            "IncomeAccountRef": {"value": "1", "name": "Services"},
            "SyncToken": "0",
            "domain": "QBO",
            "sparse": False,
            "MetaData": mapping._meta(self.clock.now()),
        }
        self._next_id["Item"] = 2

    # ------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        """The SDK's api_url_v3 equivalent: resource paths are appended to it."""
        return self.server.url + API_PREFIX

    @property
    def discovery_url(self) -> str:
        return self.server.url + DISCOVERY_PATH

    def grant(self) -> dict[str, Any]:
        """A token pair without the consent step (tests, benchmarks)."""
        return self.authority.grant(SCOPE)

    # ------------------------------------------------------------ helpers

    def _now(self) -> datetime:
        return self.clock.now()

    _version = 0

    def changed(self) -> None:
        """Bump the state version: cached query results are recomputed. Every write path calls it;
        code that edits `entities` directly (tests) must call it too."""
        self._version += 1

    def _stamp(self) -> str:
        return mapping.format_datetime(self._now())

    def _time(self) -> str:
        return self._now().isoformat(timespec="milliseconds")

    def _new_id(self, entity: str) -> str:
        value = self._next_id[entity]
        self._next_id[entity] = value + 1
        return str(value)

    def _touch(self, record: dict[str, Any]) -> None:
        self.changed()
        record["SyncToken"] = str(int(record.get("SyncToken", "0")) + 1)
        meta = record.setdefault("MetaData", {})
        meta["LastUpdatedTime"] = self._stamp()
        meta.setdefault("CreateTime", meta["LastUpdatedTime"])

    def _effect(
        self, kind: EffectKind, invoice_id: str, key: str | None, amount: Decimal | None, detail: str = ""
    ) -> None:
        self._effects.append(Effect(kind, invoice_id, key, amount, self._now(), detail))

    def _get(self, entity: str, entity_id: Any) -> dict[str, Any]:
        text = str(entity_id or "")
        if text and not text.isdigit():
            raise QboFault(
                "2030", "Invalid ID", f"Id should be a valid number. Supplied value:{text}", element="Id"
            )
        record = self.entities[entity].get(text)
        if record is None:
            raise _not_found(entity, text)
        return record

    def _customer_ref(self, body: dict[str, Any]) -> dict[str, Any]:
        ref = body.get("CustomerRef")
        value = ref.get("value") if isinstance(ref, dict) else None
        if not value:
            raise QboFault(
                "2020",
                "Required param missing, need to supply the required value for the API",
                "Required parameter CustomerRef is missing in the request",
                element="CustomerRef",
            )
        customer = self.entities["Customer"].get(str(value))
        if customer is None:
            raise QboFault("2500", "Invalid Reference Id", f"Invalid Reference Id : Customer {value}")
        return customer

    # ------------------------------------------------------------ seeding and control

    def seed(self, company: GeneratedCompany) -> None:
        """Replace the ledger with a generated company (QBO has no draft invoices: drafts are left out)."""
        from policies.model.ledger import InvoiceStatus

        with self.lock:
            self._reset_state()
            ceiling = self._now() - timedelta(hours=1)  # older than any cursor overlap
            if company.currency:
                self.home_currency = company.currency

            def clamp(moment: datetime | None) -> datetime:
                return min(moment, ceiling) if moment is not None else ceiling

            names: dict[str, str] = {}
            emails: dict[str, str | None] = {}
            for customer in company.customers:
                record = mapping.customer_to_qbo(customer)
                record["MetaData"] = mapping._meta(clamp(customer.updated_at))
                self.entities["Customer"][customer.id] = record
                names[customer.id] = customer.name
                emails[customer.id] = customer.emails[0] if customer.emails else None
            linked: dict[str, list[dict[str, str]]] = {}
            for payment in company.payments:
                record = mapping.payment_to_qbo(payment, names.get(payment.customer_id, ""))
                record["MetaData"] = mapping._meta(clamp(payment.updated_at))
                self.entities["Payment"][payment.id] = record
                for allocation in payment.allocations:
                    linked.setdefault(allocation.invoice_id, []).append(
                        {"TxnId": payment.id, "TxnType": "Payment"}
                    )
            for note in company.credit_notes:
                record = mapping.credit_memo_to_qbo(note, names.get(note.customer_id, ""))
                record["MetaData"] = mapping._meta(clamp(note.updated_at))
                self.entities["CreditMemo"][note.id] = record
                for allocation in note.allocations:
                    linked.setdefault(allocation.invoice_id, []).append(
                        {"TxnId": note.id, "TxnType": "CreditMemo"}
                    )
            for invoice in company.invoices:
                if invoice.status is InvoiceStatus.DRAFT:
                    continue
                record = mapping.invoice_to_qbo(
                    invoice, names.get(invoice.customer_id, ""), emails.get(invoice.customer_id)
                )
                record["MetaData"] = mapping._meta(clamp(invoice.updated_at))
                record["LinkedTxn"] = linked.get(invoice.id, [])
                self.entities["Invoice"][invoice.id] = record
            for entity in ("Customer", "Invoice", "Payment", "CreditMemo"):
                ids = [int(i) for i in self.entities[entity] if i.isdigit()]
                self._next_id[entity] = max(ids, default=0) + 1
            self._recompute_customer_balances()
            self.changed()

    def _recompute_customer_balances(self) -> None:
        self.changed()
        totals: dict[str, Decimal] = {}
        for invoice in self.entities["Invoice"].values():
            customer_id = invoice["CustomerRef"]["value"]
            totals[customer_id] = totals.get(customer_id, Decimal(0)) + Decimal(str(invoice["Balance"]))
        for customer_id, customer in self.entities["Customer"].items():
            customer["Balance"] = customer["BalanceWithJobs"] = totals.get(customer_id, Decimal(0))

    def add_payment(self, invoice_id: str, amount: Decimal, on: date) -> str:
        """A customer pays (part of) an invoice, as if keyed in QBO."""
        with self.lock:
            invoice = self._get("Invoice", invoice_id)
            body = {
                "CustomerRef": dict(invoice["CustomerRef"]),
                "TotalAmt": amount,
                "TxnDate": on.isoformat(),
                "CurrencyRef": dict(invoice["CurrencyRef"]),
                "Line": [{"Amount": amount, "LinkedTxn": [{"TxnId": str(invoice_id), "TxnType": "Invoice"}]}],
            }
            return str(self._create_payment(body)["Id"])

    def modify_invoices(self, ids: Sequence[str]) -> None:
        """Simulate edits in QBO: the due date moves a day later; SyncToken and LastUpdatedTime change."""
        with self.lock:
            for invoice_id in ids:
                invoice = self._get("Invoice", invoice_id)
                due = date.fromisoformat(invoice.get("DueDate") or invoice["TxnDate"])
                invoice["DueDate"] = (due + timedelta(days=1)).isoformat()
                self._touch(invoice)

    def void_invoice(self, invoice_id: str) -> None:
        with self.lock:
            self._void(self._get("Invoice", invoice_id))

    def delete_invoice(self, invoice_id: str) -> None:
        with self.lock:
            self._delete("Invoice", self._get("Invoice", invoice_id))

    def effects(self) -> list[Effect]:
        with self.lock:
            return list(self._effects)

    def truth(self) -> LedgerSnapshot:
        """Every record of the ledger in the neutral model (inactive customers with active=False)."""
        with self.lock:
            result: dict[str, dict[str, Any]] = {}
            for neutral, entity in mapping.QBO_ENTITY.items():
                records, quarantined = mapping.map_records(neutral, self.entities[entity].values())
                if quarantined:
                    raise AssertionError(f"sandbox holds unreadable records: {quarantined[:3]}")
                result[neutral] = {r.id: r for r in records}
            return LedgerSnapshot(
                customers=result["customer"],
                invoices=result["invoice"],
                payments=result["payment"],
                credit_notes=result["credit_note"],
            )

    def record(self, entity: str, entity_id: str) -> dict[str, Any]:
        """A copy of one stored QBO record (tests)."""
        with self.lock:
            return json.loads(json_dumps(self._get(entity, entity_id)), parse_float=Decimal)

    # ------------------------------------------------------------ persistence

    def save(self, path: Path | None = None) -> None:
        target = Path(path) if path else self.state_file
        if target is None:
            raise ValueError("no state file: pass a path or construct the sandbox with state_file=")
        with self.lock:
            data = {
                "version": 1,
                "ledger": "quickbooks",
                "realm_id": self.realm_id,
                "home_currency": self.home_currency,
                "clock_today": self.clock.today().isoformat(),
                "entities": self.entities,
                "deleted": self.deleted,
                "next_id": self._next_id,
                "replays": self._replays,
                "effects": [
                    {
                        "kind": e.kind,
                        "invoice_id": e.invoice_id,
                        "idempotency_key": e.idempotency_key,
                        "amount": str(e.amount) if e.amount is not None else None,
                        "at": e.at.isoformat(),
                        "detail": e.detail,
                    }
                    for e in self._effects
                ],
                "authority": self.authority.to_dict(),
            }
            write_json_atomic(target, data)

    def load(self, path: Path) -> None:
        data = json.loads(Path(path).read_text(encoding="utf-8"), parse_float=Decimal)
        with self.lock:
            self._reset_state()
            self.realm_id = str(data.get("realm_id", self.realm_id))
            self.home_currency = data.get("home_currency", self.home_currency)
            for name in ENTITY_NAMES:
                self.entities[name].update(data.get("entities", {}).get(name, {}))
                self.deleted[name].update(data.get("deleted", {}).get(name, {}))
            self._next_id.update({k: int(v) for k, v in data.get("next_id", {}).items()})
            self._replays = {k: (int(v[0]), str(v[1])) for k, v in data.get("replays", {}).items()}
            self._effects = [
                Effect(
                    e["kind"],
                    e["invoice_id"],
                    e.get("idempotency_key"),
                    Decimal(e["amount"]) if e.get("amount") is not None else None,
                    datetime.fromisoformat(e["at"]),
                    e.get("detail", ""),
                )
                for e in data.get("effects", [])
            ]
            self.changed()
            if data.get("authority"):
                restored = OAuthAuthority.from_dict(data["authority"], clock=self.clock)
                self.authority._access = restored._access
                self.authority._refresh = restored._refresh
                self.authority.refresh_count = restored.refresh_count

    # ------------------------------------------------------------ HTTP plumbing

    def _routes(self) -> list[Route]:
        company = rf"{API_PREFIX}/company/(?P<realm>[^/]+)"
        entity = "(?P<entity>invoice|payment|customer|creditmemo|attachable|item|account)"
        routes = [
            Route("GET", rf"{company}/query", self._api(self._query_route)),
            Route("POST", rf"{company}/query", self._api(self._query_route)),
            Route("GET", rf"{company}/cdc", self._api(self._cdc_route)),
            Route("POST", rf"{company}/batch", self._api(self._batch_route, replayable=True)),
            Route("POST", rf"{company}/invoice/(?P<id>[^/]+)/send", self._api(self._send_route)),
            Route("GET", rf"{company}/companyinfo/(?P<id>[^/]+)", self._api(self._company_info_route)),
            Route("GET", rf"{company}/{entity}/(?P<id>[^/]+)", self._api(self._read_route)),
            Route("POST", rf"{company}/{entity}", self._api(self._write_route, replayable=True)),
            *oauth_routes(
                self.authority,
                authorize_path=AUTHORIZE_PATH,
                token_path=TOKEN_PATH,
                redirect_extra=lambda request: {"realmId": self.realm_id},
            ),
            openid_discovery_route(DISCOVERY_PATH, authorize_path=AUTHORIZE_PATH, token_path=TOKEN_PATH),
            Route("POST", REVOKE_PATH, lambda request, match: json_response({}), auth=False),
            Route("GET", USERINFO_PATH, self._userinfo_route, auth=False),
        ]
        return routes

    def _userinfo_route(self, request: SandboxRequest, match: re.Match[str]) -> SandboxResponse:
        if not self.authority.check_bearer(request.headers.get("Authorization")):
            return json_response({"error": "invalid_token"}, 401)
        return json_response(
            {"sub": f"sandbox-{self.realm_id}", "email": "owner@example.com", "emailVerified": True}
        )

    def _api(
        self,
        handler: Callable[[SandboxRequest, re.Match[str]], dict[str, Any]],
        *,
        replayable: bool = False,
    ) -> Callable[[SandboxRequest, re.Match[str]], SandboxResponse]:
        """Realm check, requestid replay, Fault bodies and the `time` field around a handler."""

        def wrapped(request: SandboxRequest, match: re.Match[str]) -> SandboxResponse:
            if match["realm"] != self.realm_id:
                fault = QboFault(
                    "3100",
                    "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403",
                    f"realm {match['realm']} is not the company these tokens were issued for",
                    kind="AUTHORIZATION",
                    status=403,
                )
                return json_response({"Fault": fault.body(), "time": self._time()}, fault.status)
            request_id = request.param("requestid") if replayable else None
            if request_id:
                cached = self._replays.get(request_id)
                if cached is not None:
                    return SandboxResponse(
                        cached[0],
                        cached[1].encode("utf-8"),
                        {"Content-Type": "application/json;charset=utf-8"},
                    )
            try:
                body = handler(request, match)
                status = 200
            except QboFault as fault:
                body, status = {"Fault": fault.body()}, fault.status
            finally:
                if replayable or handler == self._send_route:
                    self.changed()  # any write (even a refused batch item may have changed state)
            body["time"] = self._time()
            text = json_dumps(body)
            if request_id and status == 200:
                self._replays[request_id] = (status, text)
            return SandboxResponse(
                status, text.encode("utf-8"), {"Content-Type": "application/json;charset=utf-8"}
            )

        return wrapped

    def _fault_response(self, kind: FaultKind, request: SandboxRequest) -> SandboxResponse:
        del request
        if kind in ("429", "day_limit"):
            if self.faults.qbo_xml_throttle:
                return text_response(
                    QBO_THROTTLE_XML.replace("{time}", self._time()), 429, content_type="application/xml"
                )
            fault = {
                "Error": [
                    {
                        "Message": "message=ThrottleExceeded; errorCode=003001; statusCode=429",
                        "Detail": "The request limit was reached.",
                        "code": "3001",
                    }
                ],
                "type": "SERVICE",
            }
            return json_response({"Fault": fault, "time": self._time()}, 429)
        if kind == "401":
            body = {
                "warnings": None,
                "intuitObject": None,
                "fault": {
                    "error": [
                        {
                            "message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                            "detail": "Token expired: <redacted>",
                            "code": "3200",
                            "element": None,
                        }
                    ],
                    "type": "AUTHENTICATION",
                },
                "report": None,
                "queryResponse": None,
                "batchItemResponse": [],
                "attachableResponse": [],
                "syncErrorResponse": None,
                "requestId": None,
                "time": int(self._now().timestamp() * 1000),
                "status": None,
                "cdcresponse": [],
            }
            return json_response(
                body, 401, {"WWW-Authenticate": 'Bearer realm="Intuit", error="invalid_token"'}
            )
        return text_response(
            "<html><head><title>503 Service Temporarily Unavailable</title></head><body><center>"
            "<h1>503 Service Temporarily Unavailable</h1></center></body></html>",
            503,
            content_type="text/html",
        )

    @staticmethod
    def _body(request: SandboxRequest) -> dict[str, Any]:
        if not request.body:
            return {}
        try:
            body = json.loads(request.body, parse_float=Decimal)
        except ValueError:
            raise QboFault(
                "2000", "Request has invalid or unsupported property", "Request body is not valid JSON"
            ) from None
        if not isinstance(body, dict):
            raise QboFault(
                "2000", "Request has invalid or unsupported property", "Request body must be an object"
            )
        return body

    # ------------------------------------------------------------ routes

    def _query_route(self, request: SandboxRequest, match: re.Match[str]) -> dict[str, Any]:
        text = request.param("query")
        if text is None:
            text = request.body.decode("utf-8", "replace")
        if not text or not text.strip():
            raise _query_error("empty query")
        return {"QueryResponse": self._run_query(text)}

    def _run_query(self, text: str) -> dict[str, Any]:
        query = ParsedQuery(text)
        rows = self._query_rows(query)
        if query.count:
            return {"totalCount": len(rows)}
        page = rows[query.start - 1 : query.start - 1 + query.max_results]
        if not page:
            return {}
        return {query.entity: page, "startPosition": query.start, "maxResults": len(page)}

    def _query_rows(self, query: ParsedQuery) -> list[dict[str, Any]]:
        """The query's matching rows in answer order, computed once per state version and query shape
        (paging clauses aside), so that page N of a big pull costs O(page), not O(rows)."""
        key = (query.entity, query.shape)
        cached = self._query_cache.get(key)
        if cached is not None and cached[0] == self._version:
            self._query_cache.move_to_end(key)
            return cached[1]
        rows = [r for r in self.entities[query.entity].values() if query.matches(r)]
        rows.sort(key=_id_key)
        for path, descending in reversed(query.order):
            rows.sort(key=_sort_key(path), reverse=descending)
        self._query_cache[key] = (self._version, rows)
        self._query_cache.move_to_end(key)
        while len(self._query_cache) > QUERY_CACHE_SIZE:
            self._query_cache.popitem(last=False)
        return rows

    def _company_info_route(self, request: SandboxRequest, match: re.Match[str]) -> dict[str, Any]:
        return {
            "CompanyInfo": {
                "Id": "1",
                "CompanyName": "Relance Sandbox Company",
                "Country": "FR",
                "SupportedLanguages": "en",
                "domain": "QBO",
                "sparse": False,
                "SyncToken": "0",
            }
        }

    def _cdc_route(self, request: SandboxRequest, match: re.Match[str]) -> dict[str, Any]:
        names = [n.strip() for n in (request.param("entities") or "").split(",") if n.strip()]
        if not names:
            raise QboFault("2020", "Required param missing", "entities is required", element="entities")
        since_text = request.param("changedSince") or ""
        since = mapping.parse_datetime(since_text)
        if since is None:
            raise QboFault(
                "2020", "Required param missing", "changedSince is missing or invalid", element="changedSince"
            )
        if since < self._now() - CDC_WINDOW:
            raise QboFault(
                "4001",
                "Invalid query",
                "changedSince can be at most 30 days in the past",
                element="changedSince",
            )
        responses = []
        for name in names:
            entity = _URL_ENTITY.get(name.lower())
            if entity is None:
                raise QboFault(
                    "4001", "Invalid query", f"QueryValidationError: invalid context declaration: {name}"
                )
            changed: list[tuple[datetime, dict[str, Any]]] = []
            for record in self.entities[entity].values():
                stamp = mapping.parse_datetime(record.get("MetaData", {}).get("LastUpdatedTime"))
                if stamp is not None and stamp >= since:
                    changed.append((stamp, record))
            for record_id, deleted_at in self.deleted[entity].items():
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

    def _read_route(self, request: SandboxRequest, match: re.Match[str]) -> dict[str, Any]:
        entity = _URL_ENTITY[match["entity"]]
        return {entity: self._get(entity, match["id"])}

    def _write_route(self, request: SandboxRequest, match: re.Match[str]) -> dict[str, Any]:
        entity = _URL_ENTITY[match["entity"]]
        operation = (request.param("operation") or "").lower()
        body = self._body(request)
        return {entity: self._write(entity, operation, body, request.param("requestid"))}

    def _send_route(self, request: SandboxRequest, match: re.Match[str]) -> dict[str, Any]:
        invoice = self._get("Invoice", match["id"])
        send_to = request.param("sendTo")
        if send_to:
            invoice["BillEmail"] = {"Address": send_to}
        address = (invoice.get("BillEmail") or {}).get("Address")
        if not address:
            raise QboFault(
                "6000",
                "A business validation error has occurred while processing your request",
                "Business Validation Error: Email address is missing. Add an email address and try again.",
            )
        invoice["EmailStatus"] = "EmailSent"
        invoice["DeliveryInfo"] = {"DeliveryType": "Email", "DeliveryTime": self._stamp()}
        self._touch(invoice)
        # Deliberately no requestid replay: QBO sends again on every call.
        self._effect("email", invoice["Id"], request.param("requestid"), None, address)
        return {"Invoice": invoice}

    def _batch_route(self, request: SandboxRequest, match: re.Match[str]) -> dict[str, Any]:
        body = self._body(request)
        items = body.get("BatchItemRequest")
        if not isinstance(items, list) or not items:
            raise QboFault("2020", "Required param missing", "BatchItemRequest is required")
        if len(items) > BATCH_LIMIT:
            raise QboFault(
                "1001", "Batch size exceeded", f"Batch request can have at most {BATCH_LIMIT} items"
            )
        responses = []
        for item in items:
            bid = str(item.get("bId", ""))
            try:
                if "Query" in item:
                    responses.append({"bId": bid, "QueryResponse": self._run_query(str(item["Query"]))})
                    continue
                operation = str(item.get("operation") or "create").lower()
                entity = next((name for name in ENTITY_NAMES if name in item), None)
                if entity is None or not isinstance(item[entity], dict):
                    raise QboFault(
                        "2000", "Request has invalid or unsupported property", "no entity in batch item"
                    )
                key = bid or None
                record = self._write(
                    entity, "" if operation in ("create", "update") else operation, item[entity], key
                )
                responses.append({"bId": bid, entity: record})
            except QboFault as fault:
                responses.append({"bId": bid, "Fault": fault.body()})
        return {"BatchItemResponse": responses}

    # ------------------------------------------------------------ writes

    def _write(self, entity: str, operation: str, body: dict[str, Any], key: str | None) -> dict[str, Any]:
        if entity not in WRITABLE:
            raise QboFault("500", "Unsupported Operation", f"Operation on {entity} is not supported.")
        if body.get("Id") not in (None, ""):
            record = self._get(entity, body["Id"])
            if str(body.get("SyncToken", "")) != str(record.get("SyncToken")):
                raise QboFault(
                    "5010",
                    "Stale Object Error",
                    f"Stale Object Error : You and another user were working on {entity} {record['Id']} at "
                    "the same time. The other user finished before you did, so your work was not saved.",
                )
            if operation == "delete":
                self._delete(entity, record)
                return {"Id": record["Id"], "status": "Deleted", "domain": "QBO"}
            if operation == "void":
                if entity != "Invoice":
                    raise QboFault("500", "Unsupported Operation", f"void is not supported on {entity}")
                return self._void(record)
            return self._update(entity, record, body, key)
        if operation in ("delete", "void"):
            raise QboFault("2020", "Required param missing", "Id is required", element="Id")
        creators = {
            "Customer": self._create_customer,
            "Invoice": self._create_invoice,
            "Payment": self._create_payment,
            "CreditMemo": self._create_credit_memo,
            "Attachable": self._create_attachable,
            "Item": self._create_item,
        }
        record = creators[entity](body)
        if entity == "Invoice":
            self._effect(
                "fee_invoice",
                record["Id"],
                key,
                Decimal(str(record["TotalAmt"])),
                record.get("PrivateNote", ""),
            )
        elif entity == "CreditMemo":
            linked = next(
                (t["TxnId"] for t in record.get("LinkedTxn", []) if t.get("TxnType") == "Invoice"), ""
            )
            self._effect(
                "credit_note", linked, key, Decimal(str(record["TotalAmt"])), record.get("PrivateNote", "")
            )
        elif entity == "Attachable":
            refs = record.get("AttachableRef") or []
            target = next(
                (r["EntityRef"]["value"] for r in refs if r.get("EntityRef", {}).get("type") == "Invoice"), ""
            )
            self._effect("note", target, key, None, record.get("Note", ""))
        return record

    def _base_record(self, entity: str) -> dict[str, Any]:
        self.changed()
        stamp = self._stamp()
        return {
            "domain": "QBO",
            "sparse": False,
            "Id": self._new_id(entity),
            "SyncToken": "0",
            "MetaData": {"CreateTime": stamp, "LastUpdatedTime": stamp},
        }

    def _priced_lines(self, lines: Any, *, required: bool = True) -> tuple[list[dict[str, Any]], Decimal]:
        if not isinstance(lines, list) or (required and not lines):
            raise QboFault(
                "2020",
                "Required param missing, need to supply the required value for the API",
                "Required parameter Line is missing in the request",
                element="Line",
            )
        result: list[dict[str, Any]] = []
        total = Decimal(0)
        used_ids = {str(line.get("Id")) for line in lines if isinstance(line, dict) and line.get("Id")}
        next_line = max((int(i) for i in used_ids if i.isdigit()), default=0) + 1
        for line in lines:
            if not isinstance(line, dict):
                raise QboFault(
                    "2000", "Request has invalid or unsupported property", "Line entries must be objects"
                )
            detail_type = line.get("DetailType")
            if detail_type == "SubTotalLineDetail":
                continue
            if detail_type not in _ITEM_DETAIL_TYPES:
                raise QboFault(
                    "2010",
                    "Request has invalid or unsupported property",
                    f"DetailType {detail_type!r}",
                    element="Line",
                )
            if detail_type == "SalesItemLineDetail":
                self._check_item_ref(line.get("SalesItemLineDetail"))
            copy = dict(line)
            copy["Amount"] = _decimal(line.get("Amount", 0), "Line.Amount")
            if not copy.get("Id"):
                copy["Id"] = str(next_line)
                next_line += 1
            total += copy["Amount"]
            result.append(copy)
        for number, line in enumerate(result, start=1):
            line["LineNum"] = number
        result.append({"Amount": total, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}})
        return result, total

    def _check_item_ref(self, detail: Any) -> None:
        """A sales line must name an existing, active Item (QBO refuses the whole request)."""
        ref = detail.get("ItemRef") if isinstance(detail, dict) else None
        value = str(ref.get("value") or "") if isinstance(ref, dict) else ""
        if not value:
            raise QboFault(
                "2020",
                "Required param missing, need to supply the required value for the API",
                "Required parameter Line.SalesItemLineDetail.ItemRef is missing in the request",
                element="Line.SalesItemLineDetail.ItemRef",
            )
        item = self.entities["Item"].get(value)
        if item is None or not item.get("Active", True):
            raise QboFault(
                "2500",
                "Invalid Reference Id",
                f"Invalid Reference Id : Item assigned to this transaction has been deleted or does not "
                f"exist (Item {value})",
                element="Line.SalesItemLineDetail.ItemRef",
            )

    def _create_item(self, body: dict[str, Any]) -> dict[str, Any]:
        name = str(body.get("Name") or "").strip()
        if not name:
            raise QboFault("2020", "Required param missing", "Name is required", element="Name")
        if any(i.get("Name") == name for i in self.entities["Item"].values()):
            raise QboFault("6240", "Duplicate Name Exists Error", "The name supplied already exists. : null")
        item_type = str(body.get("Type") or "Service")
        if item_type not in ITEM_TYPES:
            raise QboFault(
                "2010", "Request has invalid or unsupported property", f"Type {item_type!r}", element="Type"
            )
        if item_type in ("Service", "NonInventory", "Inventory", "Other Charge"):
            ref = body.get("IncomeAccountRef")
            value = str(ref.get("value") or "") if isinstance(ref, dict) else ""
            account = self.entities["Account"].get(value)
            if not value:
                raise QboFault(
                    "6000",
                    "A business validation error has occurred while processing your request",
                    "Business Validation Error: Select an income account for this item.",
                    element="IncomeAccountRef",
                )
            if account is None:
                raise QboFault(
                    "2500",
                    "Invalid Reference Id",
                    f"Invalid Reference Id : Account {value}",
                    element="IncomeAccountRef",
                )
            if account.get("AccountType") not in ("Income", "Other Income"):
                raise QboFault(
                    "6000",
                    "A business validation error has occurred while processing your request",
                    f"Business Validation Error: account {value} is not an income account.",
                    element="IncomeAccountRef",
                )
            body = {**body, "IncomeAccountRef": {"value": account["Id"], "name": account.get("Name", "")}}
        record = {**body, **self._base_record("Item")}
        record.update({"Name": name, "FullyQualifiedName": name, "Type": item_type})
        record.setdefault("Active", True)
        record.setdefault("Taxable", False)
        record.setdefault("UnitPrice", Decimal(0))
        self.entities["Item"][record["Id"]] = record
        return record

    def _create_customer(self, body: dict[str, Any]) -> dict[str, Any]:
        name = str(body.get("DisplayName") or "").strip()
        if not name:
            raise QboFault("2020", "Required param missing", "DisplayName is required", element="DisplayName")
        if any(c.get("DisplayName") == name for c in self.entities["Customer"].values()):
            raise QboFault("6240", "Duplicate Name Exists Error", "The name supplied already exists. : null")
        record = {**body, **self._base_record("Customer")}
        record.setdefault("Active", True)
        record.setdefault("CurrencyRef", {"value": self.home_currency, "name": self.home_currency})
        record.setdefault("Balance", Decimal(0))
        record.setdefault("FullyQualifiedName", name)
        self.entities["Customer"][record["Id"]] = record
        return record

    def _create_invoice(self, body: dict[str, Any]) -> dict[str, Any]:
        customer = self._customer_ref(body)
        lines, total = self._priced_lines(body.get("Line"))
        record = {**body, **self._base_record("Invoice")}
        today = self.clock.today()
        txn_date = body.get("TxnDate") or today.isoformat()
        record.update(
            {
                "Line": lines,
                "TotalAmt": total,
                "Balance": total,
                "TxnDate": txn_date,
                "DueDate": body.get("DueDate")
                or (date.fromisoformat(txn_date) + timedelta(days=30)).isoformat(),
                "DocNumber": body.get("DocNumber") or str(1000 + int(record["Id"])),
                "CurrencyRef": body.get("CurrencyRef") or customer.get("CurrencyRef"),
                "CustomerRef": {"value": customer["Id"], "name": customer.get("DisplayName", "")},
                "EmailStatus": body.get("EmailStatus") or "NotSet",
                "PrintStatus": body.get("PrintStatus") or "NotSet",
                "LinkedTxn": [],
                "TxnTaxDetail": {"TotalTax": Decimal(0)},
            }
        )
        address = (customer.get("PrimaryEmailAddr") or {}).get("Address")
        if address and "BillEmail" not in body:
            record["BillEmail"] = {"Address": address.split(",")[0].strip()}
        self.entities["Invoice"][record["Id"]] = record
        return record

    def _apply_to_invoice(self, invoice_id: str, amount: Decimal, txn_id: str, txn_type: str) -> None:
        invoice = self._get("Invoice", invoice_id)
        balance = Decimal(str(invoice["Balance"]))
        if amount > balance:
            raise QboFault(
                "6000",
                "A business validation error has occurred while processing your request",
                f"Business Validation Error: the amount applied ({amount}) exceeds invoice {invoice_id}'s "
                f"balance ({balance})",
            )
        invoice["Balance"] = balance - amount
        invoice.setdefault("LinkedTxn", []).append({"TxnId": txn_id, "TxnType": txn_type})
        self._touch(invoice)

    def _create_payment(self, body: dict[str, Any]) -> dict[str, Any]:
        customer = self._customer_ref(body)
        total = _decimal(body.get("TotalAmt"), "TotalAmt")
        lines = body.get("Line") or []
        applied: list[tuple[str, Decimal]] = []
        for line in lines:
            amount = _decimal(line.get("Amount"), "Line.Amount")
            for link in line.get("LinkedTxn") or []:
                if link.get("TxnType") == "Invoice":
                    invoice = self._get("Invoice", link.get("TxnId"))
                    if invoice["CustomerRef"]["value"] != customer["Id"]:
                        raise QboFault(
                            "6000", "A business validation error has occurred", "invoice of another customer"
                        )
                    applied.append((invoice["Id"], amount))
        if sum((a for _, a in applied), Decimal(0)) > total:
            raise QboFault(
                "6000", "A business validation error has occurred", "applied amount exceeds TotalAmt"
            )
        record = {**body, **self._base_record("Payment")}
        for invoice_id, amount in applied:
            self._apply_to_invoice(invoice_id, amount, record["Id"], "Payment")
        record.update(
            {
                "TotalAmt": total,
                "UnappliedAmt": total - sum((a for _, a in applied), Decimal(0)),
                "TxnDate": body.get("TxnDate") or self.clock.today().isoformat(),
                "CurrencyRef": body.get("CurrencyRef") or customer.get("CurrencyRef"),
                "CustomerRef": {"value": customer["Id"], "name": customer.get("DisplayName", "")},
            }
        )
        self.entities["Payment"][record["Id"]] = record
        self._recompute_customer_balances()
        return record

    def _create_credit_memo(self, body: dict[str, Any]) -> dict[str, Any]:
        customer = self._customer_ref(body)
        lines, total = self._priced_lines(body.get("Line"))
        record = {**body, **self._base_record("CreditMemo")}
        remaining = total
        linked = [
            t for t in body.get("LinkedTxn") or [] if isinstance(t, dict) and t.get("TxnType") == "Invoice"
        ]
        if len(linked) > 1:
            raise QboFault(
                "6000", "A business validation error has occurred", "link a credit memo to one invoice"
            )
        if linked:
            invoice = self._get("Invoice", linked[0].get("TxnId"))
            applied = min(total, Decimal(str(invoice["Balance"])))
            if applied > 0:
                self._apply_to_invoice(invoice["Id"], applied, record["Id"], "CreditMemo")
            remaining = total - applied
        record.update(
            {
                "Line": lines,
                "TotalAmt": total,
                "RemainingCredit": remaining,
                "Balance": remaining,
                "TxnDate": body.get("TxnDate") or self.clock.today().isoformat(),
                "DocNumber": body.get("DocNumber") or f"CM-{record['Id']}",
                "CurrencyRef": body.get("CurrencyRef") or customer.get("CurrencyRef"),
                "CustomerRef": {"value": customer["Id"], "name": customer.get("DisplayName", "")},
                "LinkedTxn": [{"TxnId": t["TxnId"], "TxnType": "Invoice"} for t in linked],
                "EmailStatus": "NotSet",
            }
        )
        self.entities["CreditMemo"][record["Id"]] = record
        self._recompute_customer_balances()
        return record

    def _create_attachable(self, body: dict[str, Any]) -> dict[str, Any]:
        note = body.get("Note")
        if not note and not body.get("FileName"):
            raise QboFault("2020", "Required param missing", "Note or FileName is required", element="Note")
        refs = body.get("AttachableRef") or []
        for ref in refs:
            entity_ref = ref.get("EntityRef") or {}
            entity = _URL_ENTITY.get(str(entity_ref.get("type", "")).lower())
            if entity is None:
                raise QboFault("2010", "Request has invalid or unsupported property", "EntityRef.type")
            self._get(entity, entity_ref.get("value"))
        record = {**body, **self._base_record("Attachable")}
        self.entities["Attachable"][record["Id"]] = record
        return record

    def _update(
        self, entity: str, record: dict[str, Any], body: dict[str, Any], key: str | None
    ) -> dict[str, Any]:
        if entity not in ("Customer", "Invoice"):
            raise QboFault(
                "500", "Unsupported Operation", f"update of {entity} is not supported by the sandbox"
            )
        protected = {"Id", "SyncToken", "MetaData", "domain", "sparse", "Balance", "TotalAmt"}
        old_line_ids = {str(line.get("Id")) for line in record.get("Line", []) if line.get("Id")}
        if body.get("sparse") in (True, "true"):
            updated = dict(record)
            updated.update({k: v for k, v in body.items() if k not in protected})
        else:
            updated = {k: v for k, v in body.items() if k not in protected}
            for name in protected:
                if name in record:
                    updated[name] = record[name]
        if entity == "Customer":
            name = str(updated.get("DisplayName") or "").strip()
            if not name:
                raise QboFault(
                    "2020", "Required param missing", "DisplayName is required", element="DisplayName"
                )
            if any(
                c.get("DisplayName") == name and c["Id"] != record["Id"]
                for c in self.entities["Customer"].values()
            ):
                raise QboFault(
                    "6240", "Duplicate Name Exists Error", "The name supplied already exists. : null"
                )
        else:
            self._customer_ref(updated)
            added = [
                line
                for line in updated.get("Line", [])
                if isinstance(line, dict)
                and line.get("DetailType") in _ITEM_DETAIL_TYPES
                and str(line.get("Id") or "") not in old_line_ids
            ]
            lines, total = self._priced_lines(updated.get("Line"))
            paid = Decimal(str(record["TotalAmt"])) - Decimal(str(record["Balance"]))
            if total < paid:
                raise QboFault(
                    "6000", "A business validation error has occurred", "total below amounts received"
                )
            updated["Line"] = lines
            updated["TotalAmt"] = total
            updated["Balance"] = total - paid
            for line in added:
                self._effect(
                    "fee_line",
                    record["Id"],
                    key,
                    _decimal(line.get("Amount", 0), "Amount"),
                    line.get("Description", ""),
                )
        record.clear()
        record.update(updated)
        self._touch(record)
        if entity == "Invoice":
            self._recompute_customer_balances()
        return record

    def _void(self, invoice: dict[str, Any]) -> dict[str, Any]:
        for line in invoice.get("Line", []):
            line["Amount"] = Decimal(0)
        invoice["TotalAmt"] = Decimal(0)
        invoice["Balance"] = Decimal(0)
        invoice["PrivateNote"] = mapping.VOIDED_NOTE
        self._touch(invoice)
        return invoice

    def _delete(self, entity: str, record: dict[str, Any]) -> None:
        self.changed()
        if entity == "Invoice" and record.get("LinkedTxn"):
            raise QboFault("6480", "Deletion failed", "This transaction is linked to other transactions")
        del self.entities[entity][record["Id"]]
        self.deleted[entity][record["Id"]] = self._stamp()
