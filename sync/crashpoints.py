"""Deterministic kill points for the crash-safety harness (tests and bench only).

RELANCE_CRASHPOINT=<site>:<n> makes the process SIGKILL itself the n-th time it reaches <site>.
Sites: after_claim (intent recorded, no effect yet), after_effect (effect done in the ledger or
mailbox, not yet recorded), mid_batch (between two requests of a batch). Unset: a no-op.
"""

from __future__ import annotations

import os
import signal

_ENV = "RELANCE_CRASHPOINT"
_hits: dict[str, int] = {}


def crashpoint(site: str) -> None:
    spec = os.environ.get(_ENV)
    if not spec:
        return
    target, _, count = spec.partition(":")
    if target != site:
        return
    _hits[site] = _hits.get(site, 0) + 1
    if _hits[site] >= int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)
