"""The crash harness: SIGKILL `relance sync` at chosen or random points during apply, rerun, count.

Two identical workspaces (same seed, same simulated days) are wired to their own running sandboxes:
- the REFERENCE is synced once per day, never interrupted (its duration sizes the random delays);
- the VICTIM is synced in a subprocess that is killed with SIGKILL, either after a seeded random delay
  or at an injected crash point (RELANCE_CRASHPOINT=<site>:<n>), several times a day; then it is
  rerun until its outbox has nothing planned or in flight.
After the last day the two are compared from the sandboxes' own state (every email, note, fee line,
fee invoice and credit note the ledger recorded), the outbox (.eml files per key), the task list and
the action statuses: duplicates = effects the victim has more of than the reference; lost = effects
(or actions done, emails written, tasks) the reference has and the victim does not.

The tests (tests/e2e/test_crash_random.py, test_concurrency.py) and `python -m bench.crash --kills N`
(the N=20 / N=200 figures) run the same harness.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from policies.model.actions import OPEN_STATUSES, ActionStatus
from tests.support.sandboxes import SandboxWorkspace, build_workspace

START_DAY = date(2026, 3, 2)
SITES = ("after_claim", "after_effect", "mid_batch")
RUN_TIMEOUT = 600.0
DONE_STATUSES = {ActionStatus.DONE, ActionStatus.SUPERSEDED}


def relance_command() -> list[str]:
    script = Path(sys.executable).parent / "relance"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from sync.cli import cli; cli()"]


# ---------------------------------------------------------------- running relance


@dataclass
class RunResult:
    killed: bool
    returncode: int
    seconds: float
    how: str
    stderr: str = ""
    report: dict[str, Any] | None = None


def sync_process(
    config: Path, day: date, *, crashpoint: str | None = None, connection: str | None = None
) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "RELANCE_CRASHPOINT"}
    if crashpoint:
        env["RELANCE_CRASHPOINT"] = crashpoint
    only = ["--connection", connection] if connection else []
    return subprocess.Popen(
        [*relance_command(), "sync", "--config", str(config), "--today", day.isoformat(), "--json", *only],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=config.parent,
    )


def run_sync(
    config: Path,
    day: date,
    *,
    delay: float | None = None,
    crashpoint: str | None = None,
    connection: str | None = None,
) -> RunResult:
    """One `relance sync`; killed with SIGKILL after `delay` seconds if still running."""
    started = time.perf_counter()
    process = sync_process(config, day, crashpoint=crashpoint, connection=connection)
    how = "clean" if delay is None else f"delay {delay:.2f}s"
    if crashpoint:
        how = f"crashpoint {crashpoint}"
    try:
        if delay is not None:
            try:
                process.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
        stdout, stderr = process.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
    seconds = time.perf_counter() - started
    report = None
    if stdout.strip():
        try:
            report = json.loads(stdout)
        except json.JSONDecodeError:
            report = None
    return RunResult(process.returncode == -signal.SIGKILL, process.returncode, seconds, how, stderr, report)


# ---------------------------------------------------------------- observing a workspace


def effect_identity(connection: str, effect: Any) -> tuple[str, ...]:
    """What one effect is, independent of ids the ledger assigned and of batch composition.

    A fee invoice is identified by the invoice it charges (its reference) and amount, since the
    ledger gives it a new id; everything else by the invoice it touched (and amount for fees)."""
    amount = "" if effect.amount is None else str(effect.amount)
    if effect.kind == "fee_invoice":
        target = effect.detail or effect.invoice_id
        if "(ref " in target:  # QBO fee invoices carry the action key in their private note
            target = target[target.index("(ref ") :]
        return (connection, effect.kind, target, amount)
    return (connection, effect.kind, effect.invoice_id, amount)


@dataclass
class Observation:
    effects: Counter[tuple[str, ...]] = field(default_factory=Counter)
    keyed_effects: Counter[tuple[str, ...]] = field(default_factory=Counter)  # (conn, kind, key)
    statuses: dict[str, ActionStatus] = field(default_factory=dict)  # action key -> status
    kinds: dict[str, str] = field(default_factory=dict)  # action key -> kind/channel
    emails: set[str] = field(default_factory=set)  # .eml file names
    tasks: Counter[str] = field(default_factory=Counter)  # task keys

    def open_actions(self) -> list[str]:
        unsettled = (*OPEN_STATUSES, ActionStatus.IN_FLIGHT)
        return [key for key, status in self.statuses.items() if status in unsettled]


def observe(built: SandboxWorkspace) -> Observation:
    seen = Observation()
    for name, sandbox in built.sandboxes.items():
        for effect in sandbox.effects():
            seen.effects[effect_identity(name, effect)] += 1
            if effect.idempotency_key and not effect.idempotency_key.startswith("relance-batch-"):
                seen.keyed_effects[(name, effect.kind, effect.idempotency_key)] += 1
    ws = built.open()
    try:
        store = ws.store
        for name in built.sandboxes:
            for record in store.outbox.actions(name):
                seen.statuses[record.key] = record.status
                seen.kinds[record.key] = f"{record.kind}/{record.channel or '-'}"
            for task in store.tasks.records(name):
                seen.tasks[str(getattr(task, "key", None) or task.id)] += 1
        emails_dir = Path(ws.email_settings()["file_dir"])
        if emails_dir.is_dir():
            seen.emails = {path.name for path in emails_dir.glob("*.eml")}
    finally:
        ws.store.close()
    return seen


def compare(reference: Observation, victim: Observation) -> dict[str, Any]:
    duplicate_effects = {
        k: victim.effects[k] - n for k, n in reference.effects.items() if victim.effects[k] > n
    }
    duplicate_effects.update({k: n for k, n in victim.effects.items() if k not in reference.effects})
    lost_effects = {k: n - victim.effects[k] for k, n in reference.effects.items() if victim.effects[k] < n}
    # Keyed effects (QBO requestid / bId, Xero Idempotency-Key) seen more than once in the victim.
    repeated_keys = {
        k: n for k, n in victim.keyed_effects.items() if n > 1 and reference.keyed_effects[k] < n
    }
    done_in_reference = {k for k, s in reference.statuses.items() if s == ActionStatus.DONE}
    uncertain = sorted(k for k, s in victim.statuses.items() if s == ActionStatus.UNCERTAIN)
    lost_actions = sorted(
        k
        for k in done_in_reference
        if victim.statuses.get(k) not in (ActionStatus.DONE, ActionStatus.UNCERTAIN)
    )
    extra_actions = sorted(
        k for k, s in victim.statuses.items() if s == ActionStatus.DONE and k not in done_in_reference
    )
    lost_emails = sorted(reference.emails - victim.emails)
    extra_emails = sorted(victim.emails - reference.emails)
    lost_tasks = sorted(set(reference.tasks) - set(victim.tasks))
    duplicate_tasks = sorted(k for k, n in victim.tasks.items() if n > 1)
    duplicates = sum(duplicate_effects.values()) + len(extra_emails) + len(duplicate_tasks)
    lost = sum(lost_effects.values()) + len(lost_actions) + len(lost_emails) + len(lost_tasks)
    return {
        "duplicates": duplicates,
        "lost": lost,
        "uncertain": len(uncertain),
        "uncertain_actions": [{"key": k, "kind": victim.kinds.get(k)} for k in uncertain],
        "open_actions": len(victim.open_actions()),
        "repeated_idempotency_keys": len(repeated_keys),
        "extra_actions_done": len(extra_actions),
        "details": {
            "duplicate_effects": [[*list(k), n] for k, n in sorted(duplicate_effects.items())][:20],
            "lost_effects": [[*list(k), n] for k, n in sorted(lost_effects.items())][:20],
            "lost_actions": [{"key": k, "kind": reference.kinds.get(k), "status": victim.statuses.get(k)}
                             for k in lost_actions][:20],
            "repeated_keys": [[*list(k), n] for k, n in sorted(repeated_keys.items())][:20],
            "lost_emails": lost_emails[:20],
            "extra_emails": extra_emails[:20],
            "lost_tasks": lost_tasks[:20],
            "duplicate_tasks": duplicate_tasks[:20],
        },
    }


# ---------------------------------------------------------------- the harness


@contextmanager
def twin_workspaces(
    root: Path, *, seed: int, ledgers: Sequence[str], customers: int, invoices: int, day: date,
    state_urls: tuple[str | None, str | None] = (None, None),
) -> Iterator[tuple[SandboxWorkspace, SandboxWorkspace]]:
    built: list[SandboxWorkspace] = []
    # Both twins hold the same organisation ids, so their ledgers' records compare id for id.
    twin_ids = {"quickbooks": str(uuid.uuid4().int)[:16], "xero": str(uuid.uuid4())}
    try:
        for name, url in zip(("reference", "victim"), state_urls, strict=True):
            built.append(build_workspace(
                root / name, today=day, ledgers=tuple(ledgers), customers=customers, invoices=invoices,
                seed=seed, state_url=url, account_ids=twin_ids,
            ))
        yield built[0], built[1]
    finally:
        for workspace in built:
            workspace.stop()


def finish(config: Path, day: date, *, attempts: int = 4) -> list[RunResult]:
    """Clean reruns until the outbox has nothing planned or in flight (or attempts run out)."""
    runs = []
    for _ in range(attempts):
        run = run_sync(config, day)
        runs.append(run)
        if run.report is not None and not _has_open_work(run.report):
            break
    return runs


def _has_open_work(report: dict[str, Any]) -> bool:
    # A clean run that applied nothing new and settled nothing: the outbox is quiet.
    return any(c.get("applied") or c.get("settled") for c in report.get("connections", []))


def crash_figures(
    kills: int,
    *,
    seed: int = 0,
    ledgers: Sequence[str] = ("quickbooks", "xero"),
    state_url: str | None = None,
    customers: int = 40,
    invoices: int = 400,
    kills_per_day: int = 4,
    start: date = START_DAY,
    root: Path | None = None,
    log: Any = None,
) -> dict[str, Any]:
    """Kill `kills` syncs with SIGKILL (seeded), finish, and compare with an uninterrupted twin.

    `state_url`: the victim's state (e.g. a fresh PostgreSQL database); the reference always uses
    SQLite. Kills are spread over consecutive simulated days, `kills_per_day` each, so that every
    kill lands in a run with work to do."""
    rng = random.Random(seed)
    say = log or (lambda message: print(message, file=sys.stderr, flush=True))
    with tempfile.TemporaryDirectory(prefix="relance-crash-") as scratch:
        base = root or Path(scratch)
        with twin_workspaces(
            base, seed=seed + 11, ledgers=ledgers, customers=customers, invoices=invoices, day=start,
            state_urls=(None, state_url),
        ) as (reference, victim):
            return _campaign(reference, victim, kills, kills_per_day, start, rng, say)


def _campaign(
    reference: SandboxWorkspace, victim: SandboxWorkspace, kills: int, kills_per_day: int, start: date,
    rng: random.Random, say: Any,
) -> dict[str, Any]:
    done_kills = 0
    attempts = 0
    by_mode: Counter[str] = Counter()
    days = 0
    reference_applied = 0
    reference_seconds: list[float] = []
    errors: list[str] = []
    day = start
    while done_kills < kills:
        reference.set_today(day)
        victim.set_today(day)
        ref = run_sync(reference.config_path, day)
        reference_seconds.append(ref.seconds)
        applied = sum(c.get("applied", 0) for c in (ref.report or {}).get("connections", []))
        reference_applied += applied
        if ref.report is None:
            errors.append(f"{day}: reference run failed ({ref.returncode}): {ref.stderr.strip()[-300:]}")
        today_kills = 0
        while today_kills < kills_per_day and done_kills < kills and applied:
            attempts += 1
            # Each kill leaves less to do: aim at the part still to come.
            shrink = 2**today_kills
            if rng.random() < 0.5:
                site = rng.choice(SITES)
                count = rng.randint(1, max(1, applied // (3 if site == "after_effect" else 1) // shrink))
                run = run_sync(victim.config_path, day, crashpoint=f"{site}:{count}")
                mode = f"crashpoint:{site}"
            else:
                startup = min(reference_seconds)  # imports + pulls: the floor of any run
                delay = startup * 0.5 + rng.uniform(0.0, 1.0) * max(0.1, ref.seconds - startup * 0.5) / shrink
                run = run_sync(victim.config_path, day, delay=delay)
                mode = "delay"
            if not run.killed:
                if run.returncode not in (0, 3):
                    errors.append(f"{day}: victim run exited {run.returncode}: {run.stderr.strip()[-300:]}")
                break  # the day's work completed before the kill point: nothing left to interrupt
            done_kills += 1
            today_kills += 1
            by_mode[mode] += 1
        for run in finish(victim.config_path, day):
            if run.returncode not in (0, 3) or run.killed:
                errors.append(f"{day}: finishing run exited {run.returncode}: {run.stderr.strip()[-300:]}")
        days += 1
        say(f"  day {day}: {applied} actions in the reference, {today_kills} kills ({done_kills}/{kills})")
        if not applied and days > 60:
            errors.append("no more work to interrupt after 60 days")
            break
        day += timedelta(days=1)
    result = compare(observe(reference), observe(victim))
    return {
        "kills": done_kills,
        "duplicates": result["duplicates"],
        "lost": result["lost"],
        "uncertain": result["uncertain"],
        "uncertain_actions": result["uncertain_actions"],
        "open_actions": result["open_actions"],
        "repeated_idempotency_keys": result["repeated_idempotency_keys"],
        "extra_actions_done": result["extra_actions_done"],
        "kill_attempts": attempts,
        "kills_by_mode": dict(sorted(by_mode.items())),
        "days": days,
        "reference_actions": reference_applied,
        "effects_in_reference": sum(observe(reference).effects.values()),
        "reference_run_seconds_max": round(max(reference_seconds, default=0.0), 2),
        "errors": errors[:20],
        "details": result["details"],
    }
