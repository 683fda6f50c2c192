"""relance.yaml: where the state lives, which policy applies, how email goes out, which ledgers.

Secrets never live here: the SMTP password is read from the environment variable named by
`email.smtp.password_env`; OAuth client secrets and tokens are stored encrypted next to the
config (connectors.tokens.TokenStore), or read from `client_secret_env` if given.

Environment overrides RELANCE_QUICKBOOKS_BASE_URL / RELANCE_XERO_BASE_URL /
RELANCE_QUICKBOOKS_DISCOVERY_URL / RELANCE_XERO_IDENTITY_URL apply to the WHOLE PROCESS and win
over the per-connection keys (the issue says "for the whole process": point everything at a
sandbox without editing the file).
"""

from __future__ import annotations

import re
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from connectors.files import write_atomic
from connectors.registry import ledger_names, ledger_plugin, ledger_plugins
from connectors.settings import ConnectionSettings
from policies import loader
from policies.model.errors import PolicyError
from sync.errors import ConfigError

# The ledger-specific keys of a connection: (key, the plugin field naming the ledger's own key).
_LEDGER_KEYS = (
    ("realm_id", "account_id_field"),
    ("tenant_id", "account_id_field"),
    ("discovery_url", "oauth_url_field"),
    ("identity_url", "oauth_url_field"),
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_HINT = "see the README section 'relance.yaml'"


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, serialize_by_alias=True, validate_assignment=True
    )


def _refuse_secret(data: Any, key: str, message: str) -> Any:
    """Secrets never live in relance.yaml: a mapping holding `key` is refused with `message`."""
    if isinstance(data, dict) and key in data:
        raise ValueError(message)
    return data


class SmtpConfig(_Model):
    host: str = Field(description="SMTP server host name, e.g. smtp.example.com.")
    port: int = Field(587, ge=1, le=65535, description="SMTP port: 587 (STARTTLS) or 465 (ssl).")
    username: str | None = Field(None, description="SMTP login, if the server needs one.")
    password_env: str | None = Field(
        None, description="NAME of the environment variable holding the SMTP password (never the password)."
    )
    starttls: bool = Field(True, description="Upgrade the connection with STARTTLS.")
    ssl: bool = Field(False, description="Implicit TLS from the first byte (port 465).")

    @model_validator(mode="before")
    @classmethod
    def _no_password(cls, data: Any) -> Any:
        return _refuse_secret(
            data,
            "password",
            "never put the SMTP password in relance.yaml: export it in an environment variable "
            "and name that variable in email.smtp.password_env",
        )

    @model_validator(mode="after")
    def _one_tls_mode(self) -> SmtpConfig:
        if self.ssl and self.starttls:
            self.__dict__["starttls"] = False  # implicit TLS (465) replaces STARTTLS
        return self


class EmailConfig(_Model):
    transport: Literal["smtp", "file"] = Field(
        "file", description="smtp sends; file writes one .eml per notice into file_dir (review, then send)."
    )
    from_: str | None = Field(None, alias="from", description="Sender address of relance emails.")
    reply_to: str | None = Field(None, description="Where customers' replies go (your accounts team).")
    smtp: SmtpConfig | None = Field(None, description="SMTP server, for transport smtp.")
    file_dir: str | None = Field(None, description="Folder for .eml files (default: <outbox_dir>/emails).")

    @model_validator(mode="after")
    def _smtp_needs_host(self) -> EmailConfig:
        if self.transport == "smtp" and self.smtp is None:
            raise ValueError("transport smtp needs an smtp: {host: ..., port: ...} section")
        return self


class DaemonConfig(_Model):
    interval_minutes: int | None = Field(60, ge=1, description="Minutes between two runs (or use cron).")
    cron: str | None = Field(None, description="Cron schedule instead of an interval, e.g. '0 8-18 * * 1-5'.")
    jitter_seconds: int = Field(0, ge=0, description="Random delay added to each run (spreads load).")
    health_file: str | None = Field(
        None, description="JSON health file rewritten after each run (default relance-health.json)."
    )


