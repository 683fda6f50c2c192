"""QuickBooks Online as a ledger plugin: the entry point `quickbooks` of `relance.connectors`.

Light on purpose: the registry imports this module when relance.yaml is validated. Its hooks import
python-quickbooks (the connector) and intuitlib (auth.py) when they are called.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from connectors.base import AccessTokens, Clock, Connector
from connectors.quickbooks.identity import (
    API_PRODUCTION,
    DISCOVERY_PRODUCTION,
    ENV_BASE_URL,
    ENV_DISCOVERY,
    NAME,
)
from connectors.registry import ApiLimits, AuthorizationSession, LedgerPlugin, OAuthEndpoints
from connectors.settings import ConnectionSettings

if TYPE_CHECKING:
    from connectors.tokens import Refresher, Tokens



def endpoints(
    *, discovery_url: str | None = None, identity_url: str | None = None, base_url: str | None = None
) -> OAuthEndpoints:
    """The discovery document: $RELANCE_QUICKBOOKS_DISCOVERY_URL > the connection's > Intuit's."""
    override = os.environ.get(ENV_DISCOVERY, "").strip()
    return OAuthEndpoints(NAME, discovery_url=override or discovery_url or DISCOVERY_PRODUCTION)


def open_connector(
    settings: ConnectionSettings,
    *,
    account_id: str,
    tokens: AccessTokens,
    clock: Clock | None = None,
    retry_base_wait: float | None = None,
) -> Connector:
    # Lazy: these modules import python-quickbooks, needed only once a connector is opened.
    from connectors.quickbooks.client import MINOR_VERSION, RETRY_BASE_WAIT
    from connectors.quickbooks.connector import QuickBooksConnector

    return QuickBooksConnector(
        name=settings.name,
        base_url=settings.base_url,
        realm_id=account_id,
        tokens=tokens,
        minor_version=MINOR_VERSION if settings.minor_version is None else settings.minor_version,
        history_months=settings.history_months,
        fee_mode=settings.fee_mode,
        fee_item_name=settings.fee_item_name,
        clock=clock,
        retry_base_wait=RETRY_BASE_WAIT if retry_base_wait is None else retry_base_wait,
    )


def refresher(client_id: str, client_secret: str, endpoints: OAuthEndpoints) -> Refresher:
    def refresh(tokens: Tokens) -> Tokens:
        # Lazy: auth.py imports intuitlib (and requests), needed only when tokens are actually refreshed
        # (a connector with valid tokens never loads it).
        from connectors.quickbooks import auth

        return auth.refresher(client_id, client_secret, endpoints)(tokens)

    return refresh


def authorize(
    client_id: str, client_secret: str, *, redirect_uri: str, endpoints: OAuthEndpoints
) -> AuthorizationSession:
    # Lazy: auth.py imports intuitlib (and requests), needed only for `relance connect`.
    from connectors.quickbooks import auth

    return auth.IntuitAuthorization(client_id, client_secret, redirect_uri=redirect_uri, endpoints=endpoints)


PLUGIN = LedgerPlugin(
    name=NAME,
    display_name="QuickBooks",
    account_id_field="realm_id",
    default_base_url=API_PRODUCTION,
    base_url_env=ENV_BASE_URL,
    limits=ApiLimits(per_minute=500, concurrent=10),
    open=open_connector,
    endpoints=endpoints,
    refresher=refresher,
    authorize=authorize,
    oauth_url_field="discovery_url",
)
