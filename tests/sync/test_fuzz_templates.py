"""Email headers are never injectable, and user templates cannot reach Python internals.

compose_email gets customer names, addresses and subjects carrying CR, LF, NUL and Unicode line
separators: it refuses them (RelanceError) or writes a message whose parsed header set is exactly its own.
User templates with the classic Jinja2 sandbox escapes must raise RelanceError and never execute."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies.model.actions import ActionKind, PlannedAction
from policies.model.errors import RelanceError
from policies.model.ledger import Customer, CustomerKind, Invoice, InvoiceStatus
from policies.model.money import Money
from sync.channels.context import CompanyInfo, NoticeContext, build_context
from sync.channels.render import RenderedNotice, Renderer, render_notice
from sync.channels.transports import compose_email
from tests.support.details import typed
from tests.support.fuzz.gaps import tolerating_known_gaps
from tests.support.fuzz.headers import check_headers, header_inputs

FUZZ = settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)

# --- headers -------------------------------------------------------------------------------------------


@given(header_inputs())
@FUZZ
def test_fuzzed_names_addresses_and_subjects_never_inject_a_header(inputs: dict[str, str]) -> None:
    tolerating_known_gaps(lambda: check_headers(inputs))


@pytest.mark.parametrize(
    "inputs",
    [
        {"recipient": "compta@dupont.example", "subject": "Overdue\r\nBcc: victim@evil.example", "name": ""},
        {"recipient": "compta@dupont.example", "subject": "Overdue\nX-Injected: yes", "name": ""},
        {"recipient": "compta@dupont.example", "subject": "Overdue\x00", "name": ""},
        {"recipient": "compta@dupont.example\r\nBcc: victim@evil.example", "subject": "Overdue", "name": ""},
        {"recipient": "Dupont\r\nBcc: victim@evil.example <a@dupont.example>", "subject": "x", "name": ""},
        {"recipient": "a@dupont.example, victim@evil.example", "subject": "x", "name": ""},
        {"recipient": '"Dupont\nX: y" <a@dupont.example>', "subject": "x", "name": ""},
    ],
)
def test_classic_injections_are_refused(inputs: dict[str, str]) -> None:
    assert check_headers(inputs) == "refused"


@pytest.mark.parametrize(
    "inputs",
    [
        {
            "recipient": '"Dupont, Fils & Cie" <a@dupont.example>',
            "subject": "Relance : facture n°42 😀",
            "name": "",
        },
        {
            "recipient": "Zoë \u202eKrüger <z@kruger.example>",
            "subject": "Überfällig: " + "Rechnung " * 30,
            "name": "",
        },
    ],
)
def test_unusual_but_harmless_values_are_composed(inputs: dict[str, str]) -> None:
    """The property must be able to pass: odd but legitimate names and long subjects still go out."""
    assert check_headers(inputs) == "composed"


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85"])
def test_unicode_line_separator_in_subject_is_refused_cleanly(separator: str) -> None:
    notice = RenderedNotice(f"Overdue{separator}Bcc: victim@evil.example", "t\n", "<p>t</p>\n")
    with pytest.raises(RelanceError):
        compose_email(notice, sender="a@exemple.example", to=["c@dupont.example"], message_id_key="k1")


# --- templates -----------------------------------------------------------------------------------------

ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ joiner.__init__.__globals__.os.system('touch {marker}') }}",
    "{{ namespace.__init__.__globals__.__builtins__.open('{marker}', 'w').write('x') }}",
    "{{ lipsum.__globals__['os'].popen('touch {marker}').read() }}",
    "{{ self._TemplateReference__context }}",
    "{{ self.__dict__ }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ ''.__class__.__mro__[1].__subclasses__()[0].__init__.__globals__['__builtins__'] }}",
    "{{ ctx.__class__.__init__.__globals__ }}",
    "{{ customer.__class__.__init__.__globals__['sys'].modules['os'].system('touch {marker}') }}",
    "{{ ctx.charges_of.__func__.__globals__ }}",
    "{{ ctx.charges_of.__self__.__class__ }}",
    "{{ company.__reduce_ex__(2) }}",
    "{{ today.__class__.__subclasses__() }}",
    "{{ ''|attr('__class__') }}",
    "{{ ''|attr('\\x5f\\x5fclass\\x5f\\x5f') }}",
    "{{ (ctx|attr('__class__')).__init__.__globals__ }}",
    "{{ '{0.__class__.__init__.__globals__}'.format(ctx) }}",
    "{{ '{a.__class__.__init__.__globals__}'.format_map({'a': ctx}) }}",
    "{{ range.__globals__ }}",
    "{{ dict.__base__.__subclasses__() }}",
    "{{ invoices[0].__class__.__mro__ }}",
    "{{ balance_due.__class__.__new__ }}",
    "{{ lipsum.__code__.co_consts }}",
    "{{ cycler.__init__.__globals__.__builtins__.__import__('os').system('touch {marker}') }}",
    "{% set x = invoices.__class__ %}{{ x }}",
    "{{ invoices.append(1) }}",
    "{% set d = {} %}{{ d.update({'a': 1}) }}",
    "{{ range(10**9)|list|length }}",
    "{{ config }}",
    "{{ request.application.__globals__ }}",
    "{% include '../../../../../etc/passwd' %}",
    "{% import 'os' as os %}{{ os }}",
    "{% extends '/etc/passwd' %}",
]
RECEIVERS = [
    "''",
    "[]",
    "{}",
    "ctx",
    "customer",
    "company",
    "invoices[0]",
    "today",
    "balance_due",
    "cycler",
    "joiner",
    "namespace",
    "lipsum",
    "range",
    "dict",
    "self",
    "ctx.charges_of",
    "customer_name",
]
DUNDERS = [
    "__class__",
    "__mro__",
    "__base__",
    "__bases__",
    "__subclasses__()",
    "__init__",
    "__globals__",
    "__builtins__",
    "__dict__",
    "__func__",
    "__self__",
    "__code__",
    "__reduce_ex__(2)",
    "__getattribute__",
    "__module__",
    "__closure__",
    "__weakref__",
    "_TemplateReference__context",
]
PLAIN = ["mro()", "gi_frame", "f_globals", "func_globals", "keys()", "items()", "__len__"]


@st.composite
def escape_attempts(draw: st.DrawFn) -> str:
    """A receiver then a chain of attribute steps, at least one of them private (starts with '_'),
    written as .attr, ['attr'] or |attr('attr')."""
    steps = draw(st.lists(st.sampled_from(DUNDERS + PLAIN), min_size=1, max_size=5))
    if not any(step.startswith("_") for step in steps):
        steps.insert(draw(st.integers(0, len(steps))), draw(st.sampled_from(DUNDERS)))
    expression = draw(st.sampled_from(RECEIVERS))
    for step in steps:
        name, call = (step[:-2], "()") if step.endswith("()") else (step, "")
        name, call = (name.split("(")[0], "(" + name.split("(")[1]) if "(" in name else (name, call)
        style = draw(st.sampled_from(["dot", "subscript", "attr"]))
        if style == "dot":
            expression = f"{expression}.{name}{call}"
        elif style == "subscript":
            expression = f"{expression}['{name}']{call}"
        else:
            expression = f"({expression}|attr('{name}')){call}"
    return draw(
        st.sampled_from(
            [
                "{{{{ {e} }}}}",
                "{{% for x in {e} %}}{{{{ x }}}}{{% endfor %}}",
                "{{% set v = {e} %}}{{{{ v }}}}",
                "{{% if {e} %}}yes{{% endif %}}",
            ]
        )
    ).format(e=expression)


def _context(template: str) -> NoticeContext:
    action = PlannedAction(
        key="0123456789abcdef0123456789abcdef",
        kind=ActionKind.REMINDER,
        customer_id="C1",
        currency="EUR",
        invoice_ids=("I1",),
        reason="test",
        step="late-email",
        channel="email",
        template=template,
        details=typed(ActionKind.REMINDER, "late-letter", {"language": "en"}),
    )
    customer = Customer(
        id="C1", name="Dupont", emails=("a@dupont.example",), language="en", kind=CustomerKind.B2B
    )
    invoice = Invoice(
        id="I1",
        number="F-1",
        customer_id="C1",
        issue_date=date(2026, 1, 10),
        due_date=date(2026, 2, 10),
        currency="EUR",
        total=Money.of("1200", "EUR"),
        balance=Money.of("1200", "EUR"),
        status=InvoiceStatus.OPEN,
    )
    company = CompanyInfo(name="Exemple SAS", email="compta@exemple.example", country="FR", language="en",
                          law="fr")
    return build_context(action, customer, {"I1": invoice}, company, date(2026, 2, 25))


def _render(directory: Path, source: str, *, wrap_in_subject: bool = False) -> object:
    (directory / "en").mkdir(parents=True, exist_ok=True)
    if wrap_in_subject:  # inside a block of a notice extending the shipped base
        source = '{% extends "en/_base.j2" %}{% block subject %}' + source + "{% endblock %}"
    (directory / "en" / "custom.j2").write_text(source, encoding="utf-8")
    return render_notice(_context("custom"), renderer=Renderer([directory]))


# Values only a successful escape could print (the user's own attribute names may be echoed back).
INTERNALS = (
    "<class",
    "<module",
    "<function",
    "<built-in",
    "<bound method",
    "mappingproxy",
    "<frame",
    "<code",
)


def _assert_refused(directory: Path, source: str, marker: Path, *, wrap_in_subject: bool = False) -> None:
    with pytest.raises(RelanceError) as caught:
        _render(directory, source, wrap_in_subject=wrap_in_subject)
    assert not marker.exists(), f"the template executed a command: {source}"
    leaked = [word for word in INTERNALS if word in str(caught.value)]
    assert not leaked, f"the error shows Python internals {leaked}: {caught.value}"


def test_a_benign_user_template_renders(tmp_path: Path) -> None:
    """The sandbox tests must be able to fail: a harmless template is rendered, not refused."""
    rendered = _render(tmp_path, "Hello {{ customer_name }}, you owe {{ balance_due|money }}.")
    assert "Hello Dupont, you owe €1,200.00." in rendered.text  # type: ignore[attr-defined]


@pytest.mark.parametrize("wrap_in_subject", [False, True], ids=["whole-template", "subject-block"])
@pytest.mark.parametrize("escape", ESCAPES)
def test_classic_sandbox_escapes_raise_relance_error(
    tmp_path: Path, escape: str, wrap_in_subject: bool
) -> None:
    marker = tmp_path / "PWNED"
    _assert_refused(
        tmp_path / "templates",
        escape.replace("{marker}", str(marker)),
        marker,
        wrap_in_subject=wrap_in_subject,
    )


@given(escape_attempts())
@settings(FUZZ, max_examples=150)
def test_generated_attribute_chains_never_reach_internals(
    tmp_path_factory: pytest.TempPathFactory, source: str
) -> None:
    directory = tmp_path_factory.mktemp("templates")
    _assert_refused(directory, source, directory / "PWNED")
