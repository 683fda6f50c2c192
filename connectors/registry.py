"""Ledger plugins: every ledger registers through the entry point group `relance.connectors`, the
shipped QuickBooks and Xero included (see pyproject.toml). An entry point's name is the ledger's
name (the `ledger:` value in relance.yaml); its value is a LedgerPlugin object. A third party adds a
ledger with, in its own pyproject.toml:

    [project.entry-points."relance.connectors"]
    sage = "relance_sage.plugin:PLUGIN"        # PLUGIN = LedgerPlugin(name="sage", ...)

Entry points are read lazily: their names when relance.yaml is validated (no plugin module is
imported for that), one plugin when its ledger is used. A plugin module should stay light, as the
shipped ones do: its hooks import the ledger's SDK when called, never at registry load.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from types import MappingProxyType
from typing import TYPE_CHECKING, Protocol

from connectors.base import AccessTokens, Clock, ConnectionSetupError, Connector
from connectors.settings import ConnectionSettings

if TYPE_CHECKING:
    from connectors.tokens import Refresher, Tokens

ENTRY_POINT_GROUP = "relance.connectors"


class LedgerPluginError(ConnectionSetupError):
    """A ledger is not registered, or its plugin fails to load or is malformed (names the plugin)."""


# ---------------------------------------------------------------- the contract


@dataclass(frozen=True, slots=True)
class ApiLimits:
    """A ledger's published API limits, per tenant unless said otherwise (connectors.limits)."""

    per_minute: int
    concurrent: int
    per_day: int | None = None
    app_per_minute: int | None = None  # shared by every tenant of the app


@dataclass(frozen=True, slots=True)
class OAuthEndpoints:
    """Where to send the user and the token requests. QBO resolves authorize/token from the
    discovery document at use time (intuitlib); Xero has them directly."""

    ledger: str
    discovery_url: str | None = None  # quickbooks
    authorize_url: str | None = None  # xero
    token_url: str | None = None  # xero
    connections_url: str | None = None  # xero


class ConnectorFactory(Protocol):
    def __call__(
        self,
        settings: ConnectionSettings,
        *,
        account_id: str,
        tokens: AccessTokens,
        clock: Clock | None = None,
        retry_base_wait: float | None = None,
    ) -> Connector:
        """The connector of one connection (`retry_base_wait` None: the connector's default)."""
        ...


class EndpointResolver(Protocol):
    def __call__(
        self,
        *,
        discovery_url: str | None = None,
        identity_url: str | None = None,
        base_url: str | None = None,
    ) -> OAuthEndpoints:
        """Environment overrides (whole process) > the connection's values > the vendor's."""
        ...


class RefresherFactory(Protocol):
    def __call__(self, client_id: str, client_secret: str, endpoints: OAuthEndpoints) -> Refresher:
        """Turns stored tokens into fresh ones; raises RefreshRejected on invalid_grant."""
        ...


class AuthorizationSession(Protocol):
    """One authorization-code flow (connectors.oauth.run_authorization_flow drives it)."""

    def consent_url(self, state: str) -> str: ...

    def exchange(self, query: Mapping[str, str], *, echo: Callable[[str], None]) -> Tokens:
        """The redirect's query (code, state, ...) -> tokens carrying the account id."""
        ...


class Authorizer(Protocol):
    def __call__(
        self, client_id: str, client_secret: str, *, redirect_uri: str, endpoints: OAuthEndpoints
    ) -> AuthorizationSession: ...


@dataclass(frozen=True, slots=True)
class LedgerPlugin:
    name: str  # the relance.yaml `ledger:` value, equal to the entry point's name
    display_name: str  # in messages: "QuickBooks"
    account_id_field: str  # the relance.yaml key of the company id: "realm_id", "tenant_id"
    default_base_url: str  # the vendor's production API root
    base_url_env: str  # variable overriding the API root for the whole process
    limits: ApiLimits
    open: ConnectorFactory
    endpoints: EndpointResolver
    refresher: RefresherFactory
    authorize: Authorizer
    oauth_url_field: str | None = None  # the relance.yaml key overriding OAuth endpoints, if any

    def api_base_url(self, configured: str | None = None) -> str:
        """The API root: the environment override > `configured` > the vendor's production."""
        override = os.environ.get(self.base_url_env, "").strip()
        return (override or configured or self.default_base_url).rstrip("/")


