"""Notice rendering: every shipped template in fr/en/de, locale formats, legal mentions, the sandbox."""

from __future__ import annotations

import logging
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from policies.model.actions import ActionKind, Charge, PlannedAction
from policies.model.errors import RelanceError
from policies.model.ledger import Customer, CustomerKind, Invoice, InvoiceStatus
from policies.model.money import Money
from sync.channels.context import CompanyInfo, NoticeContext, build_context
from sync.channels.render import (
    SHIPPED_TEMPLATES,
    Renderer,
    format_date,
    format_money,
    format_percent,
    render_notice,
)
from tests.support.details import typed

NBSP = "\u00a0"
NNBSP = "\u202f"
TEMPLATES = (
    "pre_due",
    "due_today",
    "late_1",
    "finance_manager",
    "owner",
    "final_notice",
    "agency_handover",
    "thanks",
)
COUNTRY = {"fr": "FR", "de": "DE", "en": "GB"}
LAW = {"fr": "fr", "de": "de", "en": "uk"}  # the law of each company's country
CURRENCY = {"fr": "EUR", "de": "EUR", "en": "GBP"}
# 1,200.00 in the notice's locale and currency
BIG = {"fr": f"1{NNBSP}200,00{NBSP}€", "de": f"1.200,00{NBSP}€", "en": "£1,200.00"}
PAY_LINK = "https://pay.example.com/inv/F-2026-001"
KEY = "0123456789abcdef0123456789abcdef"


def company(lang: str) -> CompanyInfo:
    return CompanyInfo(
        name="Exemple SAS",
        email="compta@exemple.fr",
        phone="+33 1 23 45 67 89",
        address_lines=("12 rue de la Paix", "75002 Paris"),
        legal_mentions=("SIREN 123 456 789", "TVA FR12 123456789", "Siège social : Paris"),
        bank_details="IBAN FR76 3000 1007 9412 3456 7890 185 - BIC BNPAFRPP",
        country=COUNTRY[lang],
        law=LAW[lang],
        language=lang,
    )


def customer(lang: str, name: str = "Dupont & Fils", kind: CustomerKind = CustomerKind.B2B) -> Customer:
    return Customer(id="C1", name=name, emails=("ap@dupont.example",), language=lang, kind=kind)


def invoices(currency: str) -> dict[str, Invoice]:
    return {
        "I1": Invoice(
            id="I1",
            number="F-2026-001",
            customer_id="C1",
            issue_date=date(2026, 1, 10),
            due_date=date(2026, 2, 10),
            currency=currency,
            total=Money.of("1200", currency),
            balance=Money.of("1200", currency),
            status=InvoiceStatus.OPEN,
            pay_link=PAY_LINK,
        ),
        "I2": Invoice(
            id="I2",
            number="F-2026-002",
            customer_id="C1",
            issue_date=date(2026, 1, 12),
            due_date=date(2026, 2, 12),
            currency=currency,
            total=Money.of("345.50", currency),
            balance=Money.of("300", currency),
            status=InvoiceStatus.OPEN,
        ),
    }


def make_context(
    lang: str,
    template: str,
    *,
    today: date = date(2026, 2, 25),
    name: str = "Dupont & Fils",
    kind: CustomerKind = CustomerKind.B2B,
    details: dict[str, object] | None = None,
    with_fees: bool = True,
    action_kind: ActionKind = ActionKind.REMINDER,
) -> NoticeContext:
    currency = CURRENCY[lang]
    action = PlannedAction(
        key=KEY,
        kind=action_kind,
        customer_id="C1",
        currency=currency,
        invoice_ids=("I1", "I2"),
        reason="test",
        step="late-letter",
        channel="email",
        template=template,
        details=typed(action_kind, "late-letter", {"language": lang, **(details or {})}),
    )
    fee = PlannedAction(
        key="f" * 32,
        kind=ActionKind.FEE,
        customer_id="C1",
        currency=currency,
        invoice_ids=("I1",),
        reason="fee",
        charges=(
            Charge("interest", Money.of("12.34", currency), "interest"),
            Charge("compensation", Money.of("40", currency), "compensation"),
        ),
        details=typed(ActionKind.FEE, None, {
            "segments": [
                {
                    "start": "2026-02-11",
                    "end": "2026-02-25",
                    "days": 15,
                    "principal": "1200.00",
                    "annual_rate": "12.15",
                    "interest": "5.991781",
                }
            ]
        }),
    )
    return build_context(
        action,
        customer(lang, name, kind),
        invoices(currency),
        company(lang),
        today,
        fees=[fee] if with_fees else [],
    )


# --- formats ---------------------------------------------------------------------------------------


