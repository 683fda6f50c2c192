"""Xero as a ledger plugin: the entry point `xero` of `relance.connectors`.

Light on purpose: the registry imports this module when relance.yaml is validated. Its hooks import
the connector (xero-python) and auth.py (requests) when they are called.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from connectors.base import AccessTokens, Clock, Connector
from connectors.registry import ApiLimits, AuthorizationSession, LedgerPlugin, OAuthEndpoints
from connectors.settings import ConnectionSettings
from connectors.xero.identity import (
    API_DEFAULT,
    AUTHORIZE_DEFAULT,
    ENV_BASE_URL,
    ENV_IDENTITY,
    IDENTITY_DEFAULT,
    NAME,
)

if TYPE_CHECKING:
    from connectors.tokens import Refresher, Tokens



def endpoints(
    *, discovery_url: str | None = None, identity_url: str | None = None, base_url: str | None = None
) -> OAuthEndpoints:
    """$RELANCE_XERO_IDENTITY_URL > the connection's identity root > Xero's; when the root is
    overridden, authorize = <root>/connect/authorize and token = <root>/connect/token. The
    tenants are listed at <api host>/connections."""
    identity = os.environ.get(ENV_IDENTITY, "").strip() or identity_url
    split = urlsplit(PLUGIN.api_base_url(base_url))
    connections = f"{split.scheme}://{split.netloc}/connections"
    if identity:
        identity = identity.rstrip("/")
        return OAuthEndpoints(
            NAME,
            authorize_url=f"{identity}/connect/authorize",
            token_url=f"{identity}/connect/token",
            connections_url=connections,
        )
    return OAuthEndpoints(
        NAME,
        authorize_url=AUTHORIZE_DEFAULT,
        token_url=f"{IDENTITY_DEFAULT}/connect/token",
        connections_url=connections,
    )


def open_connector(
    settings: ConnectionSettings,
    *,
    account_id: str,
    tokens: AccessTokens,
    clock: Clock | None = None,
    retry_base_wait: float | None = None,
) -> Connector:
    # Lazy: the connector brings xero-python and the HTTP stack, needed only once one is opened.
    from connectors.xero.client import RETRY_BASE_WAIT
    from connectors.xero.connector import XeroConnector

    return XeroConnector(
        name=settings.name,
        base_url=settings.base_url,
        tenant_id=account_id,
        tokens=tokens,
        history_months=settings.history_months,
        clock=clock,
        retry_base_wait=RETRY_BASE_WAIT if retry_base_wait is None else retry_base_wait,
    )


def refresher(client_id: str, client_secret: str, endpoints: OAuthEndpoints) -> Refresher:
    def refresh(tokens: Tokens) -> Tokens:
        # Lazy: auth.py imports requests, needed only when tokens are actually refreshed
        # (a connector with valid tokens never loads it).
        from connectors.xero import auth

        return auth.refresher(client_id, client_secret, endpoints)(tokens)

    return refresh


def authorize(
    client_id: str, client_secret: str, *, redirect_uri: str, endpoints: OAuthEndpoints
) -> AuthorizationSession:
    # Lazy: auth.py imports requests, needed only for `relance connect`.
    from connectors.xero import auth

    return auth.XeroAuthorization(client_id, client_secret, redirect_uri=redirect_uri, endpoints=endpoints)


PLUGIN = LedgerPlugin(
    name=NAME,
    display_name="Xero",
    account_id_field="tenant_id",
    default_base_url=API_DEFAULT,
    base_url_env=ENV_BASE_URL,
    limits=ApiLimits(per_minute=60, concurrent=5, per_day=5000, app_per_minute=10000),
    open=open_connector,
    endpoints=endpoints,
    refresher=refresher,
    authorize=authorize,
    oauth_url_field="identity_url",
)
