"""Local, stateful sandboxes of the QuickBooks Online and Xero APIs (real HTTP servers).

`server` is the shared framework (clock, faults, OAuth authority, request log, routing);
`generator` builds seeded companies in the neutral model; `quickbooks` and `xero` are the ledgers.
"""

from connectors.sandbox.server import (
    Effect,
    Faults,
    LoggedRequest,
    OAuthAuthority,
    OAuthError,
    RequestLog,
    Route,
    SandboxClock,
    SandboxControl,
    SandboxRequest,
    SandboxResponse,
    SandboxServer,
    json_response,
    oauth_routes,
    openid_discovery_route,
    text_response,
)

__all__ = [
    "Effect",
    "Faults",
    "LoggedRequest",
    "OAuthAuthority",
    "OAuthError",
    "RequestLog",
    "Route",
    "SandboxClock",
    "SandboxControl",
    "SandboxRequest",
    "SandboxResponse",
    "SandboxServer",
    "json_response",
    "oauth_routes",
    "openid_discovery_route",
    "text_response",
]
