"""`relance connect quickbooks|xero --name NAME`: authorise relance on a ledger (OAuth2
authorization-code flow, or import existing tokens), store the tokens encrypted and add the
connection to relance.yaml (created if absent)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from connectors.oauth import resolve_endpoints, run_authorization_flow
from connectors.secrets import SecretBox, load_key
from connectors.tokens import Tokens, TokenStore
from sync.commands.options import config_option, json_option
from sync.config import AppConfig, ConnectionConfig, load_config, save_config, upsert_connection
from sync.errors import ConfigError

DEFAULT_CONFIG = "relance.yaml"
CONFIG_ENV = "RELANCE_CONFIG"
TOKEN_FILE = "tokens.enc.json"


@dataclass(frozen=True)
class ConnectResult:
    name: str
    ledger: str
    account_id: str
    config_path: Path
    token_file: Path
    imported: bool
    created_config: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ledger": self.ledger,
            "account_id": self.account_id,
            "config": str(self.config_path),
            "token_file": str(self.token_file),
            "mode": "import" if self.imported else "oauth",
            "created_config": self.created_config,
        }


def _config_path(path: Path | None) -> Path:
    return Path(path or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG).expanduser().resolve()


def connect_ledger(
    ledger: str,
    name: str,
    *,
    config_path: Path | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    open_browser: bool = True,
    paste: bool = False,
    port: int = 8765,
    base_url: str | None = None,
    discovery_url: str | None = None,
    identity_url: str | None = None,
    access_token: str | None = None,
    refresh_token: str | None = None,
    account_id: str | None = None,
    expires_in: int = 3600,
    echo: Any = None,
) -> ConnectResult:
    """Library function behind `relance connect` (also used by tests and the demo)."""
    path = _config_path(config_path)
    created = not path.exists()
    config = AppConfig() if created else load_config(path)
    existing = config.connection(name)
    if existing is not None and existing.ledger != ledger:
        raise ConfigError(
            f"{path.name}: connection '{name}' is a {existing.ledger} connection, not {ledger}",
            hint="choose another --name",
        )
    secrets_dir = path.parent / config.secrets_dir if config.secrets_dir else path.parent
    secrets_dir = secrets_dir.expanduser().resolve()
    store = TokenStore(secrets_dir / TOKEN_FILE, SecretBox(load_key(secrets_dir)))

    fields: dict[str, Any] = existing.model_dump(exclude_unset=True) if existing else {}
    fields.update(name=name, ledger=ledger)
    for key, value in (
        ("base_url", base_url),
        ("discovery_url", discovery_url),
        ("identity_url", identity_url),
        ("client_id", client_id),
    ):
        if value:
            fields[key] = value
    # validate the connection (names, ledger-specific keys) before contacting anyone
    draft = ConnectionConfig.model_validate(fields)

    imported = access_token is not None
    if imported:
        if not refresh_token:
            raise ConfigError("--access-token needs --refresh-token too (tokens are refreshed before expiry)")
        if not account_id:
            option = "--realm-id" if ledger == "quickbooks" else "--tenant-id"
            raise ConfigError(f"importing tokens needs {option} (which company the tokens are for)")
        if expires_in <= 0:
            raise ConfigError("--expires-in must be a positive number of seconds")
        tokens = Tokens(
            access_token=access_token or "",
            refresh_token=refresh_token,
            expires_at=datetime.now(UTC) + timedelta(seconds=expires_in),
            account_id=account_id,
        )
    else:
        secret = client_secret or (store.get_client_secret(name) if existing else None)
        if not draft.client_id or not secret:
            raise ConfigError(
                "the OAuth flow needs the app's --client-id and --client-secret",
                hint="create an app in the Intuit / Xero developer portal, or import tokens with "
                "--access-token --refresh-token",
            )
        endpoints = resolve_endpoints(
            ledger,
            discovery_url=draft.discovery_url,
            identity_url=draft.identity_url,
            base_url=draft.api_base_url,
        )
        tokens = run_authorization_flow(
            ledger,
            draft.client_id,
            secret,
            open_browser=open_browser,
            paste=paste,
            port=port,
            endpoints=endpoints,
            echo=echo,
        )
        if account_id and tokens.account_id and account_id != tokens.account_id:
            raise ConfigError(
                f"the consent was given for company {tokens.account_id}, not {account_id}",
                hint="pick the right company on the consent screen, or drop the id option",
            )
    final_account = tokens.account_id or account_id or ""
    fields["realm_id" if ledger == "quickbooks" else "tenant_id"] = final_account
    connection = ConnectionConfig.model_validate(fields)

    # Secrets first (encrypted), then the YAML that points at them.
    store.save(name, tokens)
    if client_secret:
        store.save_client_secret(name, client_secret)
    save_config(path, upsert_connection(config, connection))
    return ConnectResult(name, ledger, final_account, path, store.path, imported, created)


@click.command("connect")
@click.argument("ledger", type=click.Choice(["quickbooks", "xero"]))
@click.option("--name", required=True, help="Connection name used in relance.yaml and on the CLI.")
@config_option("relance.yaml to update (default: $RELANCE_CONFIG or ./relance.yaml; created if absent).")
@click.option("--client-id", default=None, help="OAuth client id of your Intuit / Xero app.")
@click.option(
    "--client-secret",
    default=None,
    envvar="RELANCE_CLIENT_SECRET",
    help="OAuth client secret (or $RELANCE_CLIENT_SECRET); stored encrypted, never in relance.yaml.",
)
@click.option("--no-browser", is_flag=True, help="Print the consent URL without opening a browser.")
@click.option("--paste", is_flag=True, help="Headless: paste the redirected URL instead of listening.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="Port of the 127.0.0.1 redirect listener (must match the app's redirect URI).",
)
@click.option(
    "--base-url", default=None, help="API root (QBO .../v3, Xero .../api.xro/2.0), e.g. a sandbox."
)
@click.option("--discovery-url", default=None, help="QuickBooks: OpenID discovery document URL.")
@click.option(
    "--identity-url", default=None, help="Xero: identity root (/connect/authorize, /connect/token)."
)
@click.option(
    "--access-token",
    default=None,
    envvar="RELANCE_IMPORT_ACCESS_TOKEN",
    help="Import mode: an existing access token (or $RELANCE_IMPORT_ACCESS_TOKEN).",
)
@click.option(
    "--refresh-token",
    default=None,
    envvar="RELANCE_IMPORT_REFRESH_TOKEN",
    help="Import mode: its refresh token (or $RELANCE_IMPORT_REFRESH_TOKEN).",
)
@click.option("--realm-id", default=None, help="QuickBooks company id (import mode).")
@click.option("--tenant-id", default=None, help="Xero organisation id (import mode).")
@click.option(
    "--expires-in",
    type=int,
    default=3600,
    show_default=True,
    help="Import mode: seconds until the access token expires.",
)
@json_option("Print the result as JSON.")
def connect(
    ledger: str,
    name: str,
    config_path: Path | None,
    client_id: str | None,
    client_secret: str | None,
    no_browser: bool,
    paste: bool,
    port: int,
    base_url: str | None,
    discovery_url: str | None,
    identity_url: str | None,
    access_token: str | None,
    refresh_token: str | None,
    realm_id: str | None,
    tenant_id: str | None,
    expires_in: int,
    as_json: bool,
) -> None:
    """Connect a QuickBooks Online company or a Xero organisation.

    Runs the OAuth2 consent flow (or imports tokens with --access-token/--refresh-token), stores
    the tokens encrypted next to relance.yaml and adds the connection to relance.yaml."""
    if ledger == "quickbooks" and tenant_id:
        raise click.UsageError("--tenant-id is for xero; QuickBooks uses --realm-id")
    if ledger == "xero" and realm_id:
        raise click.UsageError("--realm-id is for quickbooks; Xero uses --tenant-id")
    if ledger == "quickbooks" and identity_url:
        raise click.UsageError("--identity-url is for xero; QuickBooks uses --discovery-url")
    if ledger == "xero" and discovery_url:
        raise click.UsageError("--discovery-url is for quickbooks; Xero uses --identity-url")
    result = connect_ledger(
        ledger,
        name,
        config_path=config_path,
        client_id=client_id,
        client_secret=client_secret,
        open_browser=not no_browser,
        paste=paste,
        port=port,
        base_url=base_url,
        discovery_url=discovery_url,
        identity_url=identity_url,
        access_token=access_token,
        refresh_token=refresh_token,
        account_id=realm_id or tenant_id,
        expires_in=expires_in,
        echo=lambda text: click.echo(text, err=True),
    )
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
        return
    what = "realm" if ledger == "quickbooks" else "tenant"
    click.echo(
        f"Connected '{result.name}' ({ledger} {what} {result.account_id}); "
        f"tokens stored encrypted in {result.token_file}; {result.config_path} "
        f"{'created' if result.created_config else 'updated'}."
    )


COMMANDS = (connect,)
