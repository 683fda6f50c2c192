"""Notice rendering: Jinja2 templates in a sandbox, an autoescaped HTML part and a plain-text part.

Templates live in `<dir>/<language>/<name>.j2`; user directories come first, the shipped ones last, so
a user overrides one notice (or one language base) without copying the rest. Each notice extends
`<language>/_base.j2` (labels and legal texts of the language), which extends the shared `base.j2`
(layout: invoice table, charges, total, pay links, signature, legal footer). A notice fills the blocks
`subject`, `message` (prose, written once: escaped for HTML, kept as is for text) and optionally
`postscript`; it may also replace the whole `text` or `html` block.

Templates are user input: they run in an immutable sandbox (no `__class__`, no `__globals__`, no
mutation of the context), with StrictUndefined so a typo fails loudly instead of printing nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
    pass_context,
)
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from markupsafe import Markup, escape

from policies.model.errors import RelanceError
from policies.model.money import CurrencyMismatch, Money, minor_unit, round_half_up, to_decimal

from .context import NoticeContext

log = logging.getLogger(__name__)

SHIPPED_TEMPLATES = Path(__file__).resolve().parent / "templates"
FALLBACK_LANGUAGE = "en"
TEMPLATE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")

# CLDR separators: French groups with a narrow no-break space; both fr and de put a no-break space
# before the symbol, so an amount never wraps across lines.
_NBSP = "\u00a0"
_NNBSP = "\u202f"
_SYMBOLS = {"EUR": "€", "GBP": "£", "USD": "$", "JPY": "¥", "CHF": "CHF"}
_MONTHS = {
    "fr": (
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ),
    "de": (
        "Januar",
        "Februar",
        "März",
        "April",
        "Mai",
        "Juni",
        "Juli",
        "August",
        "September",
        "Oktober",
        "November",
        "Dezember",
    ),
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
}


def _group(value: Decimal, decimals: int, language: str) -> str:
    text = f"{value:,.{decimals}f}"  # "1,200.00"
    if language == "fr":
        return text.replace(",", _NNBSP).replace(".", ",")
    if language == "de":
        return text.replace(",", "\0").replace(".", ",").replace("\0", ".")
    return text


def format_money(money: Money, language: str) -> str:
    """fr '1 200,00 €' (U+202F group, U+00A0 before €), de '1.200,00 €', en '€1,200.00' / '£1,200.00'."""
    currency = money.currency
    value = round_half_up(money.amount, currency)
    sign = "-" if value < 0 else ""
    number = _group(abs(value), minor_unit(currency), language)
    symbol = _SYMBOLS.get(currency)
    if language in ("fr", "de"):
        return f"{sign}{number}{_NBSP}{symbol or currency}"
    if symbol and len(symbol) == 1:
        return f"{sign}{symbol}{number}"
    return f"{sign}{currency}{_NBSP}{number}"


def format_date(day: date, language: str) -> str:
    """fr '1er mars 2026' / '15 mars 2026', de '15. März 2026', en '15 March 2026'."""
    months = _MONTHS.get(language, _MONTHS["en"])
    month = months[day.month - 1]
    if language == "fr":
        return f"{'1er' if day.day == 1 else day.day} {month} {day.year}"
    if language == "de":
        return f"{day.day}. {month} {day.year}"
    return f"{day.day} {month} {day.year}"


def format_percent(value: object, language: str) -> str:
    """fr/de '10,5 %' (no-break space), en '10.5%'; trailing zeros dropped."""
    number = to_decimal(str(value)) if not isinstance(value, Decimal) else value
    text = format(number.normalize(), "f") if number == number.to_integral() else format(number, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if language in ("fr", "de"):
        return f"{text.replace('.', ',')}{_NBSP}%"
    return f"{text}%"


def safe_url(value: object) -> str:
    """Only http(s) links reach a notice: a `javascript:` pay link from a ledger is dropped."""
    text = str(value or "").strip()
    parts = urlsplit(text)
    if parts.scheme in ("http", "https") and parts.netloc and not any(c in text for c in "\r\n\0\"'<> "):
        return text
    return ""


def _language_of(context: Context) -> str:
    return str(context.get("lang", FALLBACK_LANGUAGE))


@pass_context
def _money_filter(context: Context, value: object) -> str:
    if not isinstance(value, Money):
        raise TypeError(f"the money filter needs an amount with a currency, got {value!r}")
    return format_money(value, _language_of(context))


@pass_context
def _date_filter(context: Context, value: object) -> str:
    if isinstance(value, str):
        value = date.fromisoformat(value)
    if not isinstance(value, date):
        raise TypeError(f"the date filter needs a date, got {value!r}")
    return format_date(value, _language_of(context))


@pass_context
def _percent_filter(context: Context, value: object) -> str:
    return format_percent(value, _language_of(context))


def _paragraphs(value: object) -> list[str]:
    return [block.strip("\n") for block in re.split(r"\n[ \t]*\n", str(value)) if block.strip()]


def _ucfirst(value: object) -> str:
    text = str(value)
    return text[:1].upper() + text[1:]


def _nl2br(value: object) -> Markup:
    return Markup("<br>\n").join(escape(line) for line in str(value).split("\n"))


@dataclass(frozen=True, slots=True)
class RenderedNotice:
    subject: str
    text: str
    html: str
    language: str = FALLBACK_LANGUAGE  # the language actually rendered (after any fallback)
    template: str = ""  # the template path used, e.g. "fr/late_1.j2"
    warnings: tuple[str, ...] = ()


class Renderer:
    """Renders notices from user template directories (searched first) and the shipped templates."""

    def __init__(self, template_dirs: Sequence[Path | str] = ()) -> None:
        user_dirs = []
        for raw in template_dirs:
            path = Path(raw)
            if not path.is_dir():
                raise RelanceError(
                    f"notice templates directory {path} does not exist",
                    hint="create it or fix templates_dirs in relance.yaml",
                )
            user_dirs.append(path)
        self.search_path: tuple[Path, ...] = (*user_dirs, SHIPPED_TEMPLATES)
        loader = FileSystemLoader([str(path) for path in self.search_path], encoding="utf-8")
        self._html = self._environment(loader, autoescape=True)
        self._text = self._environment(loader, autoescape=False)

    @staticmethod
    def _environment(loader: FileSystemLoader, *, autoescape: bool) -> ImmutableSandboxedEnvironment:
        env = ImmutableSandboxedEnvironment(
            loader=loader,
            autoescape=autoescape,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.filters.update(
            money=_money_filter,
            date=_date_filter,
            percent=_percent_filter,
            safe_url=safe_url,
            paragraphs=_paragraphs,
            nl2br=_nl2br,
            ucfirst=_ucfirst,
        )
        return env

    def _searched(self) -> str:
        return ", ".join(str(path) for path in self.search_path)

    def _load(self, env: ImmutableSandboxedEnvironment, path: str) -> Template | None:
        try:
            return env.get_template(path)
        except TemplateNotFound as exc:
            if exc.name != path:  # the notice exists but extends/includes something missing
                raise RelanceError(
                    f"notice template {path}: it refers to {exc.name}, which is not in {self._searched()}"
                ) from None
            return None
        except TemplateSyntaxError as exc:
            raise RelanceError(
                f"notice template {exc.filename or path}, line {exc.lineno}: {exc.message}",
                hint="fix the Jinja2 syntax of the template",
            ) from None

    def resolve(self, name: str, language: str) -> tuple[str, str, tuple[str, ...]]:
        """(language used, template path, warnings). Falls back to English with a warning."""
        if not TEMPLATE_NAME.fullmatch(name or ""):
            raise RelanceError(
                f"notice template name {name!r} is not valid",
                hint="use lower-case letters, digits, '_' or '-' (e.g. late_1) in the ladder step's template",
            )
        candidates = [language] if language == FALLBACK_LANGUAGE else [language, FALLBACK_LANGUAGE]
        for candidate in candidates:
            path = f"{candidate}/{name}.j2"
            if self._load(self._text, path) is None:
                continue
            warnings: tuple[str, ...] = ()
            if candidate != language:
                message = f"no {language} notice template {name!r}; using the English one"
                log.warning(message)
                warnings = (message,)
            return candidate, path, warnings
        raise RelanceError(
            f"notice template {name!r} not found for language {language}"
            + (f" nor {FALLBACK_LANGUAGE}" if language != FALLBACK_LANGUAGE else "")
            + f"; searched {self._searched()}",
            hint=f"add {language}/{name}.j2 to a templates directory or fix the ladder step's template",
        )

    def _render(self, env: ImmutableSandboxedEnvironment, path: str, variables: dict[str, Any]) -> str:
        template = self._load(env, path)
        if template is None:  # vanished between resolve and render
            raise RelanceError(f"notice template {path} not found; searched {self._searched()}")
        try:
            return template.render(variables)
        except SecurityError as exc:
            raise RelanceError(
                f"notice template {path}: forbidden ({exc})",
                hint="templates may only use the notice variables and filters",
            ) from None
        except UndefinedError as exc:
            raise RelanceError(
                f"notice template {path}: {exc}",
                hint="check the variable names against the notice context (see the shipped templates)",
            ) from None
        except TemplateSyntaxError as exc:
            raise RelanceError(
                f"notice template {exc.filename or path}, line {exc.lineno}: {exc.message}"
            ) from None
        except TemplateError as exc:
            raise RelanceError(f"notice template {path}: {exc}") from None
        except (TypeError, ValueError, ArithmeticError, LookupError, CurrencyMismatch) as exc:
            raise RelanceError(f"notice template {path}: {type(exc).__name__}: {exc}") from None

    def render(self, ctx: NoticeContext) -> RenderedNotice:
        language, path, warnings = self.resolve(ctx.template, ctx.language)
        variables: dict[str, Any] = {field.name: getattr(ctx, field.name) for field in fields(ctx)}
        variables.update(
            ctx=ctx,
            lang=language,
            customer_name=ctx.customer_name,
            max_days_late=ctx.max_days_late,
            pay_links=ctx.pay_links,
            short_reference=ctx.short_reference,
        )

        def part(env: ImmutableSandboxedEnvironment, name: str, **extra: Any) -> str:
            return self._render(env, path, {**variables, **extra, "part": name})

        subject = part(self._text, "subject").strip()
        message = part(self._text, "message").strip("\n")
        postscript = part(self._text, "postscript").strip("\n")
        text = part(self._text, "text", message_text=message, postscript_text=postscript)
        html = part(self._html, "html", message_text=message, postscript_text=postscript)
        text = re.sub(r"\n{3,}", "\n\n", text).strip("\n") + "\n"
        return RenderedNotice(subject.strip(), text, html.strip() + "\n", language, path, warnings)


_default_renderer: Renderer | None = None


def default_renderer() -> Renderer:
    global _default_renderer
    if _default_renderer is None:
        _default_renderer = Renderer()
    return _default_renderer


def render_notice(ctx: NoticeContext, *, renderer: Renderer | None = None) -> RenderedNotice:
    """Subject, plain text and HTML of one notice (shipped templates unless a renderer is given)."""
    return (renderer or default_renderer()).render(ctx)
