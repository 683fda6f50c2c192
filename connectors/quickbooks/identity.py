"""Who QuickBooks Online is to relance: its ledger name, default API and OAuth roots, and the environment
variables that override them (imported by the plugin, the client and auth alike)."""

from __future__ import annotations

NAME = "quickbooks"
DISCOVERY_PRODUCTION = "https://developer.api.intuit.com/.well-known/openid_configuration"
DISCOVERY_SANDBOX = "https://developer.api.intuit.com/.well-known/openid_sandbox_configuration"
API_PRODUCTION = "https://quickbooks.api.intuit.com/v3"
ENV_DISCOVERY = "RELANCE_QUICKBOOKS_DISCOVERY_URL"
ENV_BASE_URL = "RELANCE_QUICKBOOKS_BASE_URL"
