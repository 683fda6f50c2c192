"""Ledgers are plugins: the shipped ones and a third party's register through the entry point group
`relance.connectors`; a broken plugin is named in a one-line error; loading the registry imports no
ledger SDK, and `import sync.cli` reads no entry point."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from connectors.factory import open_connector
from connectors.limits import limiter_for, reset_limiters
from connectors.oauth import refresher_for, resolve_endpoints
from connectors.registry import (
    LedgerPlugin,
    LedgerPluginError,
    ledger_names,
    ledger_plugin,
    ledger_plugins,
    reset_registry,
)
from connectors.secrets import SecretBox
from connectors.tokens import Tokens, TokenStore
from sync.config import parse_config
from sync.errors import ConfigError

ACME_PLUGIN = """
from connectors.base import Capabilities
from connectors.registry import ApiLimits, LedgerPlugin, OAuthEndpoints


class AcmeConnector:
    ledger = "acme"
    capabilities = Capabilities(
        fee_line_on_invoice=False,
        fee_invoice=True,
        ledger_email=False,
        ledger_email_idempotent=True,
        notes=True,
        credit_notes=False,
        write_batch_size=10,
    )

    def __init__(self, settings, account_id, tokens, clock, retry_base_wait):
        self.name = settings.name
        self.settings = settings
        self.account_id = account_id
        self.tokens = tokens
        self.clock = clock
        self.retry_base_wait = retry_base_wait

    def pull(self, cursor, *, history_from):
        return iter(())

    def write(self, requests):
        return []

    def verify(self, request, *, since):
        raise NotImplementedError

    def close(self):
        pass


def open_connector(settings, *, account_id, tokens, clock=None, retry_base_wait=None):
    return AcmeConnector(settings, account_id, tokens, clock, retry_base_wait)


def endpoints(*, discovery_url=None, identity_url=None, base_url=None):
    return OAuthEndpoints("acme", token_url=(base_url or "https://api.acme.test") + "/token")


def refresher(client_id, client_secret, endpoints):
    def refresh(tokens):
        return tokens

    refresh.acme = (client_id, endpoints.token_url)
    return refresh


def authorize(client_id, client_secret, *, redirect_uri, endpoints):
    raise NotImplementedError


PLUGIN = LedgerPlugin(
    name="acme",
    display_name="Acme Books",
    account_id_field="tenant_id",
    default_base_url="https://api.acme.test/v1",
    base_url_env="RELANCE_ACME_BASE_URL",
    limits=ApiLimits(per_minute=120, concurrent=3, per_day=1000),
    open=open_connector,
    endpoints=endpoints,
    refresher=refresher,
    authorize=authorize,
)
NOT_A_PLUGIN = {"name": "acme"}
"""


def install_distribution(
    root: Path, name: str, entry_points: dict[str, str], modules: dict[str, str]
) -> None:
    """A minimal installed distribution (dist-info + modules) in `root`, as pip would leave it."""
    info = root / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = "".join(f"{ledger} = {target}\n" for ledger, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[relance.connectors]\n{lines}")
    for module, source in modules.items():
        (root / f"{module}.py").write_text(textwrap.dedent(source))


@pytest.fixture()
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on sys.path for third-party distributions; the registry reads it afresh."""
    root = tmp_path / "site-packages"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    reset_registry()
    reset_limiters()
    yield root
    for module in [m for m in sys.modules if m.startswith("relance_acme")]:
        del sys.modules[module]
    reset_registry()
    reset_limiters()


def test_shipped_ledgers_are_entry_points() -> None:
    plugins = ledger_plugins()
    assert {"quickbooks", "xero"} <= set(ledger_names())
    quickbooks, xero = plugins["quickbooks"], plugins["xero"]
    assert (quickbooks.display_name, quickbooks.account_id_field) == ("QuickBooks", "realm_id")
    assert (xero.display_name, xero.account_id_field) == ("Xero", "tenant_id")
    assert ledger_plugin("xero") is xero  # loaded once


