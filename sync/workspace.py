"""A workspace: relance.yaml plus everything it points at (state store, policies, secrets, outbox).

Loaded once per command; every CLI command goes through `Workspace.open()` so a missing or wrong
file gives the same one-line error everywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from connectors.base import Clock, Connector, read_clock
from connectors.factory import open_connector
from connectors.secrets import SecretBox, load_key
from connectors.tokens import TokenStore
from policies.config import Policy
from sync.config import AppConfig, ConnectionConfig, load_config
from sync.errors import ConfigError
from sync.rulebook import load_policy
from sync.store import Store, open_store

DEFAULT_CONFIG = "relance.yaml"
CONFIG_ENV = "RELANCE_CONFIG"


def find_config(path: str | Path | None) -> Path:
    """The relance.yaml to use: --config, else $RELANCE_CONFIG, else ./relance.yaml."""
    chosen = Path(path or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG).expanduser()
    if not chosen.is_file():
        raise ConfigError(
            f"{chosen}: no such configuration file",
            hint="run `relance init` to create one, or pass --config PATH (or try `relance demo`)",
        )
    return chosen.resolve()


@dataclass
class Workspace:
    config_path: Path
    config: AppConfig
    clock: Clock | None = None  # the one clock a run reads (None: the system clock); tests freeze it
    _policies: dict[Path, Policy] = field(default_factory=dict)

    @classmethod
    def open(cls, path: str | Path | None = None, *, clock: Clock | None = None) -> Workspace:
        config_path = find_config(path)
        return cls(config_path, load_config(config_path), clock)

    @property
    def root(self) -> Path:
        return self.config_path.parent

    def resolve(self, value: str | Path) -> Path:
        candidate = Path(value).expanduser()
        return candidate if candidate.is_absolute() else (self.root / candidate)

    # ------------------------------------------------------------ pieces, opened lazily

    @cached_property
    def store(self) -> Store:
        return open_store(self.state_url, clock=self.clock)

    @property
    def state_url(self) -> str:
        url = self.config.state
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            relative = url.removeprefix("sqlite:///")
            if relative and relative != ":memory:":
                return f"sqlite:///{self.resolve(relative)}"
        return url

    @cached_property
    def secrets_dir(self) -> Path:
        return self.resolve(self.config.secrets_dir) if self.config.secrets_dir else self.root

    @cached_property
    def token_store(self) -> TokenStore:
        return TokenStore(self.secrets_dir / "tokens.enc.json", SecretBox(load_key(self.secrets_dir)))

    @property
    def outbox_dir(self) -> Path:
        return self.resolve(self.config.outbox_dir)

    def connection(self, name: str) -> ConnectionConfig:
        for connection in self.config.connections:
            if connection.name == name:
                return connection
        known = ", ".join(c.name for c in self.config.connections) or "none"
        raise ConfigError(
            f"{self.config_path.name}: unknown connection '{name}' (known: {known})",
            hint="check --connection, or add it with `relance connect`",
        )

    def connections(self, name: str | None = None) -> list[ConnectionConfig]:
        if name:
            return [self.connection(name)]
        enabled = [c for c in self.config.connections if c.enabled]
        if not enabled:
            raise ConfigError(
                f"{self.config_path.name}: no connections configured",
                hint="add one with `relance connect quickbooks|xero --name NAME`",
            )
        return enabled

    def policy_for(self, connection: ConnectionConfig) -> Policy:
        path = self.resolve(connection.policy or self.config.policy)
        if path not in self._policies:
            self._policies[path] = load_policy(path)
        return self._policies[path]

    def open_connector(self, connection: ConnectionConfig, *, today: date | None = None) -> Connector:
        """With a `today` override (time travel, replays), the connector's clock follows it."""
        clock = self.clock
        if today is not None:

            def clock() -> datetime:
                now = read_clock(self.clock)
                return datetime.combine(today, now.time(), UTC)

        return open_connector(
            connection.to_settings(), config_dir=self.secrets_dir, secrets=self.token_store, clock=clock
        )

    def today_for(self, connection: ConnectionConfig, *, override: date | None = None) -> date:
        """Today in the company's timezone (policies never read the clock themselves)."""
        if override is not None:
            return override
        zone = ZoneInfo(self.policy_for(connection).company.timezone)
        return read_clock(self.clock).astimezone(zone).date()

    def email_settings(self) -> dict[str, Any]:
        """The email section with the SMTP password resolved from its environment variable."""
        email = self.config.email.model_dump()
        smtp = email.get("smtp") or {}
        password_env = smtp.pop("password_env", None)
        if password_env:
            if password_env not in os.environ:
                raise ConfigError(
                    f"{self.config_path.name}: email.smtp.password_env names "
                    f"${password_env}, which is not set",
                    hint=f"export {password_env}=... before running relance",
                )
            smtp["password"] = os.environ[password_env]
        email["smtp"] = smtp
        if email.get("file_dir"):
            email["file_dir"] = str(self.resolve(email["file_dir"]))
        else:
            email["file_dir"] = str(self.outbox_dir / "emails")
        return email