def test_money_formats_per_locale() -> None:
    assert format_money(Money.of("1200", "EUR"), "fr") == f"1{NNBSP}200,00{NBSP}€"
    assert format_money(Money.of("1200", "EUR"), "de") == f"1.200,00{NBSP}€"
    assert format_money(Money.of("1200", "EUR"), "en") == "€1,200.00"
    assert format_money(Money.of("1234567.5", "GBP"), "en") == "£1,234,567.50"
    assert format_money(Money.of("-5", "EUR"), "fr") == f"-5,00{NBSP}€"
    assert format_money(Money.of("0.005", "EUR"), "en") == "€0.01"  # half-up, once
    assert format_money(Money.of("1500", "JPY"), "en") == "¥1,500"
    assert format_money(Money.of("99.9", "CHF"), "de") == f"99,90{NBSP}CHF"
    assert format_money(Money.of("99.9", "SEK"), "en") == f"SEK{NBSP}99.90"


def test_dates_and_percents_per_locale() -> None:
    assert format_date(date(2026, 3, 1), "fr") == "1er mars 2026"
    assert format_date(date(2026, 8, 15), "fr") == "15 août 2026"
    assert format_date(date(2026, 3, 15), "de") == "15. März 2026"
    assert format_date(date(2026, 3, 15), "en") == "15 March 2026"
    assert format_percent(Decimal("2"), "fr") == f"2{NBSP}%"
    assert format_percent("12.150", "de") == f"12,15{NBSP}%"
    assert format_percent(Decimal("2.50"), "en") == "2.5%"


# --- every template --------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["fr", "en", "de"])
@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_renders(lang: str, template: str) -> None:
    details: dict[str, object] = {"demand_days": 10} if template == "final_notice" else {}
    today = date(2026, 1, 20) if template == "pre_due" else date(2026, 2, 25)
    ctx = make_context(lang, template, today=today, details=details, with_fees=template != "pre_due")
    rendered = render_notice(ctx)
    assert rendered.language == lang and rendered.template == f"{lang}/{template}.j2"
    assert rendered.subject and "\n" not in rendered.subject
    assert "{{" not in rendered.text and "{%" not in rendered.html
    for body in (rendered.text, rendered.html):
        assert "F-2026-001" in body and "F-2026-002" in body
        assert BIG[lang] in body  # the first invoice's amount, in the locale's format
        assert "SIREN 123 456 789" in body and "IBAN FR76" in body  # legal footer
    assert rendered.html.startswith("<!DOCTYPE html>") and f'<html lang="{lang}">' in rendered.html
    if template != "thanks":
        assert PAY_LINK in rendered.text
        assert f'<a href="{PAY_LINK}">' in rendered.html


@pytest.mark.parametrize(
    ("lang", "mention"),
    [
        (
            "fr",
            "indemnité forfaitaire pour frais de recouvrement de 40 € "
            "(art. L441-10 et D441-5 du Code de commerce)",
        ),
        ("de", "Verzugspauschale von 40 Euro je Rechnung (§ 288 Abs. 5 BGB)"),
        ("en", "Late Payment of Commercial Debts (Interest) Act 1998"),
    ],
)
def test_late_letter_cites_the_law_of_the_company_country(lang: str, mention: str) -> None:
    rendered = render_notice(make_context(lang, "late_1"))
    assert mention in rendered.text
    assert mention.replace("&", "&amp;") in rendered.html


def test_legal_basis_follows_the_creditor_law_in_the_customer_language() -> None:
    ctx = make_context("en", "late_1")
    french_company = CompanyInfo(name="Exemple SAS", country="FR")
    from dataclasses import replace

    rendered = render_notice(replace(ctx, company=french_company, law="fr"))
    assert "articles L441-10 and D441-5 of the French Commercial Code" in rendered.text


def test_consumers_get_no_b2b_statutory_mention() -> None:
    rendered = render_notice(make_context("fr", "late_1", kind=CustomerKind.B2C, with_fees=False))
    assert "L441-10" not in rendered.text and "L441-10" not in rendered.html


def test_late_letter_shows_interest_breakdown_and_total() -> None:
    ctx = make_context("fr", "late_1")
    assert ctx.balance_due == Money.of("1500", "EUR")
    assert ctx.charges_total == Money.of("52.34", "EUR")
    assert ctx.total_due == Money.of("1552.34", "EUR")
    assert ctx.invoices[0].interest == Money.of("12.34", "EUR")
    rendered = render_notice(ctx)
    assert f"Pénalités de retard – Facture F-2026-001{NBSP}: 12,34{NBSP}€" in rendered.text
    assert (
        f"15 jours, sur 1{NNBSP}200,00{NBSP}€ au taux annuel de 12,15{NBSP}% = 5,99{NBSP}€" in rendered.text
    )
    assert f"Total à régler{NBSP}: 1{NNBSP}552,34{NBSP}€" in rendered.text
    assert "15 jours de retard" in rendered.text and "13 jours de retard" in rendered.text


