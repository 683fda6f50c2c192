"""What both ledger sandboxes do the same way around their own parts: the clock, faults, request
log, OAuth authority and state lock they are built on, the server they answer through, start/stop
and URLs, token grants, the SandboxControl calls that only pass to the ledger's state (seed,
effects, truth) and the state file (save, load).

A ledger sandbox (quickbooks/sandbox.py, xero/sandbox.py) calls `__init__` for the shared parts,
builds its state, query engine and routes on them, then `_serve(...)` and `_open(...)`. What the
ledgers do differently (keying in a payment, editing invoices, their URLs) stays in its sandbox.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self

from connectors.sandbox.clock import SandboxClock
from connectors.sandbox.effects import Effect, EffectLog
from connectors.sandbox.faults import FaultKind, Faults
from connectors.sandbox.generator import GeneratedCompany, generate_company
from connectors.sandbox.messages import JsonObject, Route, SandboxRequest, SandboxResponse
from connectors.sandbox.oauth import OAuthAuthority
from connectors.sandbox.server import RequestLog, SandboxServer, write_json_atomic
from policies.model.ledger import LedgerSnapshot

# The currencies a generated company's foreign customers use, besides its own.
OTHER_CURRENCIES = ("USD", "GBP")


class LedgerState(Protocol):
    """A ledger sandbox's records (QboState, XeroState), as the shared calls use them."""

    effects: EffectLog

    def changed(self) -> None: ...

    def seed(self, company: GeneratedCompany) -> None: ...

    def truth(self) -> LedgerSnapshot: ...

    def dump(self) -> JsonObject: ...

    def restore(self, data: JsonObject) -> None: ...


class CachedQuery(Protocol):
    """A ledger sandbox's query engine (QboQuery, XeroQuery): rows cached per request shape."""

    def reset(self) -> None: ...


class SandboxLifecycle:
    """The shared half of a ledger sandbox. The ledger's `__init__` sets `state` and `query`,
    then calls `_serve` (which sets `server`) and `_open`; the class names its `ledger` and the
    scope a grant carries."""

    ledger: ClassVar[str]
    grant_scope: ClassVar[str] = ""
    state: LedgerState
    query: CachedQuery
    server: SandboxServer

    def __init__(
        self,
        *,
        seed: int | None,
        today: date | None,
        state_file: Path | None,
        faults: Faults | None,
        client_id: str,
        client_secret: str,
    ) -> None:
        self.clock = SandboxClock(today)
        self.faults = faults if faults is not None else Faults(seed=seed or 0)
        self.log = RequestLog()
        self.client_id = client_id
        self.client_secret = client_secret
        self.state_file = Path(state_file) if state_file else None
        self.authority = OAuthAuthority(client_id, client_secret, clock=self.clock)
        self.lock = threading.RLock()

    def _serve(
        self,
        routes: Sequence[Route],
        fault_response: Callable[[FaultKind, SandboxRequest], SandboxResponse],
    ) -> None:
        """The server answering `routes` (not started), with the ledger's answers to faults."""
        self.server = SandboxServer(
            routes,
            authority=self.authority,
            clock=self.clock,
            faults=self.faults,
            log=self.log,
            fault_response=fault_response,
            state_lock=self.lock,
        )

    def _open(
        self,
        *,
        seed: int | None,
        customers: int,
        invoices: int,
        today: date | None,
        country: str,
        currency: str,
        language: str,
    ) -> None:
        """The state file's ledger when the file exists; else, with a `seed` and a size, a
        generated company (at least one customer); else the ledger stays empty."""
        if self.state_file is not None and self.state_file.exists():
            self.load(self.state_file)
        elif seed is not None and (customers or invoices):
            self.seed(
                generate_company(
                    seed=seed,
                    customers=max(1, customers),
                    invoices=invoices,
                    today=today or self.clock.today(),
                    country=country,
                    currency=currency,
                    other_currencies=OTHER_CURRENCIES,
                    language=language,
                )
            )

    # ------------------------------------------------------------ serving

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self.server.start(host, port)
        return self.base_url

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def root_url(self) -> str:
        return self.server.url

    @property
    def base_url(self) -> str:  # the API root the SDK appends resource paths to
        raise NotImplementedError

    def grant(self) -> dict[str, Any]:
        """A token pair without the consent step (tests, benchmarks)."""
        return self.authority.grant(self.grant_scope)

    # ------------------------------------------------------------ SandboxControl

    def changed(self) -> None:
        """Bump the state version: cached query results are recomputed. Every write path calls
        it; code that edits the stored records directly (tests, under `lock`) must call it too."""
        self.state.changed()

    def seed(self, company: GeneratedCompany) -> None:
        """Replace the ledger with a generated company (as the ledger's state takes it in)."""
        with self.lock:
            self.query.reset()
            self.state.seed(company)

    def effects(self) -> list[Effect]:
        with self.lock:
            return self.state.effects.snapshot()

    def truth(self) -> LedgerSnapshot:
        """Every record of the ledger in the neutral model (what the ledger's state counts in)."""
        with self.lock:
            return self.state.truth()

    # ------------------------------------------------------------ persistence

    def save(self, path: Path | None = None) -> None:
        """Write the state and the authority's tokens to `path` (default: the state file)."""
        target = Path(path) if path else self.state_file
        if target is None:
            raise ValueError("no state file: pass a path or construct the sandbox with state_file=")
        with self.lock:  # QBO's dump shares its records: serialise them before anyone writes
            data = self.state.dump()
            data["authority"] = self.authority.to_dict()
            write_json_atomic(target, data)

    def load(self, path: Path) -> None:
        """Replace the ledger with a saved state file, and take over its tokens."""
        data = json.loads(Path(path).read_text(encoding="utf-8"), parse_float=Decimal)
        with self.lock:
            self.query.reset()
            self.state.restore(data)
            if data.get("authority"):
                self.authority.restore(data["authority"])
