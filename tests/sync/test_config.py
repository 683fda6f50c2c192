"""relance.yaml: validation with file:line errors, secrets refused, env overrides, comment-keeping save."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync.config import (
    AppConfig,
    ConnectionConfig,
    load_config,
    parse_config,
    save_config,
    upsert_connection,
)
from sync.errors import ConfigError

GOOD = """\
# relance for Acme
state: sqlite:///relance.sqlite   # next to this file
policy: policy.yaml
email:
  transport: smtp
  from: credit@acme.test
  smtp: {host: smtp.acme.test, port: 587, username: credit, password_env: ACME_SMTP}
daemon: {interval_minutes: 30, jitter_seconds: 60}
connections:
  - name: acme-qbo          # the French company
    ledger: quickbooks
    realm_id: 9130
    client_id: ABC
    fee_mode: invoice
  - name: acme-uk
    ledger: xero
    tenant_id: "0f7b2a3c-1d2e-4f5a-8b9c-0d1e2f3a4b5c"
    history_months: 12
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "relance.yaml")
    return caught.value.message.splitlines()


def test_valid_file_and_defaults() -> None:
    config = parse_config(GOOD)
    assert config.state == "sqlite:///relance.sqlite"
    assert config.outbox_dir == "outbox" and config.secrets_dir is None
    assert config.email.model_dump()["from"] == "credit@acme.test"
    assert config.email.smtp is not None and config.email.smtp.password_env == "ACME_SMTP"
    qbo, xero = config.connections
    assert qbo.realm_id == "9130" and qbo.fee_mode == "invoice" and qbo.history_months == 24
    assert xero.account_id == "0f7b2a3c-1d2e-4f5a-8b9c-0d1e2f3a4b5c" and xero.history_months == 12
    assert config.daemon.interval_minutes == 30
    assert parse_config("") == AppConfig()


def test_errors_name_file_line_and_field() -> None:
    text = GOOD.replace("fee_mode: invoice", "fee_mode: letter").replace(
        "history_months: 12", "histroy_months: 12"
    )
    assert problems(text) == [
        "relance.yaml:14: connections[0].fee_mode: expected one of: line, invoice, got 'letter'",
        "relance.yaml:18: connections[1].histroy_months: unknown field 'histroy_months' "
        "(did you mean 'history_months'?)",
    ]
    assert problems("stat: x\n") == ["relance.yaml:1: stat: unknown field 'stat' (did you mean 'state'?)"]
    assert problems("connections:\n  - name: a\n    ledger: sage\n")[0].startswith(
        "relance.yaml:3: connections[0].ledger: expected one of: quickbooks, xero"
    )


def test_yaml_syntax_error_has_a_line() -> None:
    [problem] = problems("state: x\nemail: [unclosed\n")
    assert problem.startswith("relance.yaml:") and "YAML syntax error" in problem


def test_secrets_in_yaml_are_refused() -> None:
    text = GOOD.replace("password_env: ACME_SMTP", "password: hunter2")
    [problem] = problems(text)
    assert problem.startswith("relance.yaml:7: email.smtp:") and "password_env" in problem
    assert "hunter2" not in problem
    text = GOOD.replace("client_id: ABC", "client_id: ABC\n    client_secret: s3cr3t")
    [problem] = problems(text)
    assert problem.startswith("relance.yaml:10: connections[0]:") and "client_secret_env" in problem


def test_ledger_specific_keys_and_unique_names() -> None:
    [problem] = problems(GOOD.replace("realm_id: 9130", "tenant_id: 9130"))
    assert "tenant_id is for xero connections" in problem and problem.startswith("relance.yaml:10:")
    [problem] = problems(GOOD.replace("name: acme-uk", "name: acme-qbo"))
    assert "two connections are named 'acme-qbo'" in problem
    [problem] = problems(GOOD.replace("name: acme-uk", "name: 'acme uk'"))
    assert "must be letters, digits" in problem


def test_env_overrides_win_for_the_whole_process(monkeypatch: pytest.MonkeyPatch) -> None:
    connection = ConnectionConfig(name="a", ledger="xero", base_url="http://127.0.0.1:1/api.xro/2.0/")
    monkeypatch.delenv("RELANCE_XERO_BASE_URL", raising=False)
    assert connection.api_base_url == "http://127.0.0.1:1/api.xro/2.0"
    monkeypatch.setenv("RELANCE_XERO_BASE_URL", "http://127.0.0.1:2/api.xro/2.0")
    assert connection.api_base_url == "http://127.0.0.1:2/api.xro/2.0"
    plain = ConnectionConfig(name="b", ledger="quickbooks")
    monkeypatch.delenv("RELANCE_QUICKBOOKS_BASE_URL", raising=False)
    assert plain.api_base_url == "https://quickbooks.api.intuit.com/v3"


def test_load_reports_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "relance.yaml")


def test_save_keeps_comments_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "relance.yaml"
    path.write_text(GOOD)
    config = load_config(path)
    added = ConnectionConfig(name="new-one", ledger="xero", tenant_id="t-9", client_id="cid")
    save_config(path, upsert_connection(config, added))
    text = path.read_text()
    assert "# relance for Acme" in text and "# the French company" in text and "# next to this file" in text
    reloaded = load_config(path)
    assert [c.name for c in reloaded.connections] == ["acme-qbo", "acme-uk", "new-one"]
    assert reloaded.connection("new-one") == added

    # replacing a connection keeps its position and the other connections untouched
    changed = ConnectionConfig(name="acme-qbo", ledger="quickbooks", realm_id="42", client_id="ABC")
    save_config(path, upsert_connection(reloaded, changed))
    again = load_config(path)
    assert again.connections[0].realm_id == "42" and again.connections[1] == reloaded.connections[1]

    fresh = tmp_path / "sub" / "relance.yaml"
    save_config(fresh, upsert_connection(AppConfig(), added))
    assert load_config(fresh).connections == [added]