@pytest.mark.parametrize(
    ("lang", "offer"),
    [
        ("fr", f"escompte de 2{NBSP}%, soit 24,00{NBSP}€ de moins (1{NNBSP}176,00{NBSP}€ à régler)"),
        ("en", "early-payment discount of 2%, that is £24.00 off (£1,176.00 to pay)"),
        ("de", f"2{NBSP}% Skonto abziehen, also 24,00{NBSP}€ weniger (1.176,00{NBSP}€ zu zahlen)"),
    ],
)
def test_pre_due_shows_the_early_payment_discount(lang: str, offer: str) -> None:
    currency = CURRENCY[lang]
    details: dict[str, object] = {
        "invoices": [
            {
                "id": "I1",
                "number": "F-2026-001",
                "due_date": "2026-02-10",
                "discount": {"percent": "2", "amount": "24.00", "deadline": "2026-01-20", "pay": "1176.00"},
            }
        ]
    }
    ctx = make_context(lang, "pre_due", today=date(2026, 1, 15), details=details, with_fees=False)
    assert ctx.discount is not None and ctx.discount.pay == Money.of("1176", currency)
    rendered = render_notice(ctx)
    assert offer in rendered.text
    assert format_date(date(2026, 1, 20), lang) in rendered.text
    assert "L441-10" not in rendered.text  # not late: no statutory paragraph


def test_pre_due_without_offer_says_nothing_about_a_discount() -> None:
    rendered = render_notice(make_context("fr", "pre_due", today=date(2026, 1, 25), with_fees=False))
    assert "escompte" not in rendered.text.lower()


def test_final_notice_gives_the_demand_deadline() -> None:
    rendered = render_notice(make_context("fr", "final_notice", details={"demand_days": 8}))
    assert "MISE EN DEMEURE" in rendered.text
    assert "dans un délai de 8 jours, soit au plus tard le 5 mars 2026" in rendered.text
    default = render_notice(make_context("en", "final_notice"))  # no figure in the step: 8 days
    assert "within 8 days, that is by 5 March 2026" in default.text


def test_thanks_lists_paid_invoices_without_amount_due_or_legal_text() -> None:
    rendered = render_notice(make_context("en", "thanks", action_kind=ActionKind.THANKS, with_fees=False))
    assert rendered.subject == "Thank you for your payment"
    assert "Total due" not in rendered.text and "Late Payment" not in rendered.text


def test_customer_name_is_escaped_in_html_and_intact_in_text() -> None:
    evil = "<script>alert('x')</script> & Co"
    rendered = render_notice(make_context("fr", "late_1", name=evil))
    assert evil in rendered.text
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; Co" in rendered.html
    # Values the layout prints directly (table, signature, footer) are autoescaped too.
    from dataclasses import replace

    ctx = make_context("fr", "late_1")
    evil_company = replace(ctx.company, name="Exemple <img src=x onerror=alert(1)> SAS")
    evil_line = replace(ctx.invoices[0], number="<b>F-1</b>")
    html = render_notice(replace(ctx, company=evil_company, invoices=(evil_line,))).html
    assert "<img" not in html and "<b>F-1" not in html
    assert "Exemple &lt;img src=x onerror=alert(1)&gt; SAS" in html and "&lt;b&gt;F-1&lt;/b&gt;" in html


def test_a_javascript_pay_link_never_reaches_the_notice() -> None:
    ctx = make_context("en", "due_today")
    from dataclasses import replace

    bad = replace(ctx.invoices[0], pay_link="javascript:alert(1)")
    rendered = render_notice(replace(ctx, invoices=(bad, *ctx.invoices[1:])))
    assert "javascript:" not in rendered.html and "javascript:" not in rendered.text


# --- user templates and the sandbox -----------------------------------------------------------------


def user_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / "templates" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path / "templates"


def test_user_directory_overrides_one_template(tmp_path: Path) -> None:
    directory = user_dir(
        tmp_path,
        {
            "fr/late_1.j2": '{% extends "fr/_base.j2" %}{% block subject %}Votre compte {{ customer_name }}'
            "{% endblock %}{% block message %}Texte maison : {{ total_due|money }}{% endblock %}",
        },
    )
    renderer = Renderer([directory])
    rendered = render_notice(make_context("fr", "late_1"), renderer=renderer)
    assert rendered.subject == "Votre compte Dupont & Fils"
    assert f"Texte maison : 1{NNBSP}552,34{NBSP}€" in rendered.text
    assert "Facture F-2026-001" in rendered.text  # the shipped layout still applies
    shipped = render_notice(make_context("fr", "owner"), renderer=renderer)
    assert shipped.template == "fr/owner.j2" and "direction" in shipped.subject


