"""Operator commands end to end through the CLI (click's CliRunner on sync.cli.cli) against a real
workspace wired to running QuickBooks / Xero sandboxes: init, sync, plan, apply, history, dispute,
pause, payment-plan, tasks, resolve, report aging, reconcile."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from policies.model.actions import ActionKind, ActionStatus, PlannedAction, TaskStatus
from sync.cli import cli
from sync.errors import ConfigError
from sync.reports import BUCKETS
from tests.support.sandboxes import SandboxWorkspace, build_workspace

TODAY = date(2026, 3, 2)
EFFECT_KINDS = ("reminder", "fee", "task", "agency", "note")


@pytest.fixture
def qbo(tmp_path: Path) -> Iterator[SandboxWorkspace]:
    built = build_workspace(tmp_path / "ws", today=TODAY, ledgers=("quickbooks",), customers=12, invoices=70)
    try:
        yield built
    finally:
        built.stop()


@pytest.fixture
def both(tmp_path: Path) -> Iterator[SandboxWorkspace]:
    built = build_workspace(tmp_path / "ws", today=TODAY, customers=10, invoices=60)
    try:
        yield built
    finally:
        built.stop()


def invoke(sw: SandboxWorkspace, *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(cli, [*args, "--config", str(sw.config_path)])
    assert result.exit_code == code, (result.output, result.exception)
    return result


def run_json(sw: SandboxWorkspace, *args: str) -> Any:
    return json.loads(invoke(sw, *args, "--json").output)


def effect_actions(sw: SandboxWorkspace, **filters: Any) -> list[Any]:
    store = sw.open().store
    return [
        record
        for record in store.outbox.actions(**filters)
        if record.kind in EFFECT_KINDS and record.status not in ("superseded", "planned")
    ]


def planned_today(sw: SandboxWorkspace, connection: str = "test-quickbooks") -> list[dict[str, Any]]:
    """What a sync would do today (pulled, nothing recorded)."""
    plans = run_json(sw, "plan", "--today", TODAY.isoformat(), "--connection", connection)
    return [a for a in plans[connection]["actions"] if a["kind"] in ("reminder", "fee")]


# ---------------------------------------------------------------- init


def test_init_writes_loadable_files_and_refuses_to_overwrite(tmp_path: Path) -> None:
    from sync.config import load_config
    from tests.support.rules import load_policy

    runner = CliRunner()
    first = runner.invoke(cli, ["init", "--dir", str(tmp_path), "--example", "uk-b2b"])
    assert first.exit_code == 0, first.output
    config, policy = tmp_path / "relance.yaml", tmp_path / "policy.yaml"
    assert f"wrote {config}" in first.output and f"wrote {policy}" in first.output
    assert load_config(config).policy == "policy.yaml"
    assert load_policy(policy).company.currency == "GBP"

    config.write_text(config.read_text() + "# my edit\n")
    again = runner.invoke(cli, ["init", "--dir", str(tmp_path)])
    assert again.exit_code == 1
    assert isinstance(again.exception, ConfigError)
    assert "already exist" in str(again.exception) and "--force" in (again.exception.hint or "")
    assert config.read_text().endswith("# my edit\n")  # untouched

    forced = runner.invoke(cli, ["init", "--dir", str(tmp_path), "--force"])
    assert forced.exit_code == 0, forced.output
    assert "# my edit" not in config.read_text()
    assert load_policy(policy).company.currency == "EUR"  # the fr-b2b default example


# ---------------------------------------------------------------- sync, dry run, plan, apply


def test_sync_json_shape_and_effects(both: SandboxWorkspace) -> None:
    report = run_json(both, "sync", "--today", TODAY.isoformat())
    runs = {run["name"]: run for run in report["connections"]}
    assert set(runs) == {"test-quickbooks", "test-xero"}
    for name, run in runs.items():
        assert run["ledger"] == name.removeprefix("test-")
        assert set(run["pulled"]) >= {"customers", "invoices", "payments"}
        assert run["pulled"]["customers"] == 10 and run["pulled"]["invoices"] == 60
        assert run["errors"] == []
        assert run["planned"] > 0 and run["applied"] == run["planned"]
        store = both.open().store
        assert len(store.outbox.actions(name, status=ActionStatus.DONE)) == run["applied"]
    # A second sync the same day has nothing new to do.
    again = run_json(both, "sync", "--today", TODAY.isoformat())
    assert [run["applied"] for run in again["connections"]] == [0, 0]


def test_dry_run_records_and_applies_nothing(both: SandboxWorkspace) -> None:
    report = run_json(both, "sync", "--dry-run", "--today", TODAY.isoformat())
    assert all(run["planned"] > 0 and run["applied"] == 0 for run in report["connections"])
    store = both.open().store
    assert store.outbox.actions() == []
    assert store.tasks.records() == []
    for sandbox in both.sandboxes.values():
        assert sandbox.effects() == []
    assert not (both.root / "outbox").exists() or not any((both.root / "outbox").rglob("*.*"))
    # The pull itself was stored: the plan can be read offline afterwards.
    plans = run_json(both, "plan", "--no-pull", "--today", TODAY.isoformat())
    assert {len(plans[name]["actions"]) for name in plans} != {0}


def test_plan_then_apply(qbo: SandboxWorkspace) -> None:
    plans = run_json(qbo, "plan", "--today", TODAY.isoformat())
    actions = plans["test-quickbooks"]["actions"]
    assert actions and all(a["reason"] for a in actions)
    store = qbo.open().store
    assert store.outbox.actions() == []  # plan records nothing
    table = invoke(qbo, "plan", "--no-pull", "--today", TODAY.isoformat())
    assert f"{len(actions)} action(s)" in table.output

    applied = run_json(qbo, "apply", "--today", TODAY.isoformat())["connections"][0]
    assert applied["applied"] == len(actions)
    done = {r.key for r in store.outbox.actions("test-quickbooks", status=ActionStatus.DONE)}
    assert {a["key"] for a in actions} <= done


# ---------------------------------------------------------------- history, dispute, pause, payment plan


def test_history_by_invoice_number(qbo: SandboxWorkspace) -> None:
    invoke(qbo, "sync", "--today", TODAY.isoformat())
    store = qbo.open().store
    record = next(
        r for r in store.outbox.actions("test-quickbooks", status=ActionStatus.DONE) if r.kind == "fee"
    )
    invoice = store.ledger.invoice("test-quickbooks", record.invoice_ids[0])
    assert invoice is not None
    payload = run_json(qbo, "history", invoice.number)
    keys = {entry["key"] for entry in payload["history"]}
    assert record.key in keys
    fee = next(entry for entry in payload["history"] if entry["key"] == record.key)
    assert fee["status"] == "done" and fee["kind"] == "fee" and fee["charges"]
    text = invoke(qbo, "history", invoice.id).output  # by ledger id too
    assert "fee" in text and "done" in text


def test_dispute_stops_chasing_and_clear_resumes(qbo: SandboxWorkspace) -> None:
    invoke(qbo, "sync", "--dry-run", "--today", TODAY.isoformat())
    target = planned_today(qbo)[0]
    invoice_id = target["invoice_ids"][0]
    store = qbo.open().store
    disputed = store.ledger.invoice("test-quickbooks", invoice_id)
    assert disputed is not None
    number = disputed.number

    out = invoke(qbo, "dispute", number, "--until", "2026-06-30", "--reason", "goods damaged").output
    assert number in out and "2026-06-30" in out
    invoke(qbo, "sync", "--today", TODAY.isoformat())
    assert effect_actions(qbo, invoice_id=invoice_id) == []
    assert effect_actions(qbo)  # the others were chased

    history = run_json(qbo, "history", number)["history"]
    assert any(e["kind"] == "dispute" and e["reason"] == "goods damaged" for e in history)

    assert "cleared" in invoke(qbo, "dispute", number, "--clear").output
    invoke(qbo, "sync", "--today", TODAY.isoformat())
    assert effect_actions(qbo, invoice_id=invoice_id)
    assert "no open dispute" in invoke(qbo, "dispute", number, "--clear").output


def test_pause_customer(qbo: SandboxWorkspace) -> None:
    invoke(qbo, "sync", "--dry-run", "--today", TODAY.isoformat())
    customer_id = planned_today(qbo)[0]["customer_id"]
    out = invoke(qbo, "pause", customer_id, "--until", (TODAY + timedelta(days=30)).isoformat()).output
    assert "paused until 2026-04-01" in out
    invoke(qbo, "sync", "--today", TODAY.isoformat())
    chased = {r.customer_id for r in effect_actions(qbo)}
    assert chased and customer_id not in chased
    # By exact name as well (case-insensitive).
    paused = qbo.open().store.ledger.customer("test-quickbooks", customer_id)
    assert paused is not None
    name = paused.name
    assert customer_id in invoke(qbo, "pause", name.upper(), "--until", "2026-05-01").output


def test_payment_plan_pauses_the_ladder(qbo: SandboxWorkspace) -> None:
    invoke(qbo, "sync", "--dry-run", "--today", TODAY.isoformat())
    target = planned_today(qbo)[0]
    customer_id = target["customer_id"]
    store = qbo.open().store
    snapshot = store.ledger.snapshot("test-quickbooks")
    invoices = [inv for inv in snapshot.invoices.values() if inv.customer_id == customer_id and inv.is_open]
    balance = sum((inv.balance.amount for inv in invoices), Decimal(0))
    first = (balance / 2).quantize(Decimal("0.01"))
    args = ["payment-plan", customer_id]
    for inv in invoices:
        args += ["--invoice", inv.number]
    args += ["--instalment", f"{TODAY + timedelta(days=20)}:{first}"]
    args += ["--instalment", f"{TODAY + timedelta(days=50)}:{balance - first}"]

    out = invoke(qbo, *args).output
    assert "2 instalments" in out and f"{len(invoices)} invoice(s)" in out
    assert "already exists" in invoke(qbo, *args).output  # same plan twice: no duplicate
    assert len(store.cases.payment_plans("test-quickbooks")) == 1

    wrong = [*args[:-1], f"{TODAY + timedelta(days=50)}:1.00"]
    result = CliRunner().invoke(cli, [*wrong, "--config", str(qbo.config_path)])
    assert result.exit_code == 1 and "add up to" in str(result.exception)

    invoke(qbo, "sync", "--today", TODAY.isoformat())
    covered = {inv.id for inv in invoices}
    chased = {i for r in effect_actions(qbo) if r.kind in ("reminder", "fee") for i in r.invoice_ids}
    assert chased and not (chased & covered)


# ---------------------------------------------------------------- tasks and resolve


def test_tasks_list_and_done(both: SandboxWorkspace) -> None:
    invoke(both, "sync", "--today", TODAY.isoformat())
    tasks = run_json(both, "tasks")["tasks"]
    assert tasks and all(t["status"] == "open" for t in tasks)
    assert {t["connection"] for t in tasks} <= {"test-quickbooks", "test-xero"}
    store = both.open().store
    assert len(tasks) == len(store.tasks.records(status=TaskStatus.OPEN))

    first = tasks[0]
    text = invoke(both, "tasks").output
    assert first["key"][:12] in text
    out = invoke(both, "tasks", "--done", first["key"][:12]).output  # the short key the table shows
    assert first["key"] in out
    remaining = run_json(both, "tasks")["tasks"]
    assert first["key"] not in {t["key"] for t in remaining}
    everything = run_json(both, "tasks", "--all")["tasks"]
    assert next(t for t in everything if t["key"] == first["key"])["status"] == "done"


def make_uncertain(sw: SandboxWorkspace, connection: str = "test-quickbooks") -> str:
    store = sw.open().store
    invoice = next(inv for inv in store.ledger.snapshot(connection).invoices.values() if inv.is_open)
    action = PlannedAction(
        key="f00dfeed" * 4,
        kind=ActionKind.REMINDER,
        customer_id=invoice.customer_id,
        currency=invoice.currency,
        invoice_ids=(invoice.id,),
        reason="crafted by the test",
        step="late-email",
        channel="ledger_email",
        due_on=TODAY,
    )
    store.outbox.record_planned(connection, [action])
    assert store.outbox.claim(action.key)
    assert store.outbox.mark_uncertain(action.key, "connection dropped during the invoice send")
    return action.key


def test_resolve_uncertain(qbo: SandboxWorkspace) -> None:
    invoke(qbo, "sync", "--dry-run", "--today", TODAY.isoformat())
    key = make_uncertain(qbo)
    store = qbo.open().store

    usage = CliRunner().invoke(cli, ["resolve", key, "--config", str(qbo.config_path)])
    assert usage.exit_code == 2 and "--sent or --not-sent" in usage.output

    assert "marked done" in invoke(qbo, "resolve", key[:10], "--sent").output  # a unique prefix is enough
    record = store.outbox.action(key)
    assert record is not None
    assert record.status == "done" and record.outcome["resolved"] == "happened"
    assert any(e.event == "action_resolved" for e in store.audit.entries("test-quickbooks"))

    again = CliRunner().invoke(cli, ["resolve", key, "--sent", "--config", str(qbo.config_path)])
    assert again.exit_code == 1 and "not uncertain" in str(again.exception)

    other = make_uncertain_other(qbo)
    assert "applied again" in invoke(qbo, "resolve", other, "--not-sent").output
    resolved = store.outbox.action(other)
    assert resolved is not None and resolved.status == "planned"


def make_uncertain_other(sw: SandboxWorkspace) -> str:
    store = sw.open().store
    record = store.outbox.action("f00dfeed" * 4)
    assert record is not None
    action = PlannedAction(
        key="0badc0de" * 4,
        kind=ActionKind.REMINDER,
        customer_id=record.customer_id,
        currency=record.currency,
        invoice_ids=record.invoice_ids,
        reason="crafted by the test",
        step="owner",
        channel="email",
    )
    store.outbox.record_planned("test-quickbooks", [action])
    store.outbox.claim(action.key)
    store.outbox.mark_uncertain(action.key, "SMTP connection dropped")
    return action.key


# ---------------------------------------------------------------- report aging


def test_report_aging_formats(both: SandboxWorkspace) -> None:
    invoke(both, "sync", "--dry-run", "--today", TODAY.isoformat())
    store = both.open().store
    payload = run_json(both, "report", "aging", "--today", TODAY.isoformat())["connections"]
    assert set(payload) == {"test-quickbooks", "test-xero"}
    for name, report in payload.items():
        snapshot = store.ledger.snapshot(name)
        open_invoices = [inv for inv in snapshot.invoices.values() if inv.is_open]
        assert report["as_of"] == TODAY.isoformat()
        assert [row["bucket"] for row in report["buckets"]] == [b[0] for b in BUCKETS]
        assert sum(row["invoices"] for row in report["buckets"]) == len(open_invoices)
        total = sum(Decimal(row["balance"]) for row in report["buckets"])
        assert total == sum((inv.balance.amount for inv in open_invoices), Decimal(0))
        for row in report["buckets"]:
            expected, balance = Decimal(row["expected_recovery"]), Decimal(row["balance"])
            assert expected <= balance
            if row["bucket"] == "not due":
                assert expected == balance
        late = [row for row in report["buckets"] if row["bucket"] != "not due" and row["invoices"]]
        assert any(Decimal(row["expected_recovery"]) < Decimal(row["balance"]) for row in late)
        (currency,) = {inv.currency for inv in open_invoices}
        assert Decimal(report["dso_days"][currency]) > 0
        plan = run_json(both, "plan", "--no-pull", "--today", TODAY.isoformat(), "--connection", name)
        breaches = {b["customer_id"] for b in plan[name]["credit"]}
        assert {b["customer_id"] for b in report["credit_limit_breaches"]} == breaches
    assert any(report["credit_limit_breaches"] for report in payload.values())

    rows = list(
        csv.DictReader(
            io.StringIO(
                invoke(both, "report", "aging", "--format", "csv", "--today", TODAY.isoformat()).output
            )
        )
    )
    assert len(rows) == 2 * len(BUCKETS)
    assert rows[0].keys() == {"connection", "currency", "bucket", "invoices", "balance", "expected_recovery"}
    by_key = {(r["connection"], r["bucket"]): r for r in rows}
    for name, report in payload.items():
        for row in report["buckets"]:
            assert by_key[(name, row["bucket"])]["balance"] == row["balance"]

    table = invoke(both, "report", "aging", "--format", "table", "--today", TODAY.isoformat()).output
    assert "test-quickbooks" in table and "expected recovery" in table and "DSO:" in table


# ---------------------------------------------------------------- reconcile


@pytest.mark.parametrize("ledger", ["quickbooks", "xero"])
def test_reconcile_finds_fee_in_grace_and_uncertain(tmp_path: Path, ledger: str) -> None:
    sw = build_workspace(tmp_path / "ws", today=TODAY, ledgers=(ledger,), customers=12, invoices=70)
    name = f"test-{ledger}"
    try:
        invoke(sw, "sync", "--today", TODAY.isoformat())
        assert run_json(sw, "reconcile", "--today", TODAY.isoformat()) == {"findings": []}
        store = sw.open().store
        fee = next(r for r in store.outbox.actions(name, status=ActionStatus.DONE) if r.kind == "fee")
        invoice = store.ledger.invoice(name, fee.invoice_ids[0])
        assert invoice is not None
        charged = sum((c.amount.amount for c in fee.charges), Decimal(0))
        on_invoice = invoice.id in fee.ledger_ids  # QuickBooks: a line on the invoice itself
        assert on_invoice == (ledger == "quickbooks")
        principal = invoice.balance.amount - (charged if on_invoice else 0)
        # The customer had paid on the due date; the payment is keyed in the ledger only now.
        sw.sandboxes[name].add_payment(invoice.id, principal, invoice.due_date)
        key = make_uncertain(sw, name)

        findings = run_json(sw, "reconcile", "--today", TODAY.isoformat())["findings"]
        in_grace = [f for f in findings if f["kind"] == "fee_in_grace"]
        assert [f["action_key"] for f in in_grace] == [fee.key]
        assert in_grace[0]["invoice_id"] == invoice.id
        assert Decimal(in_grace[0]["amount"]) == charged
        assert "credit note" in in_grace[0]["proposal"]
        uncertain = [f for f in findings if f["kind"] == "uncertain"]
        assert [f["action_key"] for f in uncertain] == [key]
        assert f"relance resolve {key}" in uncertain[0]["proposal"]

        text = invoke(sw, "reconcile", "--no-pull", "--today", TODAY.isoformat()).output
        assert "fee_in_grace:" in text and "proposed:" in text
    finally:
        sw.stop()
