"""No token value ever appears in clear: not in any file under the config directory, not in any log.

A sync-like sequence against both sandboxes, with every logger at DEBUG into a file (relance's own,
urllib3, requests, the SDKs): `relance init`, `relance connect ... --access-token ... --refresh-token
...` (import mode), `relance sync` (full pull, plan, writes), direct writes of every request type
through both connectors, then expired access tokens force a refresh and a second sync runs. Every
access and refresh token the sandboxes' OAuthAuthority ever issued, and the client secrets, are
then searched for in every file under the config directory, in the log file and in the CLI output.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from connectors.base import (
    CreditNoteRequest,
    FeeInvoice,
    FeeLine,
    LedgerEmail,
    Note,
    WriteRequest,
    WriteStatus,
)
from connectors.limits import limiter_for, reset_limiters
from connectors.sandbox.generator import generate_company
from sync.cli import cli
from sync.workspace import Workspace
from tests.support.sandboxes import make_sandbox

TODAY = date(2026, 3, 2)
LEDGERS = ("quickbooks", "xero")
DEBUG_LOGGERS = (
    "relance",
    "urllib3",
    "requests",
    "xero_python",
    "quickbooks",
    "intuitlib",
    "sync",
    "connectors",
)


@pytest.fixture()
def debug_log(tmp_path: Path) -> Iterator[Path]:
    """Root logging at DEBUG into a file (basicConfig), restored afterwards."""
    path = tmp_path / "debug.log"
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    saved_levels = {name: logging.getLogger(name).level for name in DEBUG_LOGGERS}
    logging.basicConfig(
        filename=path,
        level=logging.DEBUG,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        force=True,
    )
    for name in DEBUG_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield path
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
            handler.close()
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)
        for name, level in saved_levels.items():
            logging.getLogger(name).setLevel(level)


@pytest.fixture()
def sandboxes() -> Iterator[dict[str, Any]]:
    reset_limiters()
    started: dict[str, Any] = {}
    issued: list[str] = []
    try:
        for ledger in LEDGERS:
            box = make_sandbox(ledger, TODAY)
            box.seed(
                generate_company(
                    seed=5, customers=8, invoices=40, today=TODAY, country="FR", currency="EUR", language="fr"
                )
            )
            authority = box.authority
            original = authority._issue_tokens

            def recording(scope: str, original: Any = original) -> dict[str, Any]:
                body: dict[str, Any] = original(scope)
                issued.extend((body["access_token"], body["refresh_token"]))
                return body

            authority._issue_tokens = recording  # every token ever issued, even after expiry
            box.start()
            started[ledger] = box
        yield {"boxes": started, "issued": issued}
    finally:
        for box in started.values():
            box.stop()
        reset_limiters()


def invoke(runner: CliRunner, args: list[str], outputs: list[str]) -> Any:
    result = runner.invoke(cli, args, catch_exceptions=False)
    outputs.append(result.output)
    assert result.exit_code == 0, result.output
    return result


def write_every_request_type(workspace: Workspace, ledger: str, box: Any) -> None:
    connector = workspace.open_connector(workspace.connection(f"books-{ledger}"))
    try:
        truth = box.truth()
        targets = sorted(
            (i for i in truth.invoices.values() if i.is_open and truth.customers[i.customer_id].emails),
            key=lambda i: i.number,
        )
        first, second = targets[0], targets[1]
        requests: list[WriteRequest] = [
            Note(f"leak-note-{ledger}", first.id, "relance: checking secrets stay secret"),
            CreditNoteRequest(
                f"leak-credit-{ledger}",
                second.customer_id,
                second.id,
                second.currency,
                Decimal("1.00"),
                "Early-payment discount",
                TODAY,
            ),
            FeeInvoice(
                f"leak-fee-invoice-{ledger}",
                first.customer_id,
                first.currency,
                (("Late payment fee", Decimal("40.00")),),
                first.number,
                TODAY + timedelta(days=15),
                TODAY,
            ),
            LedgerEmail(f"leak-email-{ledger}", first.id),
        ]
        if connector.capabilities.fee_line_on_invoice:
            requests.append(FeeLine(f"leak-fee-line-{ledger}", second.id, "Late fee", Decimal("5"), "EUR"))
        results = connector.write(requests)
        assert [r.status for r in results] == [WriteStatus.DONE] * len(requests), results
    finally:
        connector.close()


def test_no_token_in_clear_in_config_files_or_logs(
    tmp_path: Path, debug_log: Path, sandboxes: dict[str, Any]
) -> None:
    boxes: dict[str, Any] = sandboxes["boxes"]
    config_dir = tmp_path / "config"
    config = config_dir / "relance.yaml"
    runner = CliRunner()
    outputs: list[str] = []
    invoke(runner, ["init", "--dir", str(config_dir), "--example", "fr-b2b"], outputs)
    for ledger, box in boxes.items():
        granted = box.grant()
        account = ["--realm-id", box.realm_id] if ledger == "quickbooks" else ["--tenant-id", box.tenant_id]
        oauth = (
            ["--discovery-url", box.discovery_url]
            if ledger == "quickbooks"
            else ["--identity-url", box.identity_url]
        )
        invoke(
            runner,
            [
                "connect",
                ledger,
                "--name",
                f"books-{ledger}",
                "--config",
                str(config),
                "--access-token",
                granted["access_token"],
                "--refresh-token",
                granted["refresh_token"],
                "--client-id",
                box.client_id,
                "--client-secret",
                box.client_secret,
                "--base-url",
                box.base_url,
                *account,
                *oauth,
            ],
            outputs,
        )
        limiter_for(ledger, account[1], per_minute=10**6)  # count calls, never sleep on pacing

    invoke(runner, ["sync", "--config", str(config), "--today", TODAY.isoformat(), "--json"], outputs)
    workspace = Workspace.open(config)
    for ledger, box in boxes.items():
        write_every_request_type(workspace, ledger, box)
        box.faults.expire_tokens = True  # the next API call gets a 401: a forced refresh follows
    invoke(runner, ["sync", "--config", str(config), "--today", TODAY.isoformat(), "--full"], outputs)

    for ledger, box in boxes.items():
        assert box.authority.refresh_count == 1, ledger  # the refresh really happened
        kinds = {e.kind for e in box.effects()}
        assert {"note", "credit_note", "fee_invoice", "email"} <= kinds, (ledger, kinds)
    issued: list[str] = sandboxes["issued"]
    secrets = [*issued, *(box.client_secret for box in boxes.values())]
    assert len(issued) == 4 * len(boxes)  # per ledger: the imported pair and the refreshed pair

    log_text = debug_log.read_text(encoding="utf-8")
    assert "relance.connectors" in log_text and "urllib3" in log_text  # DEBUG logs were captured
    files = [path for path in config_dir.rglob("*") if path.is_file()]
    assert {"tokens.enc.json", "relance.yaml", "relance.sqlite"} <= {path.name for path in files}
    leaks = [
        f"{where}: secret #{number}"
        for where, content in [
            *((str(path.relative_to(tmp_path)), path.read_bytes()) for path in files),
            (debug_log.name, debug_log.read_bytes()),
            ("CLI output", "\n".join(outputs).encode()),
        ]
        for number, secret in enumerate(secrets)
        if secret.encode() in content
    ]
    assert leaks == []
    # the store really holds the rotated tokens (encrypted): the live ones, not the imported ones
    workspace = Workspace.open(config)
    for ledger, box in boxes.items():
        stored = workspace.token_store.get(f"books-{ledger}")
        assert stored is not None and box.authority.check_bearer(f"Bearer {stored.access_token}")
