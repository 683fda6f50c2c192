"""The Xero organisation in memory: its records, the derived amounts (paid, credited, due), seeding
from a generated company, the ledger in the neutral model (`truth`) and the state file's contents.

Ids are UUIDs derived from the generator's ids (uuid5), so a seed always gives the same company.
Nothing here locks: the sandbox calls in under its lock (HTTP handlers run under the same lock).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from connectors.sandbox.clock import SandboxClock
from connectors.sandbox.effects import Effect, EffectLog, ReplayStore
from connectors.sandbox.generator import GeneratedCompany
from connectors.sandbox.messages import JsonObject
from connectors.sandbox.xero.records import XContact, XCreditNote, XHistory, XInvoice, XPayment
from connectors.xero.mapping import KIND_GROUP_PREFIX, LANGUAGE_GROUP_PREFIX
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
from policies.model.money import Money

DEFAULT_TENANT_ID = "6f1c3a52-8f0e-4c43-9d5e-2b7a1c0de001"
_NAMESPACE = uuid.UUID("2f6f0a3e-5d4b-4b8e-9a57-0c1d2e3f4a5b")

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


def ms_truncate(moment: datetime) -> datetime:
    """Xero keeps UpdatedDateUTC to the millisecond."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


class XeroState:
    """One Xero organisation's ledger. `version` changes with every write (cached list results
    are keyed by it); code that edits the records directly must call `changed()`."""

    def __init__(self, clock: SandboxClock, *, tenant_id: str, tenant_name: str, base_currency: str) -> None:
        self.clock = clock
        self.tenant_id = tenant_id
        self.tenant_name = tenant_name
        self.base_currency = base_currency
        self.version = 0
        self.effects = EffectLog(clock)
        self.replays = ReplayStore()  # Idempotency-Key answers, by "METHOD path key"
        self.reset()

    def reset(self) -> None:
        self.contacts: dict[str, XContact] = {}
        self.invoices: dict[str, XInvoice] = {}
        self.payments: dict[str, XPayment] = {}
        self.credit_notes: dict[str, XCreditNote] = {}
        self.history: dict[str, list[XHistory]] = {}
        self.replays.replace(())
        self.effects.replace(())
        self.invoice_seq = 0
        self.credit_seq = 0
        self.changed()

    def changed(self) -> None:
        """Bump the state version: cached list results are recomputed."""
        self.version += 1

    def now(self) -> datetime:
        """The sandbox clock's now, as Xero stamps records (milliseconds)."""
        return ms_truncate(self.clock.now())

    def uuid(self, kind: str, neutral_id: str) -> str:
        """The stable UUID of a generator record (or of a derived object: group, line, online...)."""
        return str(uuid.uuid5(_NAMESPACE, f"{self.tenant_id}:{kind}:{neutral_id}"))

    # ------------------------------------------------------------ derived amounts

    def paid(self, xi: XInvoice) -> Decimal:
        payments = self.payments
        return sum(
            (payments[p].amount for p in xi.payment_ids if payments[p].status != "DELETED"),
            Decimal(0),
        )

    @staticmethod
    def credited(xi: XInvoice) -> Decimal:
        return sum((c[1] for c in xi.credited), Decimal(0))

    def due(self, xi: XInvoice) -> Decimal:
        if xi.status in ("VOIDED", "DELETED"):
            return Decimal(0)
        return xi.total - self.paid(xi) - self.credited(xi)

    def settle_status(self, xi: XInvoice, day: date) -> None:
        """PAID when nothing is due any more, back to AUTHORISED when something is again."""
        if xi.status == "AUTHORISED" and self.due(xi) <= 0:
            xi.status = "PAID"
            xi.fully_paid_on = day
        elif xi.status == "PAID" and self.due(xi) > 0:
            xi.status = "AUTHORISED"
            xi.fully_paid_on = None

    def apply_payment(self, xi: XInvoice, amount: Decimal, on: date, reference: object = None) -> XPayment:
        xp = XPayment(
            id=str(uuid.uuid4()),
            invoice_id=xi.id,
            date=on,
            amount=amount,
            status="AUTHORISED",
            updated=self.now(),
            reference=str(reference) if reference else None,
        )
        self.payments[xp.id] = xp
        xi.payment_ids.append(xp.id)
        self.settle_status(xi, on)
        xi.updated = self.now()
        return xp

    # ------------------------------------------------------------ seeding

    def seed(self, company: GeneratedCompany) -> None:
        """Replace the ledger with a generated company."""
        self.reset()
        now = self.clock.now()
        # The generator stamps records at office hours on their day, possibly later today than the
        # sandbox clock: Xero never reports an UpdatedDateUTC in the future (a pull right after
        # seeding would see those records again as "changed"), so clamp them to the past.
        ceiling = now - timedelta(hours=1)

        def stamp(moment: datetime | None) -> datetime:
            return ms_truncate(min(moment, ceiling) if moment is not None else ceiling)

        for customer in company.customers:
            groups = list(customer.tags)
            if customer.kind is not None:
                groups.append(f"{KIND_GROUP_PREFIX}{customer.kind.value}")
            if customer.language:
                groups.append(f"{LANGUAGE_GROUP_PREFIX}{customer.language}")
            contact = XContact(
                id=self.uuid("customer", customer.id),
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
                invoice_id = self.uuid("invoice", allocation.invoice_id)
                xp = XPayment(
                    id=self.uuid(
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
            self.credit_seq += 1
            xc = XCreditNote(
                id=self.uuid("credit_note", note.id),
                number=note.number,
                contact_id=self.uuid("customer", note.customer_id),
                date=note.date,
                currency=note.total.currency,
                total=note.total.amount,
                lines=[("Credit", note.total.amount)],
                status="AUTHORISED",
                reference=note.reference,
                updated=stamp(note.updated_at),
            )
            for index, allocation in enumerate(note.allocations):
                invoice_id = self.uuid("invoice", allocation.invoice_id)
                xc.allocations.append(
                    (self.uuid("allocation", f"{note.id}:{index}"), invoice_id, allocation.amount, note.date)
                )
                self.invoices[invoice_id].credited.append((xc.id, allocation.amount, note.date))
            if xc.total - sum(a[2] for a in xc.allocations) <= 0:
                xc.status = "PAID"
            self.credit_notes[xc.id] = xc
        for xi in self.invoices.values():
            if xi.status == "PAID" and xi.fully_paid_on is None:
                days = [self.payments[p].date for p in xi.payment_ids] + [c[2] for c in xi.credited]
                xi.fully_paid_on = max(days) if days else xi.date
        self.invoice_seq = len(self.invoices)
        self.changed()

    def _seed_invoice(self, invoice: Invoice, ceiling: datetime) -> None:
        xi = XInvoice(
            id=self.uuid("invoice", invoice.id),
            number=invoice.number,
            type="ACCREC",
            contact_id=self.uuid("customer", invoice.customer_id),
            date=invoice.issue_date,
            due_date=invoice.due_date,
            currency=invoice.currency,
            status=_STATUS_FROM_NEUTRAL[invoice.status],
            lines=[(line.description, line.amount) for line in invoice.lines]
            or [("Services", invoice.total.amount)],
            total=invoice.total.amount,
            sent=invoice.email_status == "EmailSent",
            reference=invoice.reference,
            updated=ms_truncate(min(invoice.updated_at, ceiling) if invoice.updated_at else ceiling),
        )
        self.invoices[xi.id] = xi

    # ------------------------------------------------------------ the neutral model

    def truth(self) -> LedgerSnapshot:
        """Every record of the ledger in the neutral model (archived contacts with active=False,
        ACCREC invoices only, deleted payments and voided credit notes left out)."""
        customers = {c.id: self._neutral_customer(c) for c in self.contacts.values()}
        invoices = {xi.id: self._neutral_invoice(xi) for xi in self.invoices.values() if xi.type == "ACCREC"}
        payments = {
            xp.id: self._neutral_payment(xp) for xp in self.payments.values() if xp.status != "DELETED"
        }
        notes = {
            xc.id: self._neutral_credit_note(xc)
            for xc in self.credit_notes.values()
            if xc.status not in ("VOIDED", "DELETED")
        }
        return LedgerSnapshot(customers=customers, invoices=invoices, payments=payments, credit_notes=notes)

    @staticmethod
    def _neutral_customer(contact: XContact) -> Customer:
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
            balance=Money(self.due(xi), xi.currency),
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

    @staticmethod
    def _neutral_credit_note(xc: XCreditNote) -> CreditNote:
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

    # ------------------------------------------------------------ the state file

    def dump(self) -> JsonObject:
        """The state file's contents (dates, datetimes and decimals tagged, see `_encode`)."""
        return {
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
                for k, (status, body, headers) in self.replays.items()
            },
            "effects": [_encode(vars_of_effect(e)) for e in self.effects],
            "seq": [self.invoice_seq, self.credit_seq],
        }

    def restore(self, data: JsonObject) -> None:
        """Replace the ledger with a state file's contents (`dump`)."""
        self.reset()
        self.tenant_id = data.get("tenant_id", self.tenant_id)
        for raw in data.get("contacts", []):
            contact = XContact(**_decode(raw))
            self.contacts[contact.id] = contact
        for raw in data.get("invoices", []):
            xi = XInvoice(**_decode(raw))
            xi.lines = _tuples(xi.lines)
            xi.credited = _tuples(xi.credited)
            self.invoices[xi.id] = xi
        for raw in data.get("payments", []):
            xp = XPayment(**_decode(raw))
            self.payments[xp.id] = xp
        for raw in data.get("credit_notes", []):
            xc = XCreditNote(**_decode(raw))
            xc.lines = _tuples(xc.lines)
            xc.allocations = _tuples(xc.allocations)
            self.credit_notes[xc.id] = xc
        self.history = {k: [XHistory(**_decode(h)) for h in v] for k, v in data.get("history", {}).items()}
        self.replays.replace(
            (k, (int(v[0]), v[1].encode("utf-8"), dict(v[2]))) for k, v in data.get("idempotent", {}).items()
        )
        self.effects.replace(Effect(**_decode(e)) for e in data.get("effects", []))
        self.invoice_seq, self.credit_seq = data.get("seq", [len(self.invoices), len(self.credit_notes)])
        self.changed()


def vars_of_effect(effect: Effect) -> dict[str, Any]:
    return {
        "kind": effect.kind,
        "invoice_id": effect.invoice_id,
        "idempotency_key": effect.idempotency_key,
        "amount": effect.amount,
        "at": effect.at,
        "detail": effect.detail,
    }


def _tuples(rows: Iterable[Any]) -> list[Any]:
    """JSON arrays back into the tuples they were saved from (lines, credits, allocations)."""
    return [tuple(x) for x in rows]


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
