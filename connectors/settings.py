"""What a connector needs to know about one connection, defined here so that connectors never read
sync's configuration (sync.config.ConnectionConfig.to_settings() produces it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    name: str  # the connection name from relance.yaml
    ledger: str  # a registered ledger (connectors.registry)
    base_url: str  # the API root in use: env override > the connection's base_url > the vendor's
    account_id: str | None = None  # company id from relance.yaml (realm_id, tenant_id), else the tokens'
    client_id: str | None = None
    client_secret_env: str | None = None  # NAME of the variable holding the client secret
    discovery_url: str | None = None  # QuickBooks: OpenID discovery document override
    identity_url: str | None = None  # Xero: identity root override
    history_months: int = 24
    fee_mode: str = "line"  # QuickBooks: "line" or "invoice"
    fee_item_name: str = "Late fee"  # QuickBooks: the service Item fee lines use
    minor_version: int | None = None  # QuickBooks: API minorversion (None: the connector's default)
    rate_limit_per_minute: int | None = None  # limiter override (local sandboxes only)
