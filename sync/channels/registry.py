"""The channel plugin contract: what a `relance.channels` entry point names.

A plugin pairs the rules' view of a channel (`ChannelSpec`: its name and the kind of notice it
carries) with the way relance delivers it (a `ChannelSender`). Only the spec is needed to validate
and plan; the sender is built when a notice is actually sent, so loading the registry stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from policies.model.actions import PlannedAction
from policies.model.ledger import Customer, Invoice
from policies.rulebook import ChannelSpec
from sync.channels.context import NoticeContext
from sync.outcome import Outcome

if TYPE_CHECKING:
    from sync.channels.render import Renderer
    from sync.channels.transports import Transport

CHANNELS_GROUP = "relance.channels"


@dataclass(frozen=True, slots=True)
class Notice:
    """One action to deliver, with its customer, the invoices it names and its template context."""

    action: PlannedAction
    customer: Customer
    invoices: Mapping[str, Invoice]
    context: NoticeContext


class ChannelKit(Protocol):
    """What a sender may use during one run of one connection."""

    connection: str
    outbox_dir: Path  # where files (letters, hand-overs, .eml) go
    renderer: Renderer  # the notice templates (render_notice)

    @property
    def email(self) -> dict[str, Any]: ...  # relance.yaml's email section (from, reply_to, ...)

    @property
    def transport(self) -> Transport: ...  # the configured mail transport

    def add_task(self, notice: Notice, *, why: str | None = None) -> Outcome: ...

    def history(self, invoice_ids: Sequence[str]) -> list[dict[str, Any]]: ...  # outbox rows, as JSON


class ChannelSender(Protocol):
    """How a channel delivers a notice."""

    def send(self, notice: Notice, kit: ChannelKit) -> Outcome:
        """Deliver; repeating it with the same action key must be harmless, or `settle` must say
        that nobody can tell."""
        ...

    def settle(self, notice: Notice, kit: ChannelKit) -> Outcome | None:
        """A delivery a crash interrupted: DONE when it provably happened, None when it provably
        did not (it is then delivered normally), UNCERTAIN when nobody can tell."""
        ...


@dataclass(frozen=True, slots=True)
class ChannelPlugin:
    spec: ChannelSpec
    # Builds the channel's sender (called once per run, on first use); None: the ledger carries the
    # notice itself (ledger_email goes through the connector's writes).
    sender: Callable[[], ChannelSender] | None = None
