"""Channel plugins: what a `relance.channels` entry point names.

A plugin pairs the rules' view of a channel (`ChannelSpec`: its name and the kind of notice it
carries) with the way relance delivers it. Only the spec is needed to validate and plan; the
delivery side is imported when a notice is actually sent, so loading the registry stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from policies.rulebook import ChannelSpec

CHANNELS_GROUP = "relance.channels"


@dataclass(frozen=True, slots=True)
class ChannelPlugin:
    spec: ChannelSpec
    # Builds the channel's sender for one run (see sync.channels.sender); None: the ledger carries
    # the notice itself (ledger_email goes through the connector's writes).
    sender: Callable[..., Any] | None = None
