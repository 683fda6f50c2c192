"""Build a Connector from a connection's settings: tokens, refresher, limits, the ledger's plugin."""

from __future__ import annotations

import os
from pathlib import Path

from connectors.base import AuthError, Clock, ConnectionSetupError, Connector
from connectors.limits import limiter_for
from connectors.oauth import OAuthEndpoints, refresher_for, resolve_endpoints
from connectors.registry import ledger_plugin
from connectors.settings import ConnectionSettings
from connectors.tokens import Refresher, TokenProvider, Tokens, TokenStore

# First wait of the exponential backoff between retries (seconds); tests and impatient operators
# shorten it, the default suits the real APIs.
RETRY_BASE_WAIT_ENV = "RELANCE_RETRY_BASE_WAIT"


def client_secret_for(settings: ConnectionSettings, secrets: TokenStore) -> str | None:
    """client_secret_env (if set) else the encrypted store."""
    if settings.client_secret_env:
        value = os.environ.get(settings.client_secret_env, "").strip()
        if not value:
            raise ConnectionSetupError(
                f"[{settings.name}] client_secret_env names ${settings.client_secret_env}, which is not set",
                hint=f"export {settings.client_secret_env}=... before running relance",
            )
        return value
    return secrets.get_client_secret(settings.name)


def endpoints_for(settings: ConnectionSettings) -> OAuthEndpoints:
    return resolve_endpoints(
        settings.ledger,
        discovery_url=settings.discovery_url,
        identity_url=settings.identity_url,
        base_url=settings.base_url,
    )


def _lazy_refresher(settings: ConnectionSettings, secrets: TokenStore) -> Refresher:
    """Resolve client credentials only when a refresh is actually needed (imported, unexpired
    tokens contact no OAuth endpoint and need no client secret)."""

    def refresh(tokens: Tokens) -> Tokens:
        secret = client_secret_for(settings, secrets)
        if not settings.client_id or not secret:
            raise AuthError(
                f"[{settings.name}] the access token expired and no client id/secret is stored to refresh it",
                hint=f"run `relance connect {settings.ledger} --name {settings.name} "
                "--client-id ID --client-secret SECRET`",
            )
        return refresher_for(settings.ledger, settings.client_id, secret, endpoints_for(settings))(tokens)

    return refresh


def token_provider_for(
    settings: ConnectionSettings, *, config_dir: Path, secrets: TokenStore
) -> TokenProvider:
    return TokenProvider(
        settings.name,
        secrets,
        _lazy_refresher(settings, secrets),
        lock_dir=Path(config_dir),
        ledger=settings.ledger,
    )


def _retry_base_wait() -> float | None:
    value = os.environ.get(RETRY_BASE_WAIT_ENV)
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise ConnectionSetupError(f"${RETRY_BASE_WAIT_ENV}={value!r} is not a number of seconds") from None


def open_connector(
    settings: ConnectionSettings, *, config_dir: Path, secrets: TokenStore, clock: Clock | None = None
) -> Connector:
    """The Connector for one connection. Raises AuthError when it was never connected."""
    plugin = ledger_plugin(settings.ledger)
    stored = secrets.get(settings.name)
    if stored is None:
        raise AuthError(
            f"[{settings.name}] no tokens stored for this connection",
            hint=f"run `relance connect {settings.ledger} --name {settings.name}`",
        )
    account_id = settings.account_id or stored.account_id
    if not account_id:
        what = plugin.account_id_field
        raise ConnectionSetupError(
            f"[{settings.name}] no {what} for this connection",
            hint=f"add {what}: to the connection in relance.yaml, or run `relance connect` again",
        )
    if settings.rate_limit_per_minute:
        limiter_for(settings.ledger, account_id, per_minute=settings.rate_limit_per_minute)
    provider = token_provider_for(settings, config_dir=config_dir, secrets=secrets)
    return plugin.open(
        settings, account_id=account_id, tokens=provider, clock=clock, retry_base_wait=_retry_base_wait()
    )
