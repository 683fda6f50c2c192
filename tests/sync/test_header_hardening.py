"""Regression tests for the bad email header inputs the fuzzer found (tests/support/fuzz/headers.py):
exact messages and behaviours behind the fuzz properties (line endings, display names, languages)."""

from __future__ import annotations

from datetime import datetime
from email import policy as email_policy
from email.parser import BytesParser

import pytest

from policies.model.errors import RelanceError
from sync.channels.render import RenderedNotice
from sync.channels.transports import compose_email

# --- email headers ---------------------------------------------------------------------------------------

LINE_ENDINGS = ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x7f"]


@pytest.mark.parametrize("separator", LINE_ENDINGS)
def test_every_line_ending_in_a_subject_is_refused(separator: str) -> None:
    notice = RenderedNotice(f"Overdue{separator}Bcc: victim@evil.example", "t\n", "<p>t</p>\n")
    with pytest.raises(RelanceError, match="control character"):
        compose_email(notice, sender="a@exemple.example", to=["c@dupont.example"], message_id_key="k1")


@pytest.mark.parametrize("separator", ["\u2028", "\x85"])
def test_a_line_ending_in_a_display_name_is_refused(separator: str) -> None:
    notice = RenderedNotice("Overdue", "t\n", "<p>t</p>\n")
    with pytest.raises(RelanceError):
        compose_email(
            notice,
            sender="a@exemple.example",
            to=[f"Dupont{separator}Bcc: v@evil.example <c@dupont.example>"],
            message_id_key="k1",
        )


def test_sent_messages_carry_content_language() -> None:
    notice = RenderedNotice("Relance", "Bonjour\n", "<p>Bonjour</p>\n", language="fr")
    message = compose_email(
        notice,
        sender="a@exemple.example",
        to=["c@dupont.example"],
        message_id_key="k1",
        date=datetime(2026, 2, 1, 9, 0),
    )
    parsed = BytesParser(policy=email_policy.default).parsebytes(message.as_bytes(policy=email_policy.SMTP))
    assert parsed["Content-Language"] == "fr"
    assert parsed.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert all(part["Content-Language"] is None for part in parsed.iter_parts())  # once, at the top
