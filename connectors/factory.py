"""Build a Connector from a relance.yaml connection: tokens, refresher, limits, base URL."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connectors.base import AuthError, ConnectionSetupError, Connector
from connectors.limits import limiter_for
from connectors.oauth import OAuthEndpoints, refresher_for, resolve_endpoints
from connectors.tokens import TokenProvider, Tokens, TokenStore

if TYPE_CHECKING:
    from sync.config import ConnectionConfig


def client_secret_for(conn: ConnectionConfig, secrets: TokenStore) -> str | None:
    """client_secret_env (if set) else the encrypted store."""
    if conn.client_secret_env:
        value = os.environ.get(conn.client_secret_env, "").strip()
        if not value:
            raise ConnectionSetupError(
                f"[{conn.name}] client_secret_env names ${conn.client_secret_env}, which is not set",
                hint=f"export {conn.client_secret_env}=... before running relance",
            )
        return value
    return secrets.get_client_secret(conn.name)


def endpoints_for(conn: ConnectionConfig) -> OAuthEndpoints:
    return resolve_endpoints(
        conn.ledger,
        discovery_url=conn.discovery_url,
        identity_url=conn.identity_url,
        base_url=conn.api_base_url,
    )


def _lazy_refresher(conn: ConnectionConfig, secrets: TokenStore) -> Callable[[Tokens], Tokens]:
    """Resolve client credentials only when a refresh is actually needed (imported, unexpired
    tokens contact no OAuth endpoint and need no client secret)."""

    def refresh(tokens: Tokens) -> Tokens:
        secret = client_secret_for(conn, secrets)
        if not conn.client_id or not secret:
            raise AuthError(
                f"[{conn.name}] the access token expired and no client id/secret is stored to refresh it",
                hint=f"run `relance connect {conn.ledger} --name {conn.name} "
                "--client-id ID --client-secret SECRET`",
            )
        return refresher_for(conn.ledger, conn.client_id, secret, endpoints_for(conn))(tokens)

    return refresh


def token_provider_for(conn: ConnectionConfig, *, config_dir: Path, secrets: TokenStore) -> TokenProvider:
    return TokenProvider(
        conn.name, secrets, _lazy_refresher(conn, secrets), lock_dir=Path(config_dir), ledger=conn.ledger
    )


def _accepts(factory: Any, name: str) -> bool:
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    return name in parameters or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())


# First wait of the exponential backoff between retries (seconds); tests and impatient operators
# shorten it, the default suits the real APIs.
RETRY_BASE_WAIT_ENV = "RELANCE_RETRY_BASE_WAIT"


def open_connector(
    conn: ConnectionConfig, *, config_dir: Path, secrets: TokenStore, clock: Any = None
) -> Connector:
    """The Connector for one connection. Raises AuthError when it was never connected."""
    stored = secrets.get(conn.name)
    if stored is None:
        raise AuthError(
            f"[{conn.name}] no tokens stored for this connection",
            hint=f"run `relance connect {conn.ledger} --name {conn.name}`",
        )
    account_id = conn.account_id or stored.account_id
    if not account_id:
        what = "realm_id" if conn.ledger == "quickbooks" else "tenant_id"
        raise ConnectionSetupError(
            f"[{conn.name}] no {what} for this connection",
            hint=f"add {what}: to the connection in relance.yaml, or run `relance connect` again",
        )
    if conn.rate_limit_per_minute:
        limiter_for(conn.ledger, account_id, per_minute=conn.rate_limit_per_minute)
    provider = token_provider_for(conn, config_dir=config_dir, secrets=secrets)
    kwargs: dict[str, Any] = {
        "name": conn.name,
        "base_url": conn.api_base_url,
        "tokens": provider,
        "history_months": conn.history_months,
    }
    if conn.ledger == "quickbooks":
        from connectors.quickbooks.connector import QuickBooksConnector

        factory: Any = QuickBooksConnector
        kwargs.update(realm_id=account_id, fee_mode=conn.fee_mode, fee_item_name=conn.fee_item_name)
        if conn.minor_version is not None:
            kwargs["minor_version"] = conn.minor_version
    elif conn.ledger == "xero":
        from connectors.xero.connector import XeroConnector

        factory = XeroConnector
        kwargs.update(tenant_id=account_id)
    else:  # pragma: no cover - the config model only allows the two ledgers
        raise ConnectionSetupError(f"[{conn.name}] unknown ledger {conn.ledger!r}")
    if clock is not None and _accepts(factory, "clock"):
        kwargs["clock"] = clock
    base_wait = os.environ.get(RETRY_BASE_WAIT_ENV)
    if base_wait:
        try:
            kwargs["retry_base_wait"] = float(base_wait)
        except ValueError:
            raise ConnectionSetupError(
                f"${RETRY_BASE_WAIT_ENV}={base_wait!r} is not a number of seconds"
            ) from None
    connector: Connector = factory(**kwargs)
    return connector
