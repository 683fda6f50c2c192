"""Seeded companies in the neutral model, for sandboxes, tests, benchmarks and the demo.

Deterministic by seed; dates relative to `today`. Behaviour follows what credit-control guides
describe: most customers pay within terms, a tail pays 30-120 days late, about 5% never pay;
some pay in two parts, a few invoices get credit notes, about 2% of customers are in dispute.
No external data: names come from small per-country word lists below.

`iter_company` streams invoices with their payments and credit notes (for 1M-invoice benchmarks);
`generate_company` collects the same stream into lists.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from policies.model.ledger import (
    Allocation,
    CreditNote,
    Customer,
    CustomerKind,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Payment,
)
from policies.model.money import Money, minor_unit

TERMS_DAYS = (30, 45, 60)
DISPUTED_TAG = "disputed"


@dataclass(slots=True)
class GeneratedCompany:
    customers: list[Customer] = field(default_factory=list)
    invoices: list[Invoice] = field(default_factory=list)
    payments: list[Payment] = field(default_factory=list)
    credit_notes: list[CreditNote] = field(default_factory=list)
    today: date | None = None
    country: str = ""
    currency: str = ""
    language: str = ""


@dataclass(frozen=True, slots=True)
class GeneratedInvoice:
    """One invoice with the payments and credit notes that settle it (streaming unit)."""

    invoice: Invoice
    payments: tuple[Payment, ...]
    credit_notes: tuple[CreditNote, ...]


# ---------------------------------------------------------------- names per country

_SURNAMES = {
    "FR": (
        "Martin",
        "Bernard",
        "Dubois",
        "Thomas",
        "Robert",
        "Richard",
        "Petit",
        "Durand",
        "Leroy",
        "Moreau",
        "Simon",
        "Laurent",
        "Lefebvre",
        "Michel",
        "Garcia",
        "David",
        "Bertrand",
        "Roux",
        "Vincent",
        "Fournier",
        "Morel",
        "Girard",
        "Andre",
        "Mercier",
        "Dupont",
        "Lambert",
        "Bonnet",
        "Francois",
        "Martinez",
        "Legrand",
    ),
    "GB": (
        "Smith",
        "Jones",
        "Taylor",
        "Brown",
        "Williams",
        "Wilson",
        "Johnson",
        "Davies",
        "Robinson",
        "Wright",
        "Thompson",
        "Evans",
        "Walker",
        "White",
        "Roberts",
        "Green",
        "Hall",
        "Wood",
        "Jackson",
        "Clarke",
        "Patel",
        "Hughes",
        "Edwards",
        "Turner",
        "Hill",
        "Cooper",
        "Ward",
        "Morris",
        "King",
    ),
    "DE": (
        "Müller",
        "Schmidt",
        "Schneider",
        "Fischer",
        "Weber",
        "Meyer",
        "Wagner",
        "Becker",
        "Schulz",
        "Hoffmann",
        "Koch",
        "Richter",
        "Bauer",
        "Klein",
        "Wolf",
        "Schröder",
        "Neumann",
        "Schwarz",
        "Zimmermann",
        "Braun",
        "Krüger",
        "Hofmann",
        "Hartmann",
        "Lange",
        "Schmitt",
        "Werner",
    ),
    "US": (
        "Miller",
        "Davis",
        "Garcia",
        "Rodriguez",
        "Martinez",
        "Anderson",
        "Taylor",
        "Moore",
        "Lee",
        "Harris",
        "Clark",
        "Lewis",
        "Young",
        "Allen",
        "Scott",
        "Nguyen",
        "Adams",
        "Baker",
        "Nelson",
        "Carter",
        "Mitchell",
        "Perez",
        "Campbell",
        "Parker",
        "Collins",
        "Stewart",
        "Morgan",
    ),
}
_TRADES = {
    "FR": (
        "Bâtiment",
        "Transports",
        "Conseil",
        "Imprimerie",
        "Boulangerie",
        "Menuiserie",
        "Plomberie",
        "Informatique",
        "Distribution",
        "Électricité",
        "Logistique",
        "Architecture",
        "Traiteur",
    ),
    "GB": (
        "Building",
        "Haulage",
        "Consulting",
        "Printing",
        "Bakery",
        "Joinery",
        "Plumbing",
        "IT Services",
        "Wholesale",
        "Electrical",
        "Logistics",
        "Architects",
        "Catering",
    ),
    "DE": (
        "Bau",
        "Spedition",
        "Beratung",
        "Druckerei",
        "Bäckerei",
        "Tischlerei",
        "Sanitär",
        "IT-Service",
        "Großhandel",
        "Elektro",
        "Logistik",
        "Architekten",
        "Catering",
    ),
    "US": (
        "Construction",
        "Trucking",
        "Consulting",
        "Printing",
        "Bakery",
        "Woodworks",
        "Plumbing",
        "Tech",
        "Supply",
        "Electric",
        "Logistics",
        "Design",
        "Catering",
    ),
}
_FORMS = {
    "FR": ("SARL", "SAS", "SA", "EURL", "SASU"),
    "GB": ("Ltd", "Ltd", "LLP", "PLC", "& Sons"),
    "DE": ("GmbH", "GmbH", "AG", "KG", "GmbH & Co. KG"),
    "US": ("Inc.", "LLC", "LLC", "Corp.", "Co."),
}
_TLD = {"FR": "fr", "GB": "co.uk", "DE": "de", "US": "com"}
_LANGUAGE = {
    "FR": "fr",
    "GB": "en",
    "DE": "de",
    "US": "en",
    "IE": "en",
    "AU": "en",
    "NZ": "en",
    "BE": "fr",
    "CH": "de",
    "AT": "de",
    "LU": "fr",
    "CA": "en",
}
_NAME_COUNTRY = {
    "UK": "GB",
    "IE": "GB",
    "AU": "GB",
    "NZ": "GB",
    "BE": "FR",
    "LU": "FR",
    "CH": "DE",
    "AT": "DE",
    "CA": "US",
}
_FOREIGN_COUNTRY_FOR_CURRENCY = {"EUR": "DE", "GBP": "GB", "USD": "US", "CHF": "CH", "CAD": "CA", "AUD": "AU"}
_LINE_WORDS = {
    "fr": ("Prestation", "Fourniture", "Main d'œuvre", "Transport", "Maintenance", "Licence"),
    "de": ("Leistung", "Lieferung", "Arbeitszeit", "Transport", "Wartung", "Lizenz"),
    "en": ("Services", "Supplies", "Labour", "Delivery", "Maintenance", "Licence"),
}
_ASCII = str.maketrans(
    {
        "é": "e",
        "è": "e",
        "ê": "e",
        "à": "a",
        "ç": "c",
        "ô": "o",
        "ü": "ue",
        "ö": "oe",
        "ä": "ae",
        "ß": "ss",
        "É": "e",
        "œ": "oe",
        "'": "",
        "&": "and",
        ".": "",
    }
)


def _slug(text: str) -> str:
    cleaned = text.lower().translate(_ASCII)
    return "".join(ch if ch.isalnum() else "-" for ch in cleaned).strip("-").replace("--", "-")


def _name_country(country: str) -> str:
    country = country.upper()
    country = _NAME_COUNTRY.get(country, country)
    return country if country in _SURNAMES else "US"


def _company_name(rng: random.Random, country: str) -> str:
    key = _name_country(country)
    surname = rng.choice(_SURNAMES[key])
    trade = rng.choice(_TRADES[key])
    form = rng.choice(_FORMS[key])
    if rng.random() < 0.3:
        surname = (
            f"{surname} {rng.choice(('&', 'et' if key == 'FR' else 'und' if key == 'DE' else '&'))} "
            f"{rng.choice(_SURNAMES[key])}"
        )
    return f"{surname} {trade} {form}" if key != "FR" else f"{trade} {surname} {form}"


# ---------------------------------------------------------------- generation


def _amount(cents: int, digits: int) -> Decimal:
    return Decimal(cents).scaleb(-digits)


_MIDNIGHT = time(0, 0)


STAMP_MARGIN = timedelta(hours=1)  # wider than any connector's cursor overlap (QBO 60 s, Xero 5 min)


def latest_stamp(today: date, now: datetime | None = None) -> datetime:
    """The latest update time a generated record may carry: the current time of day on `today`
    (the sandboxes' clock is real time shifted by whole days), floored to the hour so that two
    generations within the hour are identical, minus a margin. Records of today are otherwise
    stamped at office hours possibly later than now, and every "no-change" incremental pull right
    after seeding would see them as changed."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    shifted = moment + timedelta(days=(today - moment.date()).days)
    return shifted.replace(minute=0, second=0, microsecond=0) - STAMP_MARGIN


def _stamp(day: date, rng: random.Random, latest: datetime) -> datetime:
    """A plausible office-hours time on `day` (07:00-19:00 UTC), never after `latest`."""
    moment = datetime.combine(day, _MIDNIGHT, UTC) + timedelta(seconds=25200 + int(rng.random() * 43200))
    return min(moment, latest)


def _between(rng: random.Random, low: int, high: int) -> int:
    """Uniform int in [low, high): rng.randrange is several times slower on hot paths."""
    return low + int(rng.random() * (high - low))


def generate_customers(
    rng: random.Random,
    *,
    customers: int,
    today: date,
    country: str,
    currency: str,
    other_currencies: tuple[str, ...],
    language: str,
    latest: datetime | None = None,
) -> list[Customer]:
    latest = latest or latest_stamp(today)
    result: list[Customer] = []
    used: set[str] = set()
    for index in range(customers):
        customer_currency = currency
        customer_country = country.upper()
        if other_currencies and rng.random() < 0.12:
            customer_currency = rng.choice(other_currencies)
            customer_country = _FOREIGN_COUNTRY_FOR_CURRENCY.get(customer_currency, customer_country)
        name = _company_name(rng, customer_country)
        while name in used:
            name = f"{name} {rng.randrange(2, 99)}"
        used.add(name)
        domain = f"{_slug(name)[:40]}.{_TLD.get(_name_country(customer_country), 'com')}"
        emails = (f"compta@{domain}" if customer_country in ("FR", "BE", "LU") else f"accounts@{domain}",)
        tags: tuple[str, ...] = ()
        roll = rng.random()
        if roll < 0.02:
            tags = (DISPUTED_TAG,)
        elif roll < 0.06:
            tags = ("key",)
        lang = language if customer_country == country.upper() else _LANGUAGE.get(customer_country, "en")
        kind = CustomerKind.B2C if rng.random() < 0.05 else CustomerKind.B2B
        updated = _stamp(today - timedelta(days=rng.randrange(1, 720)), rng, latest)
        result.append(
            Customer(
                id=str(index + 1),
                name=name,
                emails=emails,
                language=lang,
                country=customer_country,
                kind=kind,
                tags=tags,
                currency=customer_currency,
                active=rng.random() > 0.01,
                updated_at=updated,
            )
        )
    return result


def iter_company(
    *,
    seed: int,
    customers: int,
    invoices: int,
    today: date,
    country: str,
    currency: str,
    other_currencies: tuple[str, ...] = (),
    history_days: int = 540,
    language: str,
    now: datetime | None = None,
) -> tuple[list[Customer], Iterator[GeneratedInvoice]]:
    """Customers (a list) and a lazy stream of invoices with their settlements. No update, payment,
    credit note or email is stamped after `latest_stamp(today, now)` (now: the current time)."""
    latest = latest_stamp(today, now)
    rng = random.Random(seed)
    customer_list = generate_customers(
        rng,
        customers=max(1, customers),
        today=today,
        country=country,
        currency=currency.upper(),
        other_currencies=tuple(c.upper() for c in other_currencies if c.upper() != currency.upper()),
        language=language,
        latest=latest,
    )
    return customer_list, _iter_invoices(
        random.Random(seed * 7919 + 1), customer_list, invoices, today, history_days, language, latest
    )


def _iter_invoices(
    rng: random.Random,
    customers: list[Customer],
    count: int,
    today: date,
    history_days: int,
    language: str,
    latest: datetime,
) -> Iterator[GeneratedInvoice]:
    terms = {c.id: TERMS_DAYS[int(c.id) % 3] for c in customers}
    # Each customer has a payment habit: good payers dominate, a few are chronically late.
    habit = {c.id: rng.choices((0, 1, 2), weights=(70, 22, 8))[0] for c in customers}
    weights = [rng.paretovariate(1.6) for _ in customers]  # a few customers carry many invoices
    picks = rng.choices(customers, weights=weights, k=count)
    payment_seq = 0
    credit_seq = 0
    words = _LINE_WORDS.get(language, _LINE_WORDS["en"])
    for index, customer in enumerate(picks):
        cur = customer.currency or "EUR"
        digits = minor_unit(cur)
        scale = 10**digits
        issue = today - timedelta(days=_between(rng, 0, history_days))
        due = issue + timedelta(days=terms[customer.id])
        # lognormal amounts: median about 1,200 in the currency's units
        total_cents = max(50 * scale // 100 or 1, int(rng.lognormvariate(7.1, 1.0) * scale))
        if rng.random() < 0.55:
            first = total_cents * _between(rng, 30, 80) // 100
            line_cents: tuple[int, ...] = (first, total_cents - first)
        else:
            line_cents = (total_cents,)
        lines = tuple(InvoiceLine(rng.choice(words), _amount(c, digits)) for c in line_cents)
        number = f"INV-{index + 1:06d}"
        disputed = DISPUTED_TAG in customer.tags and rng.random() < 0.5
        reference = (
            f"DISPUTE: {rng.choice(('quantities', 'price', 'quality', 'not received'))}"
            if (disputed or rng.random() < 0.002)
            else (f"PO {_between(rng, 10000, 99999)}" if rng.random() < 0.3 else None)
        )

        status_roll = rng.random()
        if status_roll < 0.005 and (today - issue).days < 30:
            status = InvoiceStatus.DRAFT
        elif status_roll < 0.008:
            status = InvoiceStatus.VOID
        else:
            status = InvoiceStatus.OPEN

        payments: list[Payment] = []
        notes: list[CreditNote] = []
        settled = 0
        last_event = issue
        if status is InvoiceStatus.OPEN:
            # credit notes first (rare): a partial reduction agreed with the customer
            if rng.random() < 0.012:
                credit_seq += 1
                note_day = min(today, issue + timedelta(days=_between(rng, 1, 40)))
                note_cents = total_cents * _between(rng, 10, 35) // 100
                note_amount = _amount(note_cents, digits)
                notes.append(
                    CreditNote(
                        id=str(credit_seq),
                        number=f"CN-{credit_seq:05d}",
                        customer_id=customer.id,
                        date=note_day,
                        total=Money(note_amount, cur),
                        remaining=Money(_amount(0, digits), cur),
                        allocations=(Allocation(str(index + 1), note_amount),),
                        reference=number,
                        updated_at=_stamp(note_day, rng, latest),
                    )
                )
                settled += note_cents
                last_event = max(last_event, note_day)
            pay_day = _payment_day(rng, habit[customer.id], issue, due, disputed)
            if pay_day is not None and pay_day <= today:
                remaining = total_cents - settled
                parts = [remaining]
                part_days = [pay_day]
                if rng.random() < 0.08 and remaining > 2:
                    first = remaining * _between(rng, 20, 70) // 100
                    second_day = pay_day + timedelta(days=_between(rng, 10, 60))
                    parts = [first, remaining - first]
                    part_days = [pay_day, second_day]
                for cents, day in zip(parts, part_days, strict=True):
                    if day > today or cents <= 0:
                        break
                    payment_seq += 1
                    amount = _amount(cents, digits)
                    payments.append(
                        Payment(
                            id=str(payment_seq),
                            customer_id=customer.id,
                            date=day,
                            amount=Money(amount, cur),
                            allocations=(Allocation(str(index + 1), amount),),
                            updated_at=_stamp(day, rng, latest),
                        )
                    )
                    settled += cents
                    last_event = max(last_event, day)
        balance_cents = 0 if status is InvoiceStatus.VOID else total_cents - settled
        if status is InvoiceStatus.OPEN and balance_cents == 0:
            status = InvoiceStatus.PAID
        emailed = status in (InvoiceStatus.OPEN, InvoiceStatus.PAID) and rng.random() < 0.85
        sent_at = _stamp(issue, rng, latest) if emailed else None
        invoice = Invoice(
            id=str(index + 1),
            number=number,
            customer_id=customer.id,
            issue_date=issue,
            due_date=due,
            currency=cur,
            total=Money(_amount(total_cents, digits), cur),
            balance=Money(_amount(balance_cents, digits), cur),
            status=status,
            lines=lines,
            email_status="EmailSent" if emailed else "NotSet",
            last_emailed_at=sent_at,
            reference=reference,
            updated_at=_stamp(last_event, rng, latest),
        )
        yield GeneratedInvoice(invoice, tuple(payments), tuple(notes))


def _payment_day(rng: random.Random, habit: int, issue: date, due: date, disputed: bool) -> date | None:
    """When this invoice gets paid (None: never). habit 0 good, 1 sometimes late, 2 chronic."""
    if disputed and rng.random() < 0.7:
        return None
    roll = rng.random()
    never, late_tail, slightly_late = ((0.02, 0.05, 0.15), (0.05, 0.15, 0.35), (0.15, 0.40, 0.30))[habit]
    if roll < never:
        return None
    roll -= never
    if roll < late_tail:
        return due + timedelta(days=_between(rng, 30, 121))
    roll -= late_tail
    if roll < slightly_late:
        return due + timedelta(days=_between(rng, 1, 30))
    span = max(1, (due - issue).days)
    return issue + timedelta(days=_between(rng, 0, span + 1))


def generate_company(
    *,
    seed: int,
    customers: int,
    invoices: int,
    today: date,
    country: str,
    currency: str,
    other_currencies: tuple[str, ...] = (),
    history_days: int = 540,
    language: str,
    now: datetime | None = None,
) -> GeneratedCompany:
    customer_list, stream = iter_company(
        seed=seed,
        customers=customers,
        invoices=invoices,
        today=today,
        country=country,
        currency=currency,
        other_currencies=other_currencies,
        history_days=history_days,
        language=language,
        now=now,
    )
    company = GeneratedCompany(
        customers=customer_list,
        today=today,
        country=country.upper(),
        currency=currency.upper(),
        language=language,
    )
    for item in stream:
        company.invoices.append(item.invoice)
        company.payments.extend(item.payments)
        company.credit_notes.extend(item.credit_notes)
    return company
