"""Typed action details (policies.model.details) <-> the JSON object of an outbox row.

The JSON shape is the one the outbox has always stored (amounts as strings, dates ISO 8601), so
rows written before the details were typed read back. The same JSON object also holds what the
effect reported when it was done (message id, files written, `applied_on`, ...): `decode_details`
returns those keys apart, as the record's outcome.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from policies.model.details import (
    CreditLimitDetails,
    CreditNoteDetails,
    Details,
    DiscountTerms,
    FeeDetails,
    InstalmentTerms,
    InterestSegmentTerms,
    NoteDetails,
    NoticeDetails,
    NoticeLine,
    SupersededDetails,
    ThanksDetails,
    details_type,
)
from policies.model.kinds import ActionKind

JSON = dict[str, Any]


def _str(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _dec(value: Any) -> Decimal | None:
    return None if value is None or value == "" else Decimal(str(value))


def _day(value: Any) -> date | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _int(value: Any) -> int | None:
    return None if value is None or value == "" else int(value)


def _drop_none(data: JSON) -> JSON:
    return {key: value for key, value in data.items() if value is not None}


# ---------------------------------------------------------------- lines


def _encode_line(line: NoticeLine) -> JSON:
    data: JSON = {
        "id": line.id,
        "number": line.number,
        "issue_date": line.issue_date.isoformat() if line.issue_date else None,
        "due_date": line.due_date.isoformat() if line.due_date else None,
        "total": _str(line.total),
        "balance": _str(line.balance),
        "days_late": line.days_late,
        "pay_link": line.pay_link,
        "statutory_compensation": _str(line.statutory_compensation),
    }
    if line.discount is not None:
        data["discount"] = {
            "percent": str(line.discount.percent),
            "amount": str(line.discount.amount),
            "deadline": line.discount.deadline.isoformat(),
            "pay": str(line.discount.pay),
        }
    return _drop_none(data)


def _decode_line(data: Mapping[str, Any]) -> NoticeLine:
    raw = data.get("discount")
    discount = None
    if isinstance(raw, Mapping):
        discount = DiscountTerms(
            Decimal(str(raw["percent"])),
            Decimal(str(raw["amount"])),
            date.fromisoformat(str(raw["deadline"])),
            Decimal(str(raw["pay"])),
        )
    return NoticeLine(
        id=str(data["id"]),
        number=str(data.get("number", data["id"])),
        issue_date=_day(data.get("issue_date")),
        due_date=_day(data.get("due_date")),
        total=_dec(data.get("total")),
        balance=_dec(data.get("balance")),
        days_late=_int(data.get("days_late")),
        discount=discount,
        pay_link=str(data["pay_link"]) if data.get("pay_link") else None,
        statutory_compensation=_dec(data.get("statutory_compensation")),
    )


def _lines(data: Mapping[str, Any]) -> tuple[NoticeLine, ...]:
    raw = data.get("invoices") or ()
    return tuple(_decode_line(item) for item in raw if isinstance(item, Mapping) and "id" in item)


# ---------------------------------------------------------------- per type


def _encode_notice(d: NoticeDetails) -> JSON:
    data: JSON = {
        "ladder": d.ladder or None,
        "offset_days": d.offset_days,
        "customer_name": d.customer_name or None,
        "language": d.language,
        "balance": _str(d.balance),
        "invoices": [_encode_line(line) for line in d.invoices],
        "demand_days": d.demand_days,
        "repeat": d.repeat,
    }
    if d.instalment is not None:
        data["plan_id"] = d.instalment.plan_id
        data["instalment_due"] = d.instalment.due_date.isoformat()
        data["instalment_amount"] = str(d.instalment.amount)
    if d.previous_delivery is not None:
        data["previous_delivery"] = {
            invoice_id: moment.isoformat() if moment else None for invoice_id, moment in d.previous_delivery
        }
    return _drop_none(data)


def _decode_notice(data: Mapping[str, Any]) -> NoticeDetails:
    instalment = None
    if data.get("instalment_due"):
        instalment = InstalmentTerms(
            plan_id=str(data.get("plan_id", "")),
            due_date=date.fromisoformat(str(data["instalment_due"])),
            amount=Decimal(str(data.get("instalment_amount", "0"))),
        )
    previous = data.get("previous_delivery")
    return NoticeDetails(
        ladder=str(data.get("ladder", "")),
        offset_days=_int(data.get("offset_days")),
        customer_name=str(data.get("customer_name", "")),
        language=str(data["language"]) if data.get("language") else None,
        balance=_dec(data.get("balance")),
        invoices=_lines(data),
        demand_days=_int(data.get("demand_days")),
        repeat=_int(data.get("repeat")),
        instalment=instalment,
        previous_delivery=(
            tuple(
                (str(invoice_id), datetime.fromisoformat(value) if value else None)
                for invoice_id, value in previous.items()
            )
            if isinstance(previous, Mapping)
            else None
        ),
    )


def _encode_fee(d: FeeDetails) -> JSON:
    data: JSON = {
        "invoice_number": d.invoice_number or None,
        "fees": dict(d.fees),
        "period": d.period,
    }
    if d.segments:
        data["segments"] = [
            {
                "start": s.start.isoformat(),
                "end": s.end.isoformat(),
                "days": s.days,
                "principal": str(s.principal),
                "annual_rate": s.annual_rate,
                "interest": str(s.interest),
            }
            for s in d.segments
        ]
    return _drop_none(data)


def _decode_fee(data: Mapping[str, Any]) -> FeeDetails:
    fees = data.get("fees")
    segments = data.get("segments") or ()
    return FeeDetails(
        invoice_number=str(data.get("invoice_number", "")),
        fees=tuple((str(k), str(v)) for k, v in fees.items()) if isinstance(fees, Mapping) else (),
        period=_int(data.get("period")),
        segments=tuple(
            InterestSegmentTerms(
                start=date.fromisoformat(str(s["start"])),
                end=date.fromisoformat(str(s["end"])),
                days=int(s.get("days", 0)),
                principal=Decimal(str(s.get("principal", "0"))),
                annual_rate=str(s.get("annual_rate", "")),
                interest=Decimal(str(s.get("interest", "0"))),
            )
            for s in segments
            if isinstance(s, Mapping)
        ),
    )


def encode_details(details: Details | None) -> JSON:
    """The JSON object stored for an action's details ({} for none)."""
    if details is None:
        return {}
    if isinstance(details, NoticeDetails):
        return _encode_notice(details)
    if isinstance(details, FeeDetails):
        return _encode_fee(details)
    if isinstance(details, NoteDetails):
        return {"notice_key": details.notice_key, "notice_kind": details.notice_kind.value}
    if isinstance(details, CreditNoteDetails):
        return {
            "invoice_number": details.invoice_number,
            "percent": str(details.percent),
            "amount": str(details.amount),
        }
    if isinstance(details, ThanksDetails):
        return _drop_none(
            {
                "customer_name": details.customer_name,
                "language": details.language,
                "invoices": [_encode_line(line) for line in details.invoices],
            }
        )
    if isinstance(details, SupersededDetails):
        return {"ladder": details.ladder, "offset_days": details.offset_days}
    return {
        "limit": str(details.limit),
        "exposure": str(details.exposure),
        "over": str(details.over),
        "on_breach": details.on_breach,
        "episode": details.episode,
    }


