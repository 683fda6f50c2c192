"""Policy texts: the shipped examples mutated structurally and textually; each must parse into a
Policy that plans, or be rejected with one 'source:line: ...' line per problem."""

from __future__ import annotations

import contextlib
import copy
import io
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st
from ruamel.yaml import YAML

from policies.config import Policy
from policies.model.errors import PolicyError, RelanceError
from policies.model.ledger import Customer, CustomerKind, Invoice, InvoiceStatus
from policies.model.money import Money
from policies.planning import plan_day
from tests.support.fuzz.values import Draw, containers, mutate_list, odd_scalar
from tests.support.paths import EXAMPLE_POLICIES
from tests.support.rules import parse_policy

SOURCE = "fuzz.yaml"

# A rejected policy names its place: 'fuzz.yaml:12: path: message' (YAML syntax errors add a column).
PROBLEM_LINE = re.compile(rf"^{re.escape(SOURCE)}:(?P<line>\d+)(?::\d+)?: (?P<message>\S.*)$")


def example_texts() -> dict[str, str]:
    return {path.name: path.read_text(encoding="utf-8") for path in sorted(EXAMPLE_POLICIES.glob("*.yaml"))}


def _load_plain(text: str) -> Any:
    return YAML(typ="safe", pure=True).load(text)


def dump_yaml(data: Any, *, flow: bool | None) -> str:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = flow
    yaml.allow_unicode = True
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    return buffer.getvalue()


ODD_VALUES: tuple[Any, ...] = (
    1.5,
    0.1,
    -0.0,
    1e308,
    float("inf"),
    float("-inf"),
    float("nan"),
    10**40,
    -(10**40),
    -1,
    0,
    -365,
    2**63,
    True,
    False,
    None,
    "",
    " ",
    "é",
    "\u202eRTL",
    "zero\u200bwidth",
    "😀",
    "\u2028",
    "\x00nul",
    "\t",
    "10,00",
    "1e400",
    "NaN",
    "Infinity",
    "-Infinity",
    "1" * 400,
    "x" * 5000,
    "2026-02-30",
    "25:61",
    "Europe/Atlantis",
    "XX",
    "eur",
    [],
    [[]],
    [[[None]]],
    {},
    {"": None},
    {"nested": {"deeper": [1, {"x": None}]}},
    [1, "two", 3.0, None],
    date(2026, 12, 31),
    date(1, 1, 1),
    datetime(2026, 1, 1, 12, 30),
)

ODD_SCALARS: tuple[str, ...] = (
    "~",
    "null",
    "yes",
    "no",
    "on",
    "off",
    ".inf",
    "-.inf",
    ".nan",
    "0x1F",
    "0o17",
    "017",
    "1_000",
    "1e400",
    "-1e400",
    "99999999999999999999999999999999999999",
    "-5",
    "3.14",
    "2026-02-30",
    "2026-13-01",
    "2026-01-01T25:00:00",
    "12:30:00",
    "1:20",
    "!!binary aGVsbG8=",
    "!!python/object/apply:os.system ['true']",
    "!!float 1",
    "!!int x",
    "!custom value",
    "&anchor value",
    "*missing_alias",
    "[",
    "]",
    "{",
    "}",
    "'unterminated",
    '"unterminated',
    '"\\x"',
    '"\\uD800"',
    "|",
    ">-",
    "? complex",
    "- - -",
    "%YAML 1.1",
    "---",
    "...",
    "@reserved",
    "`reserved",
    "# only a comment",
    "a: b: c",
    "[1, [2, [3, [4]]]]",
    "{a: {b: {c: [d]}}}",
    "\u202eevil",
    "😀😀",
    "\u00a0",
    "\ufeff",
)


def _typo(draw: Draw, word: str) -> str:
    if not word:
        return "x"
    position = draw(st.integers(0, len(word) - 1))
    how = draw(st.sampled_from(["drop", "double", "swap", "replace", "case", "dash"]))
    if how == "drop":
        return word[:position] + word[position + 1 :] or "x"
    if how == "double":
        return word[:position] + word[position] + word[position:]
    if how == "swap" and position < len(word) - 1:
        return word[:position] + word[position + 1] + word[position] + word[position + 2 :]
    if how == "case":
        return word.upper()
    if how == "dash":
        return word.replace("_", "-") if "_" in word else word + "_"
    return word[:position] + draw(st.sampled_from("aeiouxz_-1é ")) + word[position + 1 :]


def _odd_value(draw: Draw) -> Any:
    return odd_scalar(draw, ODD_VALUES, kinds=6, text_size=30, int_bound=10**30, specials=True)


def _mutate_tree(draw: Draw, data: Any) -> None:
    found = containers(data)
    numbers = [
        (container, key)
        for _, container in found
        if isinstance(container, dict)
        for key, value in container.items()
        if isinstance(value, int) and not isinstance(value, bool)
    ]
    if numbers and draw(st.integers(0, 2)) == 0:  # a whole number out of any sensible range
        container, key = draw(st.sampled_from(numbers))
        container[key] = draw(st.sampled_from([10**12, 10**30, -(10**12), 2**31, 99_999, 0]))
        return
    _, container = draw(st.sampled_from(found))
    operation = draw(st.sampled_from(["drop", "rename", "swap", "insert", "wrap", "duplicate", "empty"]))
    if isinstance(container, dict):
        if not container:
            container[draw(st.sampled_from(["version", "steps", "x", ""]))] = _odd_value(draw)
            return
        key = draw(st.sampled_from(sorted(container, key=str)))
        if operation == "drop":
            del container[key]
        elif operation == "rename":
            container[_typo(draw, str(key))] = container.pop(key)
        elif operation == "swap":
            container[key] = _odd_value(draw)
        elif operation == "insert":
            name = draw(st.one_of(st.text(max_size=12), st.sampled_from(["steps", "ladder", "fees", "rate"])))
            container[name] = _odd_value(draw)
        elif operation == "wrap":
            container[key] = [container[key]]
        elif operation == "duplicate":
            container[_typo(draw, str(key))] = copy.deepcopy(container[key])
        else:
            container[key] = copy.deepcopy(draw(st.sampled_from([None, {}, [], ""])))
    else:
        mutate_list(draw, container, operation, _odd_value, lambda item: {"item": item})


