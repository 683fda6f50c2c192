"""Email composition and delivery: SMTP, or .eml files in an outbox folder.

Headers are built from ledger data (customer names, addresses) and from templates, so every header
value is checked: a CR, LF or NUL anywhere is refused outright (never "cleaned"), addresses must be
one plain mailbox each. The Message-ID is derived from the action key, so a retransmission after a
crash carries the same id and the recipient's mail system (or the operator) can recognise it.

SMTP cannot be verified after the fact, so SmtpTransport says, on failure, whether the message may
have gone out (`TransportError.maybe_sent`): the outbox marks such actions uncertain rather than
sending twice. FileTransport is verifiable (`was_sent`) and idempotent: one file per key.
"""

from __future__ import annotations

import contextlib
import logging
import re
import smtplib
import socket
import ssl as ssl_module
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email import policy as email_policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, parseaddr
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from connectors.files import write_atomic
from policies.model.errors import RelanceError

from .render import RenderedNotice

log = logging.getLogger(__name__)

KEY_HEADER = "X-Relance-Key"
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_DOMAIN = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9-]{0,62}")


class TransportError(RelanceError):
    """Delivery failed. `maybe_sent`: the failure came after the message body was handed over, so
    the message may have been delivered (never resend blindly)."""

    def __init__(self, message: str, *, hint: str | None = None, maybe_sent: bool = False) -> None:
        super().__init__(message, hint=hint)
        self.maybe_sent = maybe_sent


@runtime_checkable
class Transport(Protocol):
    def send(self, message: EmailMessage) -> str:
        """Deliver the message; returns its Message-ID."""
        ...


# --- header validation ----------------------------------------------------------------------------


def _breaks_header(char: str) -> bool:
    """C0 controls but tab, DEL, C1 controls, and every character str.splitlines() ends a line at
    (U+2028, U+2029, U+0085, U+001C-U+001E...): email.policy refuses them, some mail readers split on them."""
    return (ord(char) < 32 and char != "\t") or 0x7F <= ord(char) <= 0x9F or len(f"a{char}b".splitlines()) > 1


def _check_header_text(value: str, field: str) -> str:
    if not isinstance(value, str):
        raise RelanceError(f"email {field}: expected text, got {type(value).__name__}")
    bad = next((char for char in value if _breaks_header(char)), None)
    if bad is not None:
        raise RelanceError(
            f"email {field} contains a control character ({bad!r}): refused, a header must be one line",
            hint="fix the value in the ledger or the template (line breaks are not allowed in email headers)",
        )
    return value


def parse_address(value: str, field: str = "address") -> Address:
    """One mailbox ('Name <a@b.example>' or 'a@b.example'), strictly checked; RelanceError otherwise."""
    _check_header_text(value, field)
    if len(getaddresses([value])) != 1:
        raise RelanceError(
            f"email {field} {value!r} holds several addresses", hint="give one address per entry"
        )
    name, addr = parseaddr(value)
    local, at, domain = addr.rpartition("@")
    if at and domain and not domain.isascii():
        # Internationalised domain (bâtiment-martin.fr): IDNA-encode it, as mail servers expect.
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            domain = ""
        addr = f"{local}@{domain}"
    if not at or not _LOCAL_PART.fullmatch(local) or not _DOMAIN.fullmatch(domain) or len(addr) > 254:
        raise RelanceError(
            f"email {field} {value!r} is not a valid address",
            hint="expected name@domain.tld, optionally as 'Name <name@domain.tld>'",
        )
    try:
        return Address(display_name=name, addr_spec=addr)
    except (ValueError, IndexError) as exc:
        raise RelanceError(f"email {field} {value!r} is not a valid address: {exc}") from None


def checked_key(key: str) -> str:
    """An action key fit for a Message-ID and a file name (no path separators, no spaces)."""
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise RelanceError(f"action key {key!r} is not valid", hint="use letters, digits, '.', '_' or '-'")
    return key


def message_id_for(key: str, sender: Address) -> str:
    """Deterministic Message-ID: the same action key always gives the same id."""
    return f"<{checked_key(key)}.relance@{sender.domain}>"


