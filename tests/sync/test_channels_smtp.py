"""Email composition and delivery: header injection, a real SMTP server (aiosmtpd), .eml files."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from policies.model.errors import RelanceError
from sync.channels.render import RenderedNotice
from sync.channels.transports import (
    FileTransport,
    SmtpTransport,
    TransportError,
    compose_email,
    parse_address,
    transport_from_config,
)

KEY = "0123456789abcdef0123456789abcdef"
RENDERED = RenderedNotice(
    subject="Relance : facture F-2026-001 impayée – 1 200,00 €",
    text="Bonjour Dupont <script>,\n\nMerci de régler 1 200,00 €.\n",
    html="<!DOCTYPE html><html><body><p>Bonjour Dupont &lt;script&gt;,</p></body></html>\n",
    language="fr",
    template="fr/late_1.j2",
)
WHEN = datetime(2026, 2, 25, 9, 30, tzinfo=UTC)


def compose(**overrides: Any) -> EmailMessage:
    arguments: dict[str, Any] = {
        "sender": "Exemple SAS <credit@exemple.fr>",
        "to": ["ap@dupont.example"],
        "reply_to": "compta@exemple.fr",
        "message_id_key": KEY,
        "date": WHEN,
    }
    arguments.update(overrides)
    rendered = arguments.pop("rendered", RENDERED)
    return compose_email(rendered, **arguments)


# --- composition -----------------------------------------------------------------------------------


def test_message_is_multipart_alternative_with_text_and_html() -> None:
    message = compose(cc=["boss@dupont.example"])
    assert message.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in message.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    assert message.get_body(("plain",)).get_content() == RENDERED.text  # type: ignore[union-attr]
    assert "&lt;script&gt;" in message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert message["To"] == "ap@dupont.example" and message["Cc"] == "boss@dupont.example"
    assert message["Reply-To"] == "compta@exemple.fr"
    assert message["Subject"] == RENDERED.subject  # non-ASCII survives (RFC 2047 on the wire)
    assert message["Auto-Submitted"] == "auto-generated"
    wire = message.as_bytes()
    wire.decode("ascii")  # 7-bit clean on the wire: the subject is RFC 2047 encoded
    assert b"=?utf-8?" in wire.split(b"\r\nFrom:")[0]


def test_message_id_is_derived_from_the_action_key() -> None:
    first, again, other = (
        compose(),
        compose(date=datetime(2027, 1, 1, tzinfo=UTC)),
        compose(message_id_key="b" * 32),
    )
    assert first["Message-ID"] == f"<{KEY}.relance@exemple.fr>"
    assert again["Message-ID"] == first["Message-ID"]
    assert other["Message-ID"] != first["Message-ID"]
    assert first["X-Relance-Key"] == KEY


@pytest.mark.parametrize(
    "overrides",
    [
        {"sender": "Evil\r\nBcc: x@evil.example <credit@exemple.fr>"},
        {"sender": "credit@exemple.fr\nBcc: x@evil.example"},
        {"to": ["ap@dupont.example\r\nBcc: x@evil.example"]},
        {"to": ["Dupont\r\nBcc: x@evil.example <ap@dupont.example>"]},
        {"to": ["ap@dupont.example\x00"]},
        {"cc": ["boss@dupont.example\rX-Injected: 1"]},
        {"reply_to": "compta@exemple.fr\r\nBcc: x@evil.example"},
        {"rendered": RenderedNotice("Relance\r\nBcc: x@evil.example", "t", "h")},
        {"rendered": RenderedNotice("Relance\nX-Spam: no", "t", "h")},
        {"rendered": RenderedNotice("Relance\x00", "t", "h")},
        {"message_id_key": "abc\r\nBcc: x@evil.example"},
        {"message_id_key": "../../etc/passwd"},
    ],
)
def test_header_injection_is_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(RelanceError):
        compose(**overrides)


@pytest.mark.parametrize(
    "value",
    ["not-an-address", "a@b", "a@b.example, c@d.example", "@b.example", "a b@c.example", "a@-b.example", ""],
)
def test_bad_addresses_are_refused(value: str) -> None:
    with pytest.raises(RelanceError):
        parse_address(value, "recipient")


def test_good_addresses_are_accepted() -> None:
    assert parse_address("Exemple SAS <credit@exemple.fr>").display_name == "Exemple SAS"
    assert parse_address("o'brien+ar@mail.example.co.uk").addr_spec == "o'brien+ar@mail.example.co.uk"
    assert parse_address("billing@qbo_fr.invalid").domain == "qbo_fr.invalid"


def test_no_recipient_is_a_clear_error() -> None:
    with pytest.raises(RelanceError, match="no recipient"):
        compose(to=[])


# --- a real SMTP server ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Inbox:
    def __init__(self, reply: str = "250 OK") -> None:
        self.reply = reply
        self.received: list[Envelope] = []

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.received.append(envelope)
        return self.reply


def refuse_everyone(
    server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    assert isinstance(data, LoginPassword)
    return AuthResult(success=False, handled=False)


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def test_smtp_server_receives_the_multipart_message(smtp_server: tuple[Inbox, int]) -> None:
    inbox, port = smtp_server
    message = compose(cc=["boss@dupont.example"])
    message_id = SmtpTransport("127.0.0.1", port, timeout=10).send(message)
    assert message_id == f"<{KEY}.relance@exemple.fr>"
    assert len(inbox.received) == 1
    envelope = inbox.received[0]
    assert envelope.mail_from == "credit@exemple.fr"
    assert sorted(envelope.rcpt_tos) == ["ap@dupont.example", "boss@dupont.example"]
    content = envelope.original_content or envelope.content
    assert isinstance(content, bytes)
    received = message_from_bytes(content, policy=email_policy.default)
    assert received["Message-ID"] == message_id
    assert received["Subject"] == RENDERED.subject
    assert received.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in received.iter_parts()] == ["text/plain", "text/html"]
    assert "1 200,00 €" in received.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_smtp_rejection_is_a_relance_error_that_was_not_sent() -> None:
    inbox = Inbox(reply="554 5.7.1 Message rejected as spam")
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with pytest.raises(TransportError, match=rf"127.0.0.1:{port} answered 554") as caught:
            SmtpTransport("127.0.0.1", port, timeout=10).send(compose())
    finally:
        controller.stop()
    assert caught.value.maybe_sent is False


def test_refused_login_names_the_server_but_never_the_password() -> None:
    port = free_port()
    controller = Controller(
        Inbox(), hostname="127.0.0.1", port=port, authenticator=refuse_everyone, auth_require_tls=False
    )
    controller.start()
    secret = "s3cr3t-Pa55word"
    transport = SmtpTransport("127.0.0.1", port, username="credit@exemple.fr", password=secret, timeout=10)
    try:
        with pytest.raises(TransportError) as caught:
            transport.send(compose())
    finally:
        controller.stop()
    error = caught.value
    assert f"127.0.0.1:{port}" in str(error) and "login" in str(error)
    assert error.hint and "password" in error.hint
    assert secret not in str(error) and secret not in repr(error) and secret not in repr(transport)
    assert "***" in repr(transport)
    assert error.__cause__ is None and error.__suppress_context__  # no chained traceback carrying it


def test_unreachable_server_is_a_clear_error_not_sent() -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(TransportError, match=rf"127.0.0.1:{port}: cannot connect") as caught:
        SmtpTransport("127.0.0.1", port, timeout=5).send(compose())
    assert caught.value.maybe_sent is False


# --- files and configuration -------------------------------------------------------------------------


def test_file_transport_writes_one_file_per_key(tmp_path: Path) -> None:
    transport = FileTransport(tmp_path / "emails")
    assert not transport.was_sent(KEY)
    first = transport.send(compose())
    second = transport.send(compose(date=datetime(2026, 2, 26, tzinfo=UTC)))
    assert first == second == f"<{KEY}.relance@exemple.fr>"
    files = sorted(path.name for path in (tmp_path / "emails").iterdir())
    assert files == [f"{KEY}.eml"]  # no duplicate, no leftover temporary file
    assert transport.was_sent(KEY)
    stored = message_from_bytes(
        (tmp_path / "emails" / f"{KEY}.eml").read_bytes(), policy=email_policy.default
    )
    assert stored["Message-ID"] == first and stored.get_content_type() == "multipart/alternative"
    other = transport.send(compose(message_id_key="b" * 32))
    assert other != first and len(list((tmp_path / "emails").iterdir())) == 2


def test_transport_from_config(tmp_path: Path) -> None:
    file_transport = transport_from_config({"transport": "file", "file_dir": str(tmp_path)})
    assert isinstance(file_transport, FileTransport) and file_transport.directory == tmp_path
    smtp = transport_from_config(
        {
            "transport": "smtp",
            "from": "credit@exemple.fr",
            "smtp": {
                "host": "smtp.example.com",
                "port": "587",
                "username": "u",
                "password": "pw",
                "starttls": True,
            },
        }
    )
    assert isinstance(smtp, SmtpTransport)
    assert (smtp.host, smtp.port, smtp.starttls, smtp.ssl) == ("smtp.example.com", 587, True, False)
    assert "pw" not in repr(smtp)
    implicit = transport_from_config({"transport": "smtp", "smtp": {"host": "smtp.example.com", "ssl": True}})
    assert isinstance(implicit, SmtpTransport) and implicit.port == 465


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"transport": "pigeon"}, "pigeon"),
        ({"transport": "file"}, "file_dir"),
        ({"transport": "smtp", "smtp": {}}, "host"),
        ({"transport": "smtp", "smtp": {"host": "h.example", "port": "abc"}}, "port"),
        ({"transport": "smtp", "smtp": {"host": "h.example", "port": 70000}}, "port"),
        ({"transport": "smtp", "smtp": {"host": "h.example", "ssl": True, "starttls": True}}, "starttls"),
        ({"transport": "smtp", "smtp": {"host": "h.example", "ssl": "maybe"}}, "ssl"),
    ],
)
def test_bad_email_config_is_a_clear_error(config: dict[str, Any], match: str) -> None:
    with pytest.raises(RelanceError, match=match):
        transport_from_config(config)


class SlowInbox(Inbox):
    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        import asyncio

        self.received.append(envelope)
        await asyncio.sleep(3)  # longer than the client's timeout: the reply never arrives in time
        return "250 OK"


def test_connection_lost_after_data_may_have_been_sent() -> None:
    inbox = SlowInbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with pytest.raises(TransportError, match="may have been delivered") as caught:
            SmtpTransport("127.0.0.1", port, timeout=1).send(compose())
    finally:
        controller.stop()
    assert caught.value.maybe_sent is True
    assert len(inbox.received) == 1  # the server did get it: resending blindly would duplicate it


def test_internationalised_domains_are_idna_encoded() -> None:
    from sync.channels.transports import parse_address

    address = parse_address("compta@bâtiment-martin-sarl.fr")
    assert address.addr_spec == "compta@xn--btiment-martin-sarl-bvb.fr"
