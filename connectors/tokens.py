"""OAuth tokens: an encrypted store, and a provider that refreshes them safely.

Intuit and Xero both ROTATE refresh tokens: each refresh returns a new one and kills the old. So
refreshes are serialised across processes (a file lock per connection), the store is re-read once
the lock is held (another worker may have refreshed already), and the new refresh token is saved
atomically before the new access token is handed out. No token value is ever logged or put in an
exception message.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from filelock import FileLock

from connectors.base import AuthError, ConnectionSetupError
from connectors.files import write_atomic
from connectors.secrets import SecretBox


class RefreshRejected(Exception):
    """Raised by a refresher when the authorization server refuses the refresh token."""


@dataclass(frozen=True, slots=True)
class Tokens:
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: datetime
    refresh_expires_at: datetime | None = None
    account_id: str | None = None  # QBO realm id / Xero tenant id
    scope: str = ""

    def __repr__(self) -> str:
        return (
            f"Tokens(access_token=<redacted>, refresh_token=<redacted>, expires_at={self.expires_at!r}, "
            f"refresh_expires_at={self.refresh_expires_at!r}, account_id={self.account_id!r}, "
            f"scope={self.scope!r})"
        )

    __str__ = __repr__

    def expires_within(self, delta: timedelta, now: datetime) -> bool:
        return self.expires_at - delta <= now

    @classmethod
    def from_response(
        cls,
        body: dict[str, Any],
        *,
        now: datetime | None = None,
        account_id: str | None = None,
        previous: Tokens | None = None,
    ) -> Tokens:
        """Build from an OAuth token-endpoint JSON body (keeps account/scope of `previous`)."""
        now = now or datetime.now(UTC)
        try:
            access = str(body["access_token"])
            refresh = str(body.get("refresh_token") or (previous.refresh_token if previous else ""))
            expires_in = int(body.get("expires_in", 3600))
        except (KeyError, TypeError, ValueError):
            raise AuthError("the token endpoint answered without an access token") from None
        refresh_in = body.get("x_refresh_token_expires_in")
        return cls(
            access_token=access,
            refresh_token=refresh,
            expires_at=now + timedelta(seconds=expires_in),
            refresh_expires_at=now + timedelta(seconds=int(refresh_in)) if refresh_in else None,
            account_id=account_id or (previous.account_id if previous else None),
            scope=str(body.get("scope") or (previous.scope if previous else "")),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_at": self.expires_at.isoformat(),
            "refresh_expires_at": self.refresh_expires_at.isoformat() if self.refresh_expires_at else None,
            "account_id": self.account_id,
            "scope": self.scope,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tokens:
        refresh_expires = data.get("refresh_expires_at")
        return cls(
            access_token=data["access_token"],
            refresh_token=data["refresh_token"],
            expires_at=datetime.fromisoformat(data["expires_at"]),
            refresh_expires_at=datetime.fromisoformat(refresh_expires) if refresh_expires else None,
            account_id=data.get("account_id"),
            scope=data.get("scope") or "",
        )


class TokenStore:
    """`tokens.enc.json`: {"version": 1, "connections": {name: {"tokens": <fernet>, "client_secret":
    <fernet>}}}. Connection names are in clear; every value is encrypted."""

    def __init__(self, path: Path, box: SecretBox) -> None:
        self.path = Path(path)
        self.box = box
        self._lock = FileLock(str(self.path) + ".lock")
        self._thread_lock = threading.RLock()

    def _read(self) -> dict[str, Any]:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {"version": 1, "connections": {}}
        except OSError as error:
            raise ConnectionSetupError(
                f"{self.path}: cannot read the token store ({error.strerror})"
            ) from None
        try:
            data = json.loads(raw)
            if not isinstance(data, dict) or not isinstance(data.get("connections"), dict):
                raise ValueError("unexpected layout")
        except ValueError:
            raise ConnectionSetupError(
                f"{self.path}: the token store is damaged",
                hint="remove it and run `relance connect` again for each connection",
            ) from None
        return data

    def _update(self, connection: str, key: str, value: str | None) -> None:
        with self._thread_lock, self._lock:
            data = self._read()
            entry = data["connections"].setdefault(connection, {})
            if value is None:
                entry.pop(key, None)
                if not entry:
                    data["connections"].pop(connection, None)
            else:
                entry[key] = self.box.encrypt(value)
            write_atomic(self.path, json.dumps(data, indent=1, sort_keys=True))

    def _get(self, connection: str, key: str) -> str | None:
        entry = self._read()["connections"].get(connection) or {}
        cipher = entry.get(key)
        return self.box.decrypt(cipher) if cipher else None

    def get(self, connection: str) -> Tokens | None:
        plain = self._get(connection, "tokens")
        return Tokens.from_dict(json.loads(plain)) if plain else None

    def save(self, connection: str, tokens: Tokens) -> None:
        self._update(connection, "tokens", json.dumps(tokens.to_dict()))

    def get_client_secret(self, connection: str) -> str | None:
        return self._get(connection, "client_secret")

    def save_client_secret(self, connection: str, secret: str) -> None:
        self._update(connection, "client_secret", secret)

    def delete(self, connection: str) -> None:
        with self._thread_lock, self._lock:
            data = self._read()
            if data["connections"].pop(connection, None) is not None:
                write_atomic(self.path, json.dumps(data, indent=1, sort_keys=True))

    def names(self) -> list[str]:
        return sorted(self._read()["connections"])


Refresher = Callable[[Tokens], Tokens]


class TokenProvider:
    """Valid access tokens for one connection; refreshes before expiry and after a 401."""

    def __init__(
        self,
        connection: str,
        store: TokenStore,
        refresher: Refresher,
        *,
        skew: timedelta = timedelta(minutes=5),
        lock_dir: Path | None = None,
        ledger: str = "<ledger>",
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.connection = connection
        self.store = store
        self.refresher = refresher
        self.skew = skew
        self.ledger = ledger
        self._now = now or (lambda: datetime.now(UTC))
        lock_dir = Path(lock_dir) if lock_dir is not None else store.path.parent
        lock_dir.mkdir(parents=True, exist_ok=True)
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in connection)
        self._file_lock = FileLock(str(lock_dir / f".refresh-{safe}.lock"))
        self._thread_lock = threading.Lock()
        self._cached: Tokens | None = None
        self.refreshes = 0  # refreshes this provider performed (tests, metrics)

    def _load(self) -> Tokens:
        tokens = self.store.get(self.connection)
        if tokens is None:
            raise AuthError(
                "no stored tokens",
                connection=self.connection,
                hint=f"run `relance connect {self.ledger} --name {self.connection}`",
            )
        return tokens

    @property
    def account_id(self) -> str | None:
        return (self._cached or self._load()).account_id

    def current(self) -> Tokens:
        """The tokens as stored now (no refresh)."""
        return self._load()

    def access_token(self) -> str:
        cached = self._cached
        if cached is not None and not cached.expires_within(self.skew, self._now()):
            return cached.access_token
        with self._thread_lock:
            tokens = self._load()
            if not tokens.expires_within(self.skew, self._now()):
                self._cached = tokens
                return tokens.access_token
            return self._refresh_locked(stale_access=None)

    def force_refresh(self, stale_access_token: str) -> str:
        """After a 401 with `stale_access_token`: refresh unless someone already did."""
        with self._thread_lock:
            return self._refresh_locked(stale_access=stale_access_token)

    def _refresh_locked(self, *, stale_access: str | None) -> str:
        with self._file_lock:
            # Re-read under the lock: another process may have rotated the tokens meanwhile.
            tokens = self._load()
            if stale_access is not None:
                if tokens.access_token != stale_access:
                    self._cached = tokens
                    return tokens.access_token
            elif not tokens.expires_within(self.skew, self._now()):
                self._cached = tokens
                return tokens.access_token
            try:
                fresh = self.refresher(tokens)
            except RefreshRejected:
                self._cached = None
                raise AuthError(
                    f"[{self.connection}] refresh token rejected: run "
                    f"`relance connect {self.ledger} --name {self.connection}` again"
                ) from None
            if fresh.account_id is None and tokens.account_id is not None:
                fresh = replace(fresh, account_id=tokens.account_id)
            # Persist the rotated refresh token before anyone uses the new access token.
            self.store.save(self.connection, fresh)
            self._cached = fresh
            self.refreshes += 1
            return fresh.access_token

    def __repr__(self) -> str:
        return f"TokenProvider(connection={self.connection!r})"