def compose_email(
    rendered: RenderedNotice,
    *,
    sender: str,
    to: Sequence[str],
    reply_to: str | None = None,
    cc: Sequence[str] = (),
    message_id_key: str,
    date: datetime | None = None,
) -> EmailMessage:
    """A multipart/alternative (text + HTML) message with validated headers."""
    if isinstance(to, str):
        to = (to,)
    if not to:
        raise RelanceError(
            "email: no recipient address", hint="add an email address to the customer in the ledger"
        )
    from_address = parse_address(sender, "sender")
    recipients = tuple(parse_address(item, "recipient") for item in to)
    copies = tuple(parse_address(item, "cc") for item in cc)
    subject = _check_header_text(rendered.subject, "subject")
    message = EmailMessage(policy=email_policy.SMTP)
    message["Subject"] = subject
    message["From"] = from_address
    message["To"] = recipients
    if copies:
        message["Cc"] = copies
    if reply_to:
        message["Reply-To"] = parse_address(reply_to, "reply_to")
    message["Date"] = format_datetime(date or datetime.now(UTC))
    message["Message-ID"] = message_id_for(message_id_key, from_address)
    message[KEY_HEADER] = message_id_key
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: auto-responders must not reply
    language = _check_header_text(rendered.language, "language") if rendered.language else None
    # Quoted-printable keeps the message 7-bit clean for servers without 8BITMIME.
    message.set_content(rendered.text, cte="quoted-printable")
    message.add_alternative(rendered.html, subtype="html", cte="quoted-printable")
    if language:  # only now: set_content() drops Content-* headers, add_alternative() moves them to a part
        message["Content-Language"] = language
    return message


def message_key(message: EmailMessage) -> str:
    """The action key of a composed message (its X-Relance-Key, else taken from the Message-ID)."""
    key = message.get(KEY_HEADER)
    if not key:
        message_id = str(message.get("Message-ID") or "")
        key = message_id.strip("<>").split("@", 1)[0].removesuffix(".relance")
    key = str(key)
    if not _KEY.fullmatch(key):
        raise RelanceError(f"email has no usable key (Message-ID {message.get('Message-ID')!r})")
    return key


# --- files ----------------------------------------------------------------------------------------


def atomic_write(path: Path, data: bytes) -> Path:
    """Write a private file atomically (readers, or a crash, see all or nothing)."""
    try:
        write_atomic(path, data)
    except OSError as exc:
        raise RelanceError(
            f"cannot write {path}: {exc.strerror or exc}", hint="check that the outbox folder is writable"
        ) from None
    return path