# ---------------------------------------------------------------- loading

_lock = threading.RLock()
_found: dict[str, list[EntryPoint]] | None = None
_loaded: dict[str, LedgerPlugin] = {}


def _entry_points() -> dict[str, list[EntryPoint]]:
    global _found
    with _lock:
        if _found is None:
            found: dict[str, list[EntryPoint]] = {}
            for entry in entry_points(group=ENTRY_POINT_GROUP):
                found.setdefault(entry.name, []).append(entry)
            _found = found
        return _found


def _origin(entry: EntryPoint) -> str:
    dist = entry.dist.name if entry.dist is not None else None
    return f"{entry.value} from {dist}" if dist else entry.value


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _problem(plugin: LedgerPlugin) -> str | None:
    texts = ("name", "display_name", "account_id_field", "default_base_url", "base_url_env")
    empty = [
        name for name in texts if not isinstance(getattr(plugin, name), str) or not getattr(plugin, name)
    ]
    if empty:
        return f"{', '.join(empty)} must be non-empty text"
    if not isinstance(plugin.limits, ApiLimits):
        return "limits must be an ApiLimits"
    hooks = ("open", "endpoints", "refresher", "authorize")
    missing = [name for name in hooks if not callable(getattr(plugin, name))]
    if missing:
        return f"{', '.join(missing)} must be callable"
    return None


def _load(name: str, entry: EntryPoint) -> LedgerPlugin:
    where = f"ledger plugin {name!r} ({_origin(entry)})"
    hint = "fix or uninstall the package that provides it"
    try:
        plugin = entry.load()
    except Exception as error:
        raise LedgerPluginError(f"{where} failed to load: {_one_line(error)}", hint=hint) from None
    if not isinstance(plugin, LedgerPlugin):
        raise LedgerPluginError(
            f"{where} is malformed: expected a LedgerPlugin, got {type(plugin).__name__}", hint=hint
        )
    if plugin.name != name:
        raise LedgerPluginError(f"{where} is malformed: it declares the ledger {plugin.name!r}", hint=hint)
    problem = _problem(plugin)
    if problem:
        raise LedgerPluginError(f"{where} is malformed: {problem}", hint=hint)
    return plugin


def ledger_names() -> tuple[str, ...]:
    """The registered ledgers, sorted; imports no plugin module."""
    return tuple(sorted(_entry_points()))


def ledger_plugin(name: str) -> LedgerPlugin:
    """The plugin of one ledger, loaded on first use. Raises LedgerPluginError."""
    with _lock:
        plugin = _loaded.get(name)
        if plugin is not None:
            return plugin
        candidates = _entry_points().get(name) or []
        if not candidates:
            raise LedgerPluginError(
                f"unknown ledger {name!r} (known: {', '.join(ledger_names()) or 'none'})",
                hint=f"install the package that provides it (entry point group {ENTRY_POINT_GROUP})",
            )
        if len(candidates) > 1:
            origins = "; ".join(_origin(entry) for entry in candidates)
            raise LedgerPluginError(
                f"ledger {name!r} is registered more than once ({origins})",
                hint="uninstall all but one of these packages",
            )
        plugin = _load(name, candidates[0])
        _loaded[name] = plugin
        return plugin


def ledger_plugins() -> Mapping[str, LedgerPlugin]:
    """Every registered ledger's plugin, by name (entry points loaded once). Raises
    LedgerPluginError naming the first plugin that fails to load or is malformed."""
    return MappingProxyType({name: ledger_plugin(name) for name in ledger_names()})


def reset_registry() -> None:
    """Read the entry points again on next use (tests that install a plugin)."""
    global _found
    with _lock:
        _found = None
        _loaded.clear()
