"""Who Xero is to relance: its ledger name, default API and OAuth roots, and the environment
variables that override them (imported by the plugin, the client and auth alike)."""

from __future__ import annotations

NAME = "xero"
AUTHORIZE_DEFAULT = "https://login.xero.com/identity/connect/authorize"
IDENTITY_DEFAULT = "https://identity.xero.com"
API_DEFAULT = "https://api.xero.com/api.xro/2.0"
ENV_IDENTITY = "RELANCE_XERO_IDENTITY_URL"
ENV_BASE_URL = "RELANCE_XERO_BASE_URL"