def test_loading_the_registry_imports_no_ledger_sdk_and_the_cli_reads_no_entry_point() -> None:
    code = (
        "import sys\n"
        "import sync.cli\n"
        "assert 'connectors.registry' not in sys.modules, 'import sync.cli loaded the registry'\n"
        "from connectors.registry import ledger_plugins\n"
        "ledger_plugins()\n"
        "sdks = ('quickbooks', 'xero_python', 'requests')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in sdks))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_third_party_ledger_is_found_configured_and_opened(site: Path, tmp_path: Path) -> None:
    install_distribution(site, "relance_acme", {"acme": "relance_acme:PLUGIN"}, {"relance_acme": ACME_PLUGIN})
    assert ledger_names() == ("acme", "quickbooks", "xero")
    plugin = ledger_plugin("acme")
    assert isinstance(plugin, LedgerPlugin) and plugin is sys.modules["relance_acme"].PLUGIN

    # relance.yaml accepts the ledger, with the ledger-specific key checks of the shipped ones
    config = parse_config("connections:\n  - name: books\n    ledger: acme\n    tenant_id: t-1\n")
    [connection] = config.connections
    assert connection.account_id == "t-1"
    assert connection.api_base_url == "https://api.acme.test/v1"
    with pytest.raises(ConfigError) as caught:
        parse_config("connections:\n  - name: books\n    ledger: acme\n    realm_id: 9\n")
    assert "realm_id is for quickbooks connections; Acme Books uses tenant_id" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        parse_config("connections:\n  - name: a\n    ledger: sage\n")
    assert "expected one of: acme, quickbooks, xero, got 'sage'" in str(caught.value)

    # the OAuth hooks and the limiter go through the plugin
    endpoints = resolve_endpoints("acme", base_url="https://sandbox.acme.test")
    assert endpoints.token_url == "https://sandbox.acme.test/token"
    refresh = refresher_for("acme", "client-1", "secret-1", endpoints)
    assert refresh.acme == ("client-1", "https://sandbox.acme.test/token")  # type: ignore[attr-defined]
    limiter = limiter_for("acme", "t-1")
    assert (limiter.per_minute, limiter.concurrent, limiter.per_day) == (120, 3, 1000)

    # and the factory opens its connector
    store = TokenStore(tmp_path / "tokens.enc.json", SecretBox(Fernet.generate_key()))
    store.save("books", Tokens("access", "refresh", datetime.now(UTC) + timedelta(hours=1), account_id="t-1"))
    connector = open_connector(connection.to_settings(), config_dir=tmp_path, secrets=store)
    assert type(connector).__name__ == "AcmeConnector"
    assert connector.name == "books" and connector.account_id == "t-1"  # type: ignore[attr-defined]
    assert connector.tokens.access_token() == "access"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("target", "modules", "problem"),
    [
        ("relance_acme_missing:PLUGIN", {}, "failed to load: ModuleNotFoundError"),
        ("relance_acme:NOT_A_PLUGIN", {"relance_acme": ACME_PLUGIN}, "is malformed: expected a LedgerPlugin"),
        ("relance_acme:PLUGIN", {"relance_acme": ACME_PLUGIN}, "is malformed: it declares the ledger 'acme'"),
    ],
)
def test_a_broken_plugin_is_named_in_one_line(
    site: Path, target: str, modules: dict[str, str], problem: str
) -> None:
    install_distribution(site, "relance_broken", {"broken": target}, modules)
    assert "broken" in ledger_names()  # names are read without importing anything
    with pytest.raises(LedgerPluginError) as caught:
        ledger_plugin("broken")
    message = str(caught.value)
    assert message.startswith(f"ledger plugin 'broken' ({target} from relance_broken) ")
    assert problem in message and "\n" not in message
    with pytest.raises(LedgerPluginError):
        ledger_plugins()  # listing every plugin names the broken one too
    assert ledger_plugin("xero").name == "xero"  # the others still load


def test_an_unknown_ledger_lists_the_known_ones() -> None:
    with pytest.raises(LedgerPluginError, match=r"unknown ledger 'sage' \(known: .*quickbooks, xero\)"):
        ledger_plugin("sage")