class ConnectionConfig(_Model):
    name: str = Field(description="Your name for this ledger connection, e.g. acme-qbo.")
    ledger: str = Field(description="quickbooks, xero, or a ledger an installed plugin registers.")
    policy: str | None = Field(
        None, description="Policy file for this connection (default: the top-level policy)."
    )
    base_url: str | None = Field(
        None, description="API root override: QBO .../v3, Xero .../api.xro/2.0 (sandboxes, proxies)."
    )
    discovery_url: str | None = Field(None, description="QuickBooks: OpenID discovery document URL override.")
    identity_url: str | None = Field(
        None, description="Xero: identity root override (/connect/authorize, /connect/token)."
    )
    client_id: str | None = Field(None, description="OAuth client id of your Intuit or Xero app.")
    client_secret_env: str | None = Field(
        None,
        description="Env variable holding the client secret (else stored encrypted by `relance connect`).",
    )
    realm_id: str | None = Field(None, description="QuickBooks company id (realmId).")
    tenant_id: str | None = Field(None, description="Xero organisation id (tenantId).")
    minor_version: int | None = Field(None, ge=1, description="QuickBooks API minorversion (default 75).")
    history_months: int = Field(
        24, ge=1, le=120, description="Months of paid history a full pull covers (DSO, limits)."
    )
    fee_item_name: str = Field(
        "Late fee", description="QuickBooks: the service Item fee lines use (created if missing)."
    )
    fee_mode: Literal["line", "invoice"] = Field(
        "line",
        description="QuickBooks: fee as a line on the invoice, or a separate fee invoice (Xero: always).",
    )
    enabled: bool = Field(True, description="false: skipped by sync and the daemon.")
    rate_limit_per_minute: int | None = Field(
        None, ge=1, description="Override the published per-minute limit (local sandboxes only)."
    )

    @model_validator(mode="before")
    @classmethod
    def _no_secret(cls, data: Any) -> Any:
        return _refuse_secret(
            data,
            "client_secret",
            "never put client_secret in relance.yaml: `relance connect --client-secret` stores it "
            "encrypted, or name an environment variable in client_secret_env",
        )

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"connection name {value!r} must be letters, digits, '-', '_' or '.' (max 64)")
        return value

    @field_validator("ledger")
    @classmethod
    def _registered_ledger(cls, value: str) -> str:
        known = ledger_names()  # entry point names: no plugin is imported for this
        if not known:
            raise ValueError("no ledger is installed (entry points relance.connectors); reinstall relance")
        if value not in known:
            expected = " or ".join(repr(name) for name in known)
            raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": expected})
        return value

    @field_validator("realm_id", "tenant_id", "client_id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _ids_match_ledger(self) -> ConnectionConfig:
        plugin = ledger_plugin(self.ledger)
        for key, role in _LEDGER_KEYS:
            own = getattr(plugin, role)
            if getattr(self, key) and key != own:
                owners = ", ".join(p.name for p in ledger_plugins().values() if getattr(p, role) == key)
                where = f"is for {owners} connections" if owners else "is not used by any installed ledger"
                uses = f"uses {own}" if own else "has no such key"
                raise ValueError(f"{key} {where}; {plugin.display_name} {uses}")
        return self

    @property
    def account_id(self) -> str | None:
        key = ledger_plugin(self.ledger).account_id_field
        value = getattr(self, key) if key in type(self).model_fields else None
        return value if isinstance(value, str) else None

    @property
    def api_base_url(self) -> str:
        """The API root to use: env override (whole process) > base_url > the vendor's production."""
        return ledger_plugin(self.ledger).api_base_url(self.base_url)

    def to_settings(self) -> ConnectionSettings:
        """What a connector needs of this connection (connectors never read relance.yaml)."""
        return ConnectionSettings(
            name=self.name,
            ledger=self.ledger,
            base_url=self.api_base_url,
            account_id=self.account_id,
            client_id=self.client_id,
            client_secret_env=self.client_secret_env,
            discovery_url=self.discovery_url,
            identity_url=self.identity_url,
            history_months=self.history_months,
            fee_mode=self.fee_mode,
            fee_item_name=self.fee_item_name,
            minor_version=self.minor_version,
            rate_limit_per_minute=self.rate_limit_per_minute,
        )

    @property
    def history(self) -> timedelta:
        return timedelta(days=round(self.history_months * 30.44))


class AppConfig(_Model):
    version: int = Field(1, description="Configuration format version; always 1.")
    state: str = Field(
        "sqlite:///relance.sqlite",
        description="State store URL: sqlite:///file (relative to relance.yaml) or postgresql+psycopg://...",
    )
    policy: str = Field("policy.yaml", description="Default policy file for every connection.")
    outbox_dir: str = Field("outbox", description="Folder for .eml files, letters and agency hand-overs.")
    secrets_dir: str | None = Field(
        None, description="Folder of the encrypted tokens and key file (default: next to relance.yaml)."
    )
    templates_dirs: list[str] = Field(
        default_factory=list, description="Your Jinja2 template folders, searched before the shipped ones."
    )
    email: EmailConfig = Field(default_factory=EmailConfig, description="How relance emails are sent.")
    connections: list[ConnectionConfig] = Field(
        default_factory=list, description="Ledger connections (added by `relance connect`)."
    )
    daemon: DaemonConfig = Field(default_factory=DaemonConfig, description="Schedule of `relance daemon`.")

    @field_validator("connections", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value

    @model_validator(mode="after")
    def _unique_names(self) -> AppConfig:
        seen: set[str] = set()
        for connection in self.connections:
            if connection.name in seen:
                raise ValueError(f"two connections are named {connection.name!r}; names must be unique")
            seen.add(connection.name)
        return self

    def connection(self, name: str) -> ConnectionConfig | None:
        return next((c for c in self.connections if c.name == name), None)


# ---------------------------------------------------------------- load


def _read_yaml(text: str, source: str) -> tuple[dict[str, Any], dict[tuple[str | int, ...], int]]:
    """YAML -> (data, line of every key path), via the policy loader's line-keeping reader."""
    if not text.strip():
        return {}, {(): 1}
    try:
        return loader.read_yaml(text, source)
    except PolicyError as error:
        problems = [p.replace("expected a policy", "expected relance.yaml settings") for p in error.problems]
        raise ConfigError("\n".join(problems), hint=_HINT) from None


def describe_config_errors(
    error: ValidationError, lines: dict[tuple[str | int, ...], int], source: str
) -> list[str]:
    return loader.describe_errors(error, lines, source, model=AppConfig)


def parse_config(text: str, source: str = "relance.yaml") -> AppConfig:
    data, lines = _read_yaml(text, source)
    try:
        return AppConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError("\n".join(describe_config_errors(error, lines, source)), hint=_HINT) from None


def load_config(path: Path | str) -> AppConfig:
    """Read and validate relance.yaml. Raises ConfigError with 'file:line: field: problem' lines."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such configuration file", hint="run `relance init`, or pass --config PATH"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, expected relance.yaml") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read ({error.strerror})") from None
    return parse_config(text, str(path))


# ---------------------------------------------------------------- save (round trip, comments kept)

NEW_FILE_HEADER = "# relance configuration (see the README section 'relance.yaml')\n"


def _dump(config: AppConfig) -> dict[str, Any]:
    return config.model_dump(mode="json", by_alias=True, exclude_unset=True, exclude_none=True)


def _merge(target: Any, new: dict[str, Any]) -> None:
    """Update a ruamel CommentedMap in place so untouched keys keep their comments."""
    for key in [k for k in target if k not in new]:
        del target[key]
    for key, value in new.items():
        current = target.get(key)
        if isinstance(value, dict) and hasattr(current, "items"):
            _merge(current, value)
        elif key == "connections" and isinstance(value, list) and isinstance(current, list):
            _merge_connections(current, value)
        elif current != value:
            target[key] = value


def _merge_connections(target: Any, new: list[dict[str, Any]]) -> None:
    existing = {item.get("name"): item for item in target if hasattr(item, "get")}
    result = []
    for item in new:
        old = existing.get(item.get("name"))
        if old is not None:
            _merge(old, item)
            result.append(old)
        else:
            result.append(item)
    target[:] = result


def save_config(path: Path | str, config: AppConfig) -> None:
    """Write relance.yaml, keeping the comments and layout of an existing file where possible."""
    from ruamel.yaml import YAML

    path = Path(path)
    yaml = YAML(typ="rt")
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 110
    new = _dump(config)
    document: Any = None
    if path.exists():
        try:
            document = yaml.load(path.read_text(encoding="utf-8"))
        except Exception:
            raise ConfigError(f"{path}: cannot be updated (invalid YAML); fix it first") from None
    buffer = StringIO()
    if document is None or not hasattr(document, "items"):
        buffer.write(NEW_FILE_HEADER)
        yaml.dump(new, buffer)
    else:
        _merge(document, new)
        yaml.dump(document, buffer)
    # relance.yaml holds no secret: keep the mode it has (readable by default)
    write_atomic(path, buffer.getvalue(), mode=path.stat().st_mode & 0o777 if path.exists() else 0o644)


def upsert_connection(config: AppConfig, connection: ConnectionConfig) -> AppConfig:
    """A copy of `config` with `connection` added or replacing the one of the same name."""
    connections = [c for c in config.connections if c.name != connection.name]
    index = next((i for i, c in enumerate(config.connections) if c.name == connection.name), len(connections))
    connections.insert(index, connection)
    updated = config.model_copy(update={"connections": connections})
    updated.model_fields_set.add("connections")
    return updated