def _mutate_text(draw: Draw, text: str) -> str:
    operation = draw(
        st.sampled_from(
            [
                "truncate",
                "tab",
                "bom",
                "crlf",
                "cr",
                "indent",
                "duplicate_line",
                "delete_line",
                "scalar",
                "insert_text",
                "swap_lines",
            ]
        )
    )
    lines = text.split("\n")
    line_index = draw(st.integers(0, max(len(lines) - 1, 0)))
    position = draw(st.integers(0, len(text)))
    if operation == "truncate":
        return text[:position]
    if operation == "tab":
        return text[:position] + "\t" + text[position:]
    if operation == "bom":
        return "\ufeff" + text if draw(st.booleans()) else text[:position] + "\ufeff" + text[position:]
    if operation == "crlf":
        return text.replace("\n", "\r\n")
    if operation == "cr":
        return text[:position] + "\r" + text[position:]
    if operation == "indent":
        line = lines[line_index]
        shift = draw(st.sampled_from([-4, -2, -1, 1, 2, 3, 8]))
        lines[line_index] = " " * shift + line if shift > 0 else line[-shift:]
        return "\n".join(lines)
    if operation == "duplicate_line":
        lines.insert(line_index, lines[line_index])
        return "\n".join(lines)
    if operation == "delete_line":
        del lines[line_index]
        return "\n".join(lines)
    if operation == "swap_lines" and len(lines) > 1:
        other = draw(st.integers(0, len(lines) - 1))
        lines[line_index], lines[other] = lines[other], lines[line_index]
        return "\n".join(lines)
    if operation == "scalar":
        line = lines[line_index]
        scalar = draw(st.sampled_from(ODD_SCALARS))
        if ": " in line:
            head = line.split(": ", 1)[0]
            lines[line_index] = f"{head}: {scalar}"
        elif line.lstrip().startswith("- "):
            lines[line_index] = line[: line.index("- ") + 2] + scalar
        else:
            lines[line_index] = line + scalar
        return "\n".join(lines)
    return text[:position] + draw(st.text(max_size=20)) + text[position:]


@st.composite
def policy_texts(draw: Draw) -> str:
    """A shipped example policy, mutated structurally and/or textually (sometimes not at all)."""
    examples = example_texts()
    text = examples[draw(st.sampled_from(sorted(examples)))]
    structural = draw(st.integers(0, 4))
    if structural:
        data = _load_plain(text)
        for _ in range(structural):
            _mutate_tree(draw, data)
        text = dump_yaml(data, flow=draw(st.sampled_from([None, False, True])))
    for _ in range(draw(st.integers(0 if structural else 1, 3))):
        text = _mutate_text(draw, text)
    return text


def check_policy(text: str) -> str:
    """'valid' or 'rejected'; AssertionError when a rejection is not a clear file:line message.
    Any other exception escapes: that is a crash."""
    try:
        policy = parse_policy(text, SOURCE)
    except PolicyError as error:
        assert error.problems, "PolicyError without problems"
        for problem in error.problems:
            found = PROBLEM_LINE.match(problem)
            assert found, f"problem does not start with '{SOURCE}:<line>: ' or spans lines: {problem!r}"
            assert 1 <= int(found["line"]) <= text.count("\n") + text.count("\r") + 2, problem
            message = found["message"]
            assert len(message) >= 5 and "Traceback" not in message and " object at 0x" not in message, (
                problem
            )
        return "rejected"
    assert isinstance(policy, Policy)
    plan_small_ledger(policy)
    return "valid"


def plan_small_ledger(policy: Policy) -> None:
    """A policy that parses must also plan: a few invoices (due soon, due today, 20 and 400 days late),
    a B2B and a B2C customer, planned on one day. RelanceError is a clear message; anything else escapes."""
    today = date(2026, 4, 15)
    currency = policy.company.currency
    customers = {
        "C1": Customer(id="C1", name="Dupont", emails=("a@dupont.example",), kind=CustomerKind.B2B),
        "C2": Customer(
            id="C2", name="Martin", emails=("m@martin.example",), kind=CustomerKind.B2C, tags=("key",)
        ),
    }
    invoices = [
        Invoice(
            id=f"I{index}",
            number=f"F-{index}",
            customer_id="C1" if index % 2 else "C2",
            issue_date=date.fromordinal(today.toordinal() - days_late - 30),
            due_date=date.fromordinal(today.toordinal() - days_late),
            currency=currency,
            total=Money(Decimal("1200.00"), currency),
            balance=Money(Decimal("1200.00"), currency),
            status=InvoiceStatus.OPEN,
        )
        for index, days_late in enumerate((-15, 0, 20, 400))
    ]
    with contextlib.suppress(RelanceError):  # a clear message is an acceptable outcome
        plan_day(policy=policy, today=today, customers=customers, invoices=invoices)
