"""`relance connect`: import mode and the real OAuth flows (QBO via intuitlib + discovery document,
Xero via identity root + /connections) against local OAuth servers; `relance sandbox serve`."""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import stat
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from connectors.factory import token_provider_for
from connectors.sandbox.server import (
    OAuthAuthority,
    Route,
    SandboxServer,
    json_response,
    oauth_routes,
    openid_discovery_route,
)
from connectors.secrets import KEY_ENV, SecretBox, load_key
from connectors.tokens import Tokens, TokenStore
from sync.cli import cli
from sync.config import load_config
from sync.errors import ConfigError

ENV = (
    "RELANCE_QUICKBOOKS_BASE_URL",
    "RELANCE_XERO_BASE_URL",
    "RELANCE_QUICKBOOKS_DISCOVERY_URL",
    "RELANCE_XERO_IDENTITY_URL",
    "RELANCE_CONFIG",
    "RELANCE_CLIENT_SECRET",
    KEY_ENV,
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def store_for(directory: Path) -> TokenStore:
    return TokenStore(directory / "tokens.enc.json", SecretBox(load_key(directory)))


def assert_nothing_in_clear(directory: Path, *secrets: str) -> None:
    for file in directory.rglob("*"):
        if file.is_file():
            content = file.read_bytes()
            for secret in secrets:
                assert secret.encode() not in content, f"secret in clear in {file.name}"


def test_import_mode_writes_config_and_encrypted_tokens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Any OAuth contact would fail: the endpoints point at a closed port.
    monkeypatch.setenv(
        "RELANCE_QUICKBOOKS_DISCOVERY_URL", "http://127.0.0.1:9/.well-known/openid_configuration"
    )
    config = tmp_path / "relance.yaml"
    result = CliRunner().invoke(
        cli,
        [
            "connect",
            "quickbooks",
            "--name",
            "acme",
            "--config",
            str(config),
            "--access-token",
            "AT-clear-value-1",
            "--refresh-token",
            "RT-clear-value-2",
            "--realm-id",
            "9130",
            "--client-id",
            "cid-1",
            "--client-secret",
            "CS-clear-value-3",
            "--expires-in",
            "1800",
            "--base-url",
            "http://127.0.0.1:9/v3",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Connected 'acme' (quickbooks realm 9130)" in result.output
    assert "clear-value" not in result.output
    [connection] = load_config(config).connections
    assert (connection.name, connection.ledger, connection.realm_id, connection.client_id) == (
        "acme",
        "quickbooks",
        "9130",
        "cid-1",
    )
    assert connection.base_url == "http://127.0.0.1:9/v3"
    store = store_for(tmp_path)
    tokens = store.get("acme")
    assert tokens is not None and tokens.access_token == "AT-clear-value-1" and tokens.account_id == "9130"
    assert timedelta(minutes=25) < tokens.expires_at - datetime.now(UTC) <= timedelta(minutes=30)
    assert store.get_client_secret("acme") == "CS-clear-value-3"
    assert stat.S_IMODE((tmp_path / ".relance.key").stat().st_mode) == 0o600
    assert_nothing_in_clear(tmp_path, "AT-clear-value-1", "RT-clear-value-2", "CS-clear-value-3")


def test_import_into_existing_config_keeps_comments(tmp_path: Path) -> None:
    config = tmp_path / "relance.yaml"
    config.write_text("# my settings\nstate: sqlite:///s.sqlite  # keep\nconnections: []\n")
    result = CliRunner().invoke(
        cli,
        [
            "connect",
            "xero",
            "--name",
            "uk",
            "--config",
            str(config),
            "--access-token",
            "a1",
            "--refresh-token",
            "r1",
            "--tenant-id",
            "t-1",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert '"mode": "import"' in result.output
    text = config.read_text()
    assert "# my settings" in text and "# keep" in text
    assert load_config(config).connections[0].tenant_id == "t-1"


def test_bad_inputs_are_one_line_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    config = str(tmp_path / "relance.yaml")
    usage = runner.invoke(cli, ["connect", "xero", "--name", "x", "--config", config, "--realm-id", "1"])
    assert usage.exit_code == 2 and "--realm-id is for quickbooks" in usage.output
    missing = runner.invoke(
        cli, ["connect", "xero", "--name", "x", "--config", config, "--access-token", "a"]
    )
    assert isinstance(missing.exception, ConfigError) and "--refresh-token" in str(missing.exception)
    no_app = runner.invoke(cli, ["connect", "quickbooks", "--name", "x", "--config", config, "--no-browser"])
    assert isinstance(no_app.exception, ConfigError) and "--client-id" in str(no_app.exception)
    bad_name = runner.invoke(
        cli,
        [
            "connect",
            "xero",
            "--name",
            "a b",
            "--config",
            config,
            "--access-token",
            "a",
            "--refresh-token",
            "r",
            "--tenant-id",
            "t",
        ],
    )
    assert bad_name.exception is not None and "letters, digits" in str(bad_name.exception)
    assert not (tmp_path / "relance.yaml").exists()


# ---------------------------------------------------------------- real OAuth flows


@pytest.fixture()
def oauth_server():
    authority = OAuthAuthority("app-id", "app-secret")

    def connections(_: object, __: object):
        return json_response(
            [{"id": "c1", "tenantId": "tenant-42", "tenantType": "ORGANISATION", "tenantName": "Acme UK"}]
        )

    routes = [
        openid_discovery_route(
            r"/\.well-known/openid_configuration", authorize_path="/qbo/authorize", token_path="/qbo/token"
        ),
        *oauth_routes(
            authority,
            authorize_path="/qbo/authorize",
            token_path="/qbo/token",
            redirect_extra=lambda request: {"realmId": "9130"},
        ),
        *oauth_routes(
            authority, authorize_path="/identity/connect/authorize", token_path="/identity/connect/token"
        ),
        Route("GET", "/connections", connections),
    ]
    server = SandboxServer(routes, authority=authority)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def auto_browser(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Plays the user: follows the consent URL; the local authority approves and redirects."""
    opened: list[str] = []

    def open_url(url: str) -> bool:
        opened.append(url)
        threading.Thread(target=requests.get, args=(url,), kwargs={"timeout": 20}, daemon=True).start()
        return True

    monkeypatch.setattr("webbrowser.open", open_url)
    return opened


def test_xero_oauth_flow_then_refresh_through_factory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, oauth_server: SandboxServer, auto_browser: list[str]
) -> None:
    monkeypatch.setenv("RELANCE_XERO_IDENTITY_URL", oauth_server.url + "/identity")
    monkeypatch.setenv("RELANCE_XERO_BASE_URL", oauth_server.url + "/api.xro/2.0")
    config = tmp_path / "relance.yaml"
    result = CliRunner().invoke(
        cli,
        [
            "connect",
            "xero",
            "--name",
            "uk",
            "--config",
            str(config),
            "--client-id",
            "app-id",
            "--client-secret",
            "app-secret",
            "--port",
            "0",
        ],
    )
    assert result.exit_code == 0, result.output
    assert auto_browser and auto_browser[0].startswith(oauth_server.url + "/identity/connect/authorize?")
    [connection] = load_config(config).connections
    assert connection.tenant_id == "tenant-42"
    store = store_for(tmp_path)
    stored = store.get("uk")
    assert stored is not None and oauth_server.authority.check_bearer("Bearer " + stored.access_token)
    assert stored.access_token not in result.output

    # expired access token: the factory's provider refreshes with the stored (encrypted) client secret
    store.save(
        "uk",
        Tokens(
            stored.access_token,
            stored.refresh_token,
            datetime.now(UTC) - timedelta(1),
            account_id="tenant-42",
        ),
    )
    provider = token_provider_for(connection.to_settings(), config_dir=tmp_path, secrets=store)
    fresh = provider.access_token()
    assert fresh != stored.access_token and oauth_server.authority.refresh_count == 1
    saved = store.get("uk")
    assert saved is not None and saved.refresh_token != stored.refresh_token
    assert_nothing_in_clear(tmp_path, fresh, saved.refresh_token, "app-secret")


def test_quickbooks_oauth_flow_uses_intuitlib_with_discovery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, oauth_server: SandboxServer, auto_browser: list[str]
) -> None:
    monkeypatch.setenv(
        "RELANCE_QUICKBOOKS_DISCOVERY_URL", oauth_server.url + "/.well-known/openid_configuration"
    )
    config = tmp_path / "relance.yaml"
    result = CliRunner().invoke(
        cli,
        [
            "connect",
            "quickbooks",
            "--name",
            "fr",
            "--config",
            str(config),
            "--client-id",
            "app-id",
            "--client-secret",
            "app-secret",
            "--port",
            "0",
        ],
    )
    assert result.exit_code == 0, result.output
    assert auto_browser[0].startswith(oauth_server.url + "/qbo/authorize?")
    assert "com.intuit.quickbooks.accounting" in auto_browser[0]
    [connection] = load_config(config).connections
    assert connection.realm_id == "9130"
    store = store_for(tmp_path)
    stored = store.get("fr")
    assert stored is not None and stored.account_id == "9130"
    assert stored.refresh_expires_at is not None

    store.save("fr", Tokens(stored.access_token, stored.refresh_token, datetime.now(UTC), account_id="9130"))
    provider = token_provider_for(connection.to_settings(), config_dir=tmp_path, secrets=store)
    assert provider.access_token() != stored.access_token
    assert oauth_server.authority.refresh_count == 1
    # the old refresh token was rotated away: Intuit-style invalid_grant becomes RefreshRejected
    from connectors.factory import endpoints_for
    from connectors.oauth import refresher_for
    from connectors.tokens import RefreshRejected

    with pytest.raises(RefreshRejected):
        refresher_for("quickbooks", "app-id", "app-secret", endpoints_for(connection.to_settings()))(stored)


def test_paste_mode_reads_the_redirect_from_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, oauth_server: SandboxServer
) -> None:
    monkeypatch.setenv("RELANCE_XERO_IDENTITY_URL", oauth_server.url + "/identity")
    monkeypatch.setenv("RELANCE_XERO_BASE_URL", oauth_server.url + "/api.xro/2.0")
    pasted: dict[str, str] = {}

    def fake_open(url: str) -> bool:  # the user approves in a browser elsewhere and copies the address
        response = requests.get(url, allow_redirects=False, timeout=10)
        pasted["url"] = response.headers["Location"]
        return True

    monkeypatch.setattr("webbrowser.open", fake_open)

    class Stdin:
        def readline(self) -> str:
            return pasted["url"] + "\n"

    monkeypatch.setattr(sys, "stdin", Stdin())
    from sync.commands.connections import connect_ledger

    result = connect_ledger(
        "xero",
        "uk",
        config_path=tmp_path / "relance.yaml",
        client_id="app-id",
        client_secret="app-secret",
        paste=True,
        port=8765,
        echo=lambda text: None,
    )
    assert result.account_id == "tenant-42" and not result.imported


# ---------------------------------------------------------------- sandbox serve


@pytest.mark.parametrize("ledger", ["quickbooks", "xero"])
def test_sandbox_serve_prints_settings_and_saves_state_on_sigterm(tmp_path: Path, ledger: str) -> None:
    module = f"connectors.sandbox.{ledger}"
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not available yet")
    state = tmp_path / "state.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from sync.cli import main; main()",
            "sandbox",
            "serve",
            ledger,
            "--customers",
            "5",
            "--invoices",
            "20",
            "--state",
            str(state),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    try:
        lines = []
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Serving"):
                break
        output = "".join(lines)
        prefix = "RELANCE_QUICKBOOKS" if ledger == "quickbooks" else "RELANCE_XERO"
        match = re.search(rf"export {prefix}_BASE_URL=(\S+)", output)
        assert match, output
        assert "client id:" in output and "client secret:" in output
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert state.exists()