# keys each details type owns in the stored object (the rest is the effect's outcome)
_KEYS: dict[type, frozenset[str]] = {
    NoticeDetails: frozenset(
        {
            "ladder",
            "offset_days",
            "customer_name",
            "language",
            "balance",
            "invoices",
            "demand_days",
            "repeat",
            "plan_id",
            "instalment_due",
            "instalment_amount",
            "previous_delivery",
        }
    ),
    FeeDetails: frozenset({"invoice_number", "fees", "period", "segments"}),
    NoteDetails: frozenset({"notice_key", "notice_kind"}),
    CreditNoteDetails: frozenset({"invoice_number", "percent", "amount"}),
    ThanksDetails: frozenset({"customer_name", "language", "invoices"}),
    SupersededDetails: frozenset({"ladder", "offset_days"}),
    CreditLimitDetails: frozenset({"limit", "exposure", "over", "on_breach", "episode"}),
}


def decode_details(
    kind: ActionKind, step: str | None, data: Mapping[str, Any] | None
) -> tuple[Details | None, JSON]:
    """(details, outcome) from a stored object: the action's typed details (None when the row has
    none) and the keys its effect added."""
    data = dict(data or {})
    cls = details_type(kind, step)
    own = {key: value for key, value in data.items() if key in _KEYS[cls]}
    outcome = {key: value for key, value in data.items() if key not in _KEYS[cls]}
    if not own:
        return None, outcome
    details: Details
    if cls is NoticeDetails:
        details = _decode_notice(own)
    elif cls is FeeDetails:
        details = _decode_fee(own)
    elif cls is NoteDetails:
        details = NoteDetails(str(own["notice_key"]), ActionKind(own.get("notice_kind", "reminder")))
    elif cls is CreditNoteDetails:
        details = CreditNoteDetails(
            str(own.get("invoice_number", "")),
            Decimal(str(own.get("percent", "0"))),
            Decimal(str(own.get("amount", "0"))),
        )
    elif cls is ThanksDetails:
        language = own.get("language")
        details = ThanksDetails(
            str(own.get("customer_name", "")), str(language) if language else None, _lines(own)
        )
    elif cls is SupersededDetails:
        details = SupersededDetails(str(own.get("ladder", "")), int(own.get("offset_days", 0)))
    else:
        details = CreditLimitDetails(
            Decimal(str(own.get("limit", "0"))),
            Decimal(str(own.get("exposure", "0"))),
            Decimal(str(own.get("over", "0"))),
            str(own.get("on_breach", "")),
            str(own.get("episode", "")),
        )
    return details, outcome
