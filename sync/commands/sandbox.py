"""`relance sandbox serve quickbooks|xero`: run a local, stateful copy of a ledger API."""

from __future__ import annotations

import contextlib
import signal
import threading
from pathlib import Path
from typing import Any

import click

from connectors.sandbox.quickbooks import QuickBooksSandbox
from connectors.sandbox.xero import XeroSandbox
from sync.errors import ConfigError


def open_sandbox(
    ledger: str,
    *,
    seed: int | None,
    customers: int,
    invoices: int,
    state_file: Path | None,
) -> QuickBooksSandbox | XeroSandbox:
    """Construct (not start) the ledger's sandbox."""
    if ledger == "quickbooks":
        return QuickBooksSandbox(
            seed=seed, customers=customers, invoices=invoices, today=None, state_file=state_file
        )
    return XeroSandbox(seed=seed, customers=customers, invoices=invoices, today=None, state_file=state_file)


def describe_sandbox(ledger: str, sandbox: QuickBooksSandbox | XeroSandbox) -> list[str]:
    """What a user needs to point relance at the sandbox (sandbox credentials are not secrets)."""
    prefix = "RELANCE_QUICKBOOKS" if ledger == "quickbooks" else "RELANCE_XERO"
    lines = [
        f"{'QuickBooks Online' if ledger == 'quickbooks' else 'Xero'} sandbox at {sandbox.base_url}",
        f"  client id:     {sandbox.client_id}",
        f"  client secret: {sandbox.client_secret}   (sandbox only)",
    ]
    exports = [f"export {prefix}_BASE_URL={sandbox.base_url}"]
    if isinstance(sandbox, QuickBooksSandbox):
        lines.append(f"  realm id:      {sandbox.realm_id}")
        discovery = getattr(sandbox, "discovery_url", None)
        if discovery:
            exports.append(f"export {prefix}_DISCOVERY_URL={discovery}")
    else:
        lines.append(f"  tenant id:     {sandbox.tenant_id}")
        identity = getattr(sandbox, "identity_url", None)
        if identity:
            exports.append(f"export {prefix}_IDENTITY_URL={identity}")
    lines += ["", "Point relance at it:", *(f"  {line}" for line in exports)]
    lines.append(
        f"  relance connect {ledger} --name sandbox-{ledger} --client-id {sandbox.client_id} "
        f"--client-secret {sandbox.client_secret} --no-browser"
    )
    lines.append("Serving; Ctrl-C to stop.")
    return lines


@click.group("sandbox")
def sandbox_group() -> None:
    """Local, stateful sandboxes of the QuickBooks Online and Xero APIs."""

@sandbox_group.command("serve")
@click.argument("ledger", type=click.Choice(["quickbooks", "xero"]))
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port on 127.0.0.1 (0: any free port).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the generated company.")
@click.option("--customers", type=click.IntRange(1), default=50, show_default=True)
@click.option("--invoices", type=click.IntRange(0), default=500, show_default=True)
@click.option(
    "--state",
    "state_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Load the sandbox from FILE if it exists; save it there on exit.",
)
def serve(
    ledger: str,
    port: int,
    host: str,
    seed: int,
    customers: int,
    invoices: int,
    state_file: Path | None,
) -> None:
    """Serve a sandbox ledger until Ctrl-C / SIGTERM (state saved on exit with --state)."""
    sandbox = open_sandbox(
        ledger, seed=seed, customers=customers, invoices=invoices, state_file=state_file
    )
    try:
        sandbox.start(host, port)
    except OSError as error:
        raise ConfigError(
            f"cannot listen on {host}:{port} ({error.strerror})", hint="choose another --port"
        ) from None
    stop = threading.Event()
    previous: dict[int, Any] = {}

    def request_stop(signum: int, frame: Any) -> None:
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        # not possible outside the main thread (embedded use): rely on KeyboardInterrupt there
        with contextlib.suppress(ValueError):
            previous[signum] = signal.signal(signum, request_stop)
    try:
        for line in describe_sandbox(ledger, sandbox):
            click.echo(line)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        try:
            if state_file is not None:
                sandbox.save()
                click.echo(f"State saved to {state_file}.", err=True)
        finally:
            sandbox.stop()


COMMANDS = (sandbox_group,)
