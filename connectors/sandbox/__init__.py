"""Local, stateful sandboxes of the QuickBooks Online and Xero APIs (real HTTP servers).

`server` is the shared framework (server, routing, request log; it re-exports `clock`, `faults`,
`messages`, `oauth`, `effects` and `paging`); `generator` builds seeded companies in the neutral
model; `quickbooks` and `xero` are the ledgers, each a package split into state, query, routes
and writes.
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
