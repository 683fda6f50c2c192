"""A real relance workspace wired to running ledger sandboxes, for end-to-end style tests.

Real pieces only: both sandboxes are HTTP servers on 127.0.0.1, the connectors go through the
official SDKs, tokens are encrypted in the workspace's token store, state is SQLite or PostgreSQL.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from connectors.sandbox.generator import GeneratedCompany, generate_company
from connectors.sandbox.quickbooks import QuickBooksSandbox
from connectors.sandbox.xero import XeroSandbox
from connectors.tokens import Tokens
from sync.setup import example_policy_text
from sync.workspace import Workspace

COMPANIES = {
    "quickbooks": {"country": "FR", "currency": "EUR", "language": "fr", "policy": "fr-b2b"},
    "xero": {"country": "GB", "currency": "GBP", "language": "en", "policy": "uk-b2b"},
}


def make_sandbox(ledger: str, today: date, **kwargs: Any) -> Any:
    """An unstarted sandbox with limits opened up (tests count calls; pacing would only sleep)."""
    # A fresh organisation id per sandbox: client-side limiters are per tenant and per process,
    # so tests sharing an id would share (and exhaust) one budget.
    if ledger == "quickbooks":
        kwargs.setdefault("realm_id", str(uuid.uuid4().int)[:16])
        return QuickBooksSandbox(today=today, **kwargs)
    kwargs.setdefault("tenant_id", str(uuid.uuid4()))
    return XeroSandbox(
        today=today, minute_limit=1_000_000, app_minute_limit=1_000_000, day_limit=10**8, **kwargs
    )


def company(
    ledger: str, *, seed: int, customers: int, invoices: int, today: date, history_days: int = 540
) -> GeneratedCompany:
    spec = COMPANIES[ledger]
    return generate_company(
        seed=seed,
        customers=customers,
        invoices=invoices,
        today=today,
        country=spec["country"],
        currency=spec["currency"],
        language=spec["language"],
        history_days=history_days,
    )


@dataclass
class SandboxWorkspace:
    root: Path
    config_path: Path
    sandboxes: dict[str, Any]  # connection name -> sandbox
    ledgers: dict[str, str]  # connection name -> ledger
    extra: dict[str, Any] = field(default_factory=dict)

    def open(self) -> Workspace:
        return Workspace.open(self.config_path)

    def set_today(self, day: date) -> None:
        for sandbox in self.sandboxes.values():
            sandbox.clock.set_today(day)

    def stop(self) -> None:
        for sandbox in self.sandboxes.values():
            with contextlib.suppress(Exception):
                sandbox.stop()


def connection_yaml(name: str, ledger: str, sandbox: Any, policy: str) -> str:
    if ledger == "quickbooks":
        ids = f'    discovery_url: {sandbox.discovery_url}\n    realm_id: "{sandbox.realm_id}"\n'
    else:
        ids = f'    identity_url: {sandbox.identity_url}\n    tenant_id: "{sandbox.tenant_id}"\n'
    return (
        f"  - name: {name}\n    ledger: {ledger}\n    policy: {policy}\n    base_url: {sandbox.base_url}\n"
        f"    client_id: {sandbox.client_id}\n{ids}    rate_limit_per_minute: 1000000\n"
    )


def build_workspace(
    root: Path,
    *,
    today: date,
    ledgers: Sequence[str] = ("quickbooks", "xero"),
    customers: int = 12,
    invoices: int = 80,
    seed: int = 7,
    state_url: str | None = None,
    email: str | None = None,
    companies: dict[str, GeneratedCompany] | None = None,
    start: bool = True,
    history_days: int = 540,
    account_ids: dict[str, str] | None = None,
) -> SandboxWorkspace:
    """Seed, start and connect sandboxes; write relance.yaml + policies; import tokens."""
    root.mkdir(parents=True, exist_ok=True)
    sandboxes: dict[str, Any] = {}
    ledger_of: dict[str, str] = {}
    blocks = []
    for index, ledger in enumerate(ledgers):
        name = f"test-{ledger}"
        fixed = (account_ids or {}).get(ledger)
        sandbox = make_sandbox(
            ledger, today, **({"realm_id" if ledger == "quickbooks" else "tenant_id": fixed} if fixed else {})
        )
        seeded = (companies or {}).get(ledger) or company(
            ledger,
            seed=seed + index,
            customers=customers,
            invoices=invoices,
            today=today,
            history_days=history_days,
        )
        sandbox.seed(seeded)
        sandbox.authority.access_ttl = 10**8  # time travel would expire them every simulated day
        if start:
            sandbox.start()
        sandboxes[name] = sandbox
        ledger_of[name] = ledger
        policy_name = COMPANIES[ledger]["policy"]
        (root / f"{policy_name}.yaml").write_text(example_policy_text(policy_name))
        blocks.append(connection_yaml(name, ledger, sandbox, f"{policy_name}.yaml"))
    email_block = email or "email:\n  transport: file\n  from: credit@example.com\n"
    state = state_url or f"sqlite:///{root / 'state.sqlite'}"
    config = root / "relance.yaml"
    config.write_text(
        f"state: {state}\npolicy: fr-b2b.yaml\noutbox_dir: outbox\n{email_block}connections:\n"
        + "".join(blocks)
    )
    result = SandboxWorkspace(root, config, sandboxes, ledger_of)
    ws = result.open()
    for name, sandbox in sandboxes.items():
        granted = sandbox.grant()
        ws.token_store.save(
            name,
            Tokens(
                granted["access_token"],
                granted["refresh_token"],
                datetime.now(UTC) + timedelta(seconds=int(granted["expires_in"])),
                account_id=getattr(sandbox, "realm_id", None) or getattr(sandbox, "tenant_id", None),
            ),
        )
        ws.token_store.save_client_secret(name, sandbox.client_secret)
    return result


@contextlib.contextmanager
def sandbox_workspace(root: Path, **kwargs: Any) -> Iterator[SandboxWorkspace]:
    built = build_workspace(root, **kwargs)
    try:
        yield built
    finally:
        built.stop()
