"""The channels relance ships, registered through the `relance.channels` entry points like any
third-party channel (pyproject.toml)."""

from __future__ import annotations

from enum import StrEnum

from policies.model.actions import ActionKind
from policies.rulebook import ChannelSpec
from sync.channels.registry import ChannelPlugin


class Channel(StrEnum):
    """Names of the shipped channels."""

    LEDGER_EMAIL = "ledger_email"  # the ledger's own invoice e-mail (QBO send / Xero email)
    EMAIL = "email"  # a relance e-mail over SMTP
    CALL_TASK = "call_task"  # a task for a person to phone the customer
    LETTER = "letter"  # a printable letter to post
    AGENCY = "agency"  # hand over to a collection agency


LEDGER_EMAIL = ChannelPlugin(
    ChannelSpec(
        Channel.LEDGER_EMAIL, ActionKind.REMINDER, "the ledger's own invoice e-mail", email=True, rank=10
    )
)
EMAIL = ChannelPlugin(
    ChannelSpec(Channel.EMAIL, ActionKind.REMINDER, "a relance e-mail", email=True, rank=20)
)
CALL_TASK = ChannelPlugin(
    ChannelSpec(Channel.CALL_TASK, ActionKind.TASK, "a call task for a person", rank=30)
)
LETTER = ChannelPlugin(
    ChannelSpec(Channel.LETTER, ActionKind.REMINDER, "a letter to print and post", rank=40)
)
AGENCY = ChannelPlugin(
    ChannelSpec(Channel.AGENCY, ActionKind.AGENCY, "a hand-over to the collection agency", rank=50)
)
