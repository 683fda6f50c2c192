"""Secrets at rest and token refresh: encryption, key file mode, redaction, cross-process refresh."""

from __future__ import annotations

import multiprocessing
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from connectors.base import AuthError, ConnectionSetupError
from connectors.oauth import OAuthEndpoints, refresher_for
from connectors.sandbox.server import OAuthAuthority, SandboxServer, oauth_routes
from connectors.secrets import KEY_ENV, KEY_FILE_NAME, SecretBox, load_key
from connectors.tokens import RefreshRejected, TokenProvider, Tokens, TokenStore

ACCESS = "at-SECRET-ACCESS-VALUE-123"
REFRESH = "rt-SECRET-REFRESH-VALUE-456"


@pytest.fixture(autouse=True)
def no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)


def tokens(expires_in: float = 3600, access: str = ACCESS, refresh: str = REFRESH) -> Tokens:
    return Tokens(access, refresh, datetime.now(UTC) + timedelta(seconds=expires_in), account_id="9130")


def make_store(directory: Path) -> TokenStore:
    return TokenStore(directory / "tokens.enc.json", SecretBox(load_key(directory)))


def test_key_file_created_once_with_mode_0600(tmp_path: Path) -> None:
    key = load_key(tmp_path)
    path = tmp_path / KEY_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key(tmp_path) == key
    Fernet(key)  # a valid Fernet key


def test_env_key_wins_and_bad_env_key_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_key = Fernet.generate_key()
    monkeypatch.setenv(KEY_ENV, env_key.decode())
    assert load_key(tmp_path) == env_key
    assert not (tmp_path / KEY_FILE_NAME).exists()
    monkeypatch.setenv(KEY_ENV, "not-a-key")
    with pytest.raises(ConnectionSetupError, match=KEY_ENV):
        load_key(tmp_path)


def test_store_encrypts_tokens_and_client_secret(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    store.save("acme", tokens())
    store.save_client_secret("acme", "client-secret-XYZ")
    loaded = store.get("acme")
    assert loaded is not None and loaded.access_token == ACCESS and loaded.refresh_token == REFRESH
    assert loaded.account_id == "9130"
    assert store.get_client_secret("acme") == "client-secret-XYZ"
    assert store.get("other") is None
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    for file in tmp_path.iterdir():
        content = file.read_bytes()
        for secret in (ACCESS, REFRESH, "client-secret-XYZ"):
            assert secret.encode() not in content, f"{secret} in clear in {file.name}"
    assert store.names() == ["acme"]


def test_wrong_key_cannot_read_the_store(tmp_path: Path) -> None:
    make_store(tmp_path).save("acme", tokens())
    other = TokenStore(tmp_path / "tokens.enc.json", SecretBox(Fernet.generate_key()))
    with pytest.raises(ConnectionSetupError, match="cannot decrypt"):
        other.get("acme")


def test_tokens_repr_and_errors_never_show_values(tmp_path: Path) -> None:
    value = tokens()
    assert ACCESS not in repr(value) and REFRESH not in str(value)
    store = make_store(tmp_path)
    store.save("acme", tokens(expires_in=-10))

    def rejecting(_: Tokens) -> Tokens:
        raise RefreshRejected("invalid_grant")

    provider = TokenProvider("acme", store, rejecting, lock_dir=tmp_path, ledger="xero")
    with pytest.raises(AuthError) as caught:
        provider.access_token()
    message = str(caught.value)
    assert "refresh token rejected" in message and "relance connect xero --name acme" in message
    assert ACCESS not in message and REFRESH not in message


def test_provider_refreshes_within_skew_and_persists_rotation(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    store.save("acme", tokens(expires_in=120))  # inside the 5-minute skew
    calls: list[str] = []

    def refresher(old: Tokens) -> Tokens:
        calls.append(old.refresh_token)
        return Tokens(f"at-{len(calls)}", f"rt-{len(calls)}", datetime.now(UTC) + timedelta(hours=1))

    provider = TokenProvider("acme", store, refresher, lock_dir=tmp_path)
    assert provider.access_token() == "at-1"
    saved = store.get("acme")
    assert saved is not None and saved.refresh_token == "rt-1" and saved.account_id == "9130"
    assert provider.access_token() == "at-1" and calls == [REFRESH]  # cached, no second refresh

    # a 401 with a token another process already replaced: no refresh, the stored one is used
    assert provider.force_refresh("at-0-stale") == "at-1" and len(calls) == 1
    # a 401 with the current token: refresh
    assert provider.force_refresh("at-1") == "at-2" and calls == [REFRESH, "rt-1"]


def test_missing_tokens_ask_to_connect(tmp_path: Path) -> None:
    provider = TokenProvider(
        "nope", make_store(tmp_path), lambda t: t, lock_dir=tmp_path, ledger="quickbooks"
    )
    with pytest.raises(AuthError, match="relance connect quickbooks --name nope"):
        provider.access_token()


# ---------------------------------------------------------------- two processes, one refresh token


def _worker(
    directory: str, token_url: str, barrier: multiprocessing.synchronize.Barrier, out: multiprocessing.Queue
) -> None:
    store = make_store(Path(directory))
    endpoints = OAuthEndpoints("xero", token_url=token_url)
    provider = TokenProvider(
        "acme", store, refresher_for("xero", "client-1", "secret-1", endpoints), lock_dir=Path(directory)
    )
    barrier.wait(timeout=20)
    try:
        out.put(("ok", provider.access_token(), provider.refreshes))
    except Exception as error:  # reported to the parent, which fails the test
        out.put(("error", f"{type(error).__name__}: {error}", 0))


def test_two_processes_refresh_once(tmp_path: Path) -> None:
    authority = OAuthAuthority("client-1", "secret-1")
    server = SandboxServer(
        oauth_routes(authority, authorize_path="/connect/authorize", token_path="/connect/token"),
        authority=authority,
    )
    with server:
        first = authority.grant()
        store = make_store(tmp_path)
        store.save(
            "acme",
            Tokens(
                first["access_token"],
                first["refresh_token"],
                datetime.now(UTC) - timedelta(seconds=5),
                account_id="tenant-1",
            ),
        )
        context = multiprocessing.get_context("fork")
        barrier = context.Barrier(2)
        out = context.Queue()
        workers = [
            context.Process(target=_worker, args=(str(tmp_path), server.url + "/connect/token", barrier, out))
            for _ in range(2)
        ]
        for worker in workers:
            worker.start()
        results = [out.get(timeout=30) for _ in workers]
        for worker in workers:
            worker.join(timeout=10)

    assert all(status == "ok" for status, _, _ in results), results
    assert authority.refresh_count == 1  # the refresh token was burnt exactly once
    assert sorted(refreshes for _, _, refreshes in results) == [0, 1]
    assert results[0][1] == results[1][1]  # both use the one new access token
    saved = store.get("acme")
    assert saved is not None and saved.access_token == results[0][1]
    assert saved.refresh_token != first["refresh_token"] and saved.account_id == "tenant-1"
    assert authority.check_bearer("Bearer " + saved.access_token)
    # the persisted (rotated) refresh token is the live one
    assert authority.refresh(saved.refresh_token, "client-1", "secret-1")["access_token"]
    for file in tmp_path.iterdir():
        assert saved.refresh_token.encode() not in file.read_bytes()
    assert os.listdir(tmp_path)  # key, store and lock files only