@pytest.mark.parametrize(
    "payload",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ company.__class__.__init__.__globals__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{% set x = t.update({'a': 1}) %}",
    ],
)
def test_templates_cannot_reach_python_internals(tmp_path: Path, payload: str) -> None:
    directory = user_dir(
        tmp_path,
        {
            "fr/late_1.j2": '{% extends "fr/_base.j2" %}{% block subject %}x{% endblock %}'
            "{% block message %}" + payload + "{% endblock %}",
        },
    )
    with pytest.raises(RelanceError, match=r"forbidden|unsafe") as caught:
        render_notice(make_context("fr", "late_1"), renderer=Renderer([directory]))
    assert "fr/late_1.j2" in str(caught.value)


def test_missing_language_falls_back_to_english_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    ctx = make_context("en", "late_1")
    from dataclasses import replace

    with caplog.at_level(logging.WARNING, logger="sync.channels.render"):
        rendered = render_notice(replace(ctx, language="es"))
    assert rendered.language == "en" and rendered.template == "en/late_1.j2"
    assert rendered.warnings and "es" in rendered.warnings[0]
    assert any("using the English one" in record.message for record in caplog.records)


def test_unknown_template_names_the_template_and_the_directories(tmp_path: Path) -> None:
    directory = user_dir(tmp_path, {"en/other.j2": "x"})
    ctx = make_context("fr", "late_1")
    from dataclasses import replace

    with pytest.raises(RelanceError) as caught:
        render_notice(replace(ctx, template="late_9"), renderer=Renderer([directory]))
    message = str(caught.value)
    assert "'late_9'" in message and str(directory) in message and str(SHIPPED_TEMPLATES) in message


@pytest.mark.parametrize("name", ["../../etc/passwd", "Late_1", "", "a/b"])
def test_template_names_cannot_walk_the_file_system(name: str) -> None:
    from dataclasses import replace

    with pytest.raises(RelanceError, match="not valid"):
        render_notice(replace(make_context("fr", "late_1"), template=name))


def test_template_errors_are_one_line_relance_errors(tmp_path: Path) -> None:
    directory = user_dir(
        tmp_path,
        {
            "fr/broken.j2": '{% extends "fr/_base.j2" %}\n{% block subject %}{{ oops( {% endblock %}',
            "fr/typo.j2": '{% extends "fr/_base.j2" %}{% block subject %}{{ totl_due }}{% endblock %}',
            "fr/dangling.j2": '{% extends "fr/_nothing.j2" %}',
        },
    )
    renderer = Renderer([directory])
    from dataclasses import replace

    ctx = make_context("fr", "late_1")
    with pytest.raises(RelanceError, match=r"fr/broken.j2.*line 2"):
        render_notice(replace(ctx, template="broken"), renderer=renderer)
    with pytest.raises(RelanceError, match="'totl_due' is undefined"):
        render_notice(replace(ctx, template="typo"), renderer=renderer)
    with pytest.raises(RelanceError, match=r"fr/_nothing\.j2"):
        render_notice(replace(ctx, template="dangling"), renderer=renderer)


def test_a_missing_templates_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RelanceError, match="does not exist"):
        Renderer([tmp_path / "nope"])


def test_context_refuses_invoices_it_cannot_find() -> None:
    action = PlannedAction(
        key=KEY,
        kind=ActionKind.REMINDER,
        customer_id="C1",
        currency="EUR",
        invoice_ids=("missing",),
        reason="r",
        template="late_1",
    )
    with pytest.raises(RelanceError, match="missing"):
        build_context(action, customer("fr"), {}, company("fr"), date(2026, 2, 25))


def test_instalment_notice_asks_for_the_instalment_only() -> None:
    details: dict[str, object] = {
        "plan_id": "P7",
        "instalment_due": "2026-02-20",
        "instalment_amount": "500.00",
        "balance": "500.00",
    }
    from dataclasses import replace

    ctx = make_context("en", "late_1", details=details, with_fees=False)
    assert ctx.instalment is None  # not an instalment action: details alone do not make one
    action = PlannedAction(
        key=KEY,
        kind=ActionKind.REMINDER,
        customer_id="C1",
        currency="GBP",
        invoice_ids=("I1",),
        reason="test",
        step="late-letter",
        channel="email",
        template="late_1",
        instalment=2,
        details=typed(ActionKind.REMINDER, "late-letter", {"language": "en", **details}),
    )
    ctx = build_context(action, customer("en"), invoices("GBP"), company("en"), date(2026, 2, 25))
    assert ctx.total_due == Money.of("500", "GBP") and ctx.max_days_late == 5
    rendered = render_notice(replace(ctx))
    assert "Instalment 2 of the payment plan, due 20 February 2026: £500.00" in rendered.text
    assert "Total due: £500.00" in rendered.text
    assert "Late Payment" not in rendered.text  # the plan is the agreed settlement: no statutory threat