class FileTransport:
    """Writes each message to `<directory>/<key>.eml`; sending the same key twice leaves one file."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    def __repr__(self) -> str:
        return f"FileTransport(directory={str(self.directory)!r})"

    def path_for(self, key: str) -> Path:
        return self.directory / f"{checked_key(key)}.eml"

    def send(self, message: EmailMessage) -> str:
        path = self.path_for(message_key(message))
        atomic_write(path, message.as_bytes(policy=email_policy.SMTP))
        return str(message["Message-ID"])

    def was_sent(self, key: str) -> bool:
        return self.path_for(key).is_file()


# --- SMTP -----------------------------------------------------------------------------------------


def _reply_text(reply: bytes | str) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


class SmtpTransport:
    """Sends through an SMTP server (plain, STARTTLS or implicit TLS), one connection per message."""

    def __init__(
        self,
        host: str,
        port: int | None = None,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        ssl: bool = False,
        timeout: float = 30,
        ssl_context: ssl_module.SSLContext | None = None,
    ) -> None:
        if not host:
            raise RelanceError("email.smtp.host is missing", hint="set email.smtp.host in relance.yaml")
        if starttls and ssl:
            raise RelanceError(
                "email.smtp: starttls and ssl cannot both be true",
                hint="use ssl: true for port 465 (implicit TLS) or starttls: true for port 587",
            )
        self.host = host
        self.port = int(port) if port else (465 if ssl else 587 if starttls else 25)
        self.username = username or None
        self._password = password or None
        self.starttls = starttls
        self.ssl = ssl
        self.timeout = timeout
        self._ssl_context = ssl_context

    def __repr__(self) -> str:
        secret = "'***'" if self._password else "None"
        return (
            f"SmtpTransport(host={self.host!r}, port={self.port}, username={self.username!r}, "
            f"password={secret}, starttls={self.starttls}, ssl={self.ssl}, timeout={self.timeout})"
        )

    @property
    def where(self) -> str:
        return f"SMTP server {self.host}:{self.port}"

    def _scrub(self, text: object) -> str:
        result = str(text)
        if self._password:
            result = result.replace(self._password, "***")
        return result

    def _context(self) -> ssl_module.SSLContext:
        return self._ssl_context or ssl_module.create_default_context()

    def _connect(self) -> smtplib.SMTP:
        if self.ssl:
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=self._context())
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        if self.starttls:
            smtp.starttls(context=self._context())
        return smtp

    def send(self, message: EmailMessage) -> str:
        message_id = str(message["Message-ID"])
        handed_over = False  # True once the DATA command started: from then on it may have been delivered
        smtp: smtplib.SMTP | None = None
        try:
            smtp = self._connect()
            if self.username:
                smtp.login(self.username, self._password or "")
            handed_over = True
            refused = smtp.send_message(message)
            handed_over = False
            if refused:
                log.warning(
                    "%s refused some recipients of %s: %s", self.where, message_id, ", ".join(refused)
                )
            return message_id
        except smtplib.SMTPAuthenticationError as exc:
            raise TransportError(
                f"{self.where} refused the login of {self.username!r} ({exc.smtp_code})",
                hint="check email.smtp.username and the password variable (email.smtp.password_env)",
            ) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise TransportError(
                f"{self.where} does not support {self._scrub(exc) or 'the requested extension'}",
                hint="check email.smtp.starttls / ssl and whether the server needs a login",
            ) from None
        except smtplib.SMTPRecipientsRefused as exc:
            every = ", ".join(f"{addr} ({code})" for addr, (code, _) in exc.recipients.items())
            raise TransportError(
                f"{self.where} refused every recipient of {message_id}: {every}",
                hint="check the customer's email address in the ledger",
            ) from None
        except smtplib.SMTPSenderRefused as exc:
            raise TransportError(
                f"{self.where} refused the sender {exc.sender} "
                f"({exc.smtp_code} {self._scrub(_reply_text(exc.smtp_error))})",
                hint="check email.from: the server may only accept its own domain or the login's address",
            ) from None
        except smtplib.SMTPResponseException as exc:
            # A definite SMTP error reply (e.g. 554 on DATA): the server did not accept the message.
            error = _reply_text(exc.smtp_error)
            raise TransportError(
                f"{self.where} answered {exc.smtp_code} {self._scrub(error)} for {message_id}",
                hint="see the server's message; a 4xx answer is temporary, retry later",
            ) from None
        except ssl_module.SSLCertVerificationError as exc:
            raise TransportError(
                f"{self.where}: TLS certificate not trusted ({exc.verify_message})",
                hint="check email.smtp.host (the name must match the certificate)",
            ) from None
        except socket.gaierror:
            raise TransportError(
                f"{self.where}: host name not found", hint="check email.smtp.host in relance.yaml"
            ) from None
        except (smtplib.SMTPException, OSError) as exc:  # disconnects, timeouts, refused connections, TLS
            what = (
                "timed out"
                if isinstance(exc, TimeoutError | socket.timeout)
                else self._scrub(exc) or type(exc).__name__
            )
            if handed_over:
                raise TransportError(
                    f"{self.where}: connection lost while sending {message_id} ({what}); "
                    "it may have been delivered",
                    hint="check the mailbox before resending",
                    maybe_sent=True,
                ) from None
            raise TransportError(
                f"{self.where}: cannot connect ({what})",
                hint="check email.smtp.host, port, ssl/starttls and that the server is reachable",
            ) from None
        finally:
            if smtp is not None:
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    smtp.quit()
                with contextlib.suppress(OSError):
                    smtp.close()


# --- configuration --------------------------------------------------------------------------------


def _flag(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "1", "false", "no", "0"):
        return value.strip().lower() in ("true", "yes", "1")
    raise RelanceError(f"email.smtp.{field} must be true or false, got {value!r}")


def transport_from_config(email_config: Mapping[str, Any]) -> SmtpTransport | FileTransport:
    """{transport: smtp|file, smtp: {host, port, username, password, starttls, ssl, timeout}, file_dir}.

    The password must already be resolved by the caller (from its environment variable)."""
    kind = str(email_config.get("transport") or "file").strip().lower()
    if kind == "file":
        directory = email_config.get("file_dir")
        if not directory:
            raise RelanceError(
                "email.file_dir is missing", hint="set email.file_dir (the folder for .eml files)"
            )
        return FileTransport(Path(str(directory)))
    if kind == "smtp":
        smtp = email_config.get("smtp") or {}
        if not isinstance(smtp, Mapping):
            raise RelanceError(
                "email.smtp must be a mapping", hint="e.g. smtp: {host: smtp.example.com, port: 587}"
            )
        port = smtp.get("port")
        if port is not None:
            try:
                port = int(port)
            except (TypeError, ValueError):
                raise RelanceError(f"email.smtp.port must be a number, got {port!r}") from None
            if not 0 < port < 65536:
                raise RelanceError(f"email.smtp.port {port} is out of range", hint="usually 25, 465 or 587")
        timeout = smtp.get("timeout", 30)
        try:
            timeout = float(timeout)
        except (TypeError, ValueError):
            raise RelanceError(f"email.smtp.timeout must be a number of seconds, got {timeout!r}") from None
        return SmtpTransport(
            host=str(smtp.get("host") or ""),
            port=port,
            username=smtp.get("username") or None,
            password=smtp.get("password") or None,
            starttls=_flag(smtp.get("starttls"), "starttls"),
            ssl=_flag(smtp.get("ssl"), "ssl"),
            timeout=timeout,
        )
    raise RelanceError(f"email.transport {kind!r} is not known", hint="use smtp or file")
