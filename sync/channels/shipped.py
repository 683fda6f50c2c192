"""The channels relance ships, registered through the `relance.channels` entry points like any
third-party channel (pyproject.toml)."""

from __future__ import annotations

from enum import StrEnum

from policies.model.actions import ActionKind
from policies.rulebook import ChannelSpec
from sync.channels.registry import ChannelPlugin, ChannelSender


class Channel(StrEnum):
    """Names of the shipped channels."""

    LEDGER_EMAIL = "ledger_email"  # the ledger's own invoice e-mail (QBO send / Xero email)
    EMAIL = "email"  # a relance e-mail over SMTP
    CALL_TASK = "call_task"  # a task for a person to phone the customer
    LETTER = "letter"  # a printable letter to post
    AGENCY = "agency"  # hand over to a collection agency


# Senders are built on first delivery: sync.channels.sender imports the renderer (Jinja2) and the
# mail transports, which validating and planning (the registry's users) never need.
def email_sender() -> ChannelSender:
    from sync.channels.sender import EmailSender

    return EmailSender()


def task_sender() -> ChannelSender:
    from sync.channels.sender import TaskSender

    return TaskSender()


def agency_sender() -> ChannelSender:
    from sync.channels.sender import AgencySender

    return AgencySender()


LEDGER_EMAIL = ChannelPlugin(
    ChannelSpec(
        Channel.LEDGER_EMAIL.value,
        ActionKind.REMINDER,
        "the ledger's own invoice e-mail",
        email=True,
        rank=10,
    )
)
EMAIL = ChannelPlugin(
    ChannelSpec(Channel.EMAIL.value, ActionKind.REMINDER, "a relance e-mail", email=True, rank=20),
    email_sender,
)
CALL_TASK = ChannelPlugin(
    ChannelSpec(Channel.CALL_TASK.value, ActionKind.TASK, "a call task for a person", rank=30), task_sender
)
LETTER = ChannelPlugin(
    ChannelSpec(Channel.LETTER.value, ActionKind.REMINDER, "a letter to print and post", rank=40), task_sender
)
AGENCY = ChannelPlugin(
    ChannelSpec(Channel.AGENCY.value, ActionKind.AGENCY, "a hand-over to the collection agency", rank=50),
    agency_sender,
)
