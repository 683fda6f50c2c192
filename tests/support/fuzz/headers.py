"""Email headers: customer names, addresses and subjects carrying CR, LF, NUL and Unicode line
separators into sync.channels.compose_email: refused (RelanceError), or a message whose parsed
headers are exactly the ones relance writes, each once."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from email import policy as email_policy
from email.parser import BytesParser

from hypothesis import strategies as st

from policies.model.errors import RelanceError
from sync.channels.render import RenderedNotice
from sync.channels.transports import compose_email
from tests.support.fuzz.values import HEADER_BREAKERS, INJECTION, Draw

_NASTY_TEXT = st.lists(
    st.one_of(
        st.sampled_from([*HEADER_BREAKERS, ":", "<", ">", "@", ",", ";", '"', " ", "\t", "=?", "?="]),
        st.sampled_from(["Bcc: victim@evil.example", "X-Injected: yes", "To: a@evil.example", "Subject: x"]),
        st.characters(codec="utf-8"),
    ),
    max_size=12,
).map("".join)


# Any printable text, long enough to be folded and RFC 2047-encoded: quotes, commas, colons, emoji, RTL.
_PRINTABLE_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")),
    min_size=1,
    max_size=120,
).map(lambda text: text.replace("\x85", " "))


@st.composite
def header_inputs(draw: Draw) -> dict[str, str]:
    """Customer display name, address and subject, each possibly carrying an injection attempt."""
    injection = draw(st.sampled_from(INJECTION))
    breaker = draw(st.sampled_from((*HEADER_BREAKERS, "\r\n", "\n ", "\r\n\t")))
    name = draw(
        st.one_of(
            st.just("Dupont SARL"), _PRINTABLE_TEXT, _NASTY_TEXT, st.just(f"Dupont{breaker}{injection}")
        )
    )
    local = draw(st.one_of(st.just("compta"), st.just(f"compta{breaker}{injection}"), st.just("a\x00b")))
    address = f"{local}@dupont.example"
    recipient = draw(
        st.sampled_from(
            [address, f"{name} <{address}>", f'"{name}" <{address}>', f"{address}{breaker}{injection}"]
        )
    )
    subject = draw(
        st.one_of(
            st.just("Overdue: INV-0042"),
            _PRINTABLE_TEXT,
            _NASTY_TEXT,
            st.just(f"Overdue{breaker}{injection}"),
        )
    )
    return {"recipient": recipient, "subject": subject, "name": name}


REQUIRED_HEADERS = {"subject", "from", "to", "date", "message-id", "x-relance-key", "content-type"}
EXPECTED_HEADERS = {
    "subject",
    "from",
    "to",
    "date",
    "message-id",
    "x-relance-key",
    "auto-submitted",
    "content-language",
    "mime-version",
    "content-type",
}


def check_headers(inputs: Mapping[str, str]) -> str:
    """'refused' (RelanceError) or 'composed' (headers parsed back from the bytes are exactly ours)."""
    notice = RenderedNotice(subject=inputs["subject"], text="Hello\n", html="<p>Hello</p>\n", language="en")
    try:
        message = compose_email(
            notice,
            sender="Exemple SAS <compta@exemple.example>",
            to=[inputs["recipient"]],
            message_id_key="fuzz-key-0001",
            date=datetime(2026, 2, 1, 9, 0),
        )
        data = message.as_bytes(policy=email_policy.SMTP)
    except RelanceError:
        return "refused"
    parsed = BytesParser(policy=email_policy.default).parsebytes(data)
    names = [name.lower() for name in parsed]
    assert set(names) <= EXPECTED_HEADERS, f"unexpected headers {sorted(set(names) - EXPECTED_HEADERS)}"
    assert set(names) >= REQUIRED_HEADERS, f"missing headers {sorted(REQUIRED_HEADERS - set(names))}"
    assert len(names) == len(set(names)), f"a header appears twice: {names}"
    recipients = parsed.get_all("to") or []
    assert len(recipients) == 1, recipients
    addresses = [address.addr_spec for address in parsed["to"].addresses]
    assert addresses and all("evil.example" not in addr for addr in addresses), addresses
    head = data.split(b"\r\n\r\n", 1)[0]
    assert b"\x00" not in head, "NUL in the message head"
    for line in head.split(b"\r\n"):
        assert b"\r" not in line and b"\n" not in line, f"bare CR/LF in a header line: {line!r}"
    assert not re.search(rb"^(bcc|x-injected):", head, re.IGNORECASE | re.MULTILINE), head
    return "composed"
