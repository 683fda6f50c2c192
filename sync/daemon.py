"""`relance daemon`: run the sync on a schedule until told to stop.

Interval or cron schedule (croniter) plus random jitter so many installations do not hit the
ledgers at the same second; SIGTERM/SIGINT finish the action in hand and exit; structured JSON
logs on stderr; a health file rewritten after every cycle (for a container probe or monitoring).
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from connectors.files import write_atomic
from policies.model.errors import RelanceError
from sync.engine import run_sync
from sync.errors import ConfigError
from sync.run_report import RunOptions, exit_code
from sync.workspace import Workspace

log = logging.getLogger("relance.daemon")


class JsonFormatter(logging.Formatter):
    """One JSON object per line; secrets are never passed to loggers in the first place."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        extra = getattr(record, "data", None)
        if isinstance(extra, dict):
            payload.update(extra)
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def configure_json_logging(level: int = logging.INFO) -> Callable[[], None]:
    """Every log line on stderr is one JSON object: relance's own at `level`, libraries' (urllib3
    retries, Python warnings) at WARNING and above, so a log shipper never meets plain text.

    Returns a function that puts the previous logging setup back (for in-process callers)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    relance = logging.getLogger("relance")
    saved = (root.handlers[:], root.level, relance.handlers[:], relance.level, relance.propagate)
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    relance.handlers.clear()
    relance.setLevel(level)
    relance.propagate = True
    logging.captureWarnings(True)

    def restore() -> None:
        root.handlers[:], root.level, relance.handlers[:], relance.level, relance.propagate = saved
        logging.captureWarnings(False)

    return restore


@dataclass(frozen=True)
class Schedule:
    interval: timedelta | None = None
    cron: str | None = None
    jitter_seconds: float = 0.0

    def __post_init__(self) -> None:
        if (self.interval is None) == (self.cron is None):
            raise ConfigError(
                "daemon: set exactly one of interval_minutes or cron", hint="e.g. interval_minutes: 60"
            )
        if self.cron is not None:
            from croniter import croniter

            if not croniter.is_valid(self.cron):
                raise ConfigError(
                    f"daemon.cron: '{self.cron}' is not a valid cron expression",
                    hint="five fields, e.g. '0 8-18 * * 1-5'",
                )

    def next_run(self, after: datetime, rng: random.Random) -> datetime:
        if self.cron is not None:
            from croniter import croniter

            base = croniter(self.cron, after).get_next(datetime)
        else:
            assert self.interval is not None
            base = after + self.interval
        return base + timedelta(seconds=rng.uniform(0, self.jitter_seconds))


class StopFlag:
    """Set by SIGTERM/SIGINT; checked between actions so the one in hand completes."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self, *_: object) -> None:
        self._event.set()

    def __call__(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        return self._event.wait(max(seconds, 0))

    def install(self) -> None:
        """Handle SIGTERM/SIGINT (main thread only); `restore()` puts the previous handlers back."""
        self._previous = {sig: signal.signal(sig, self.set) for sig in (signal.SIGTERM, signal.SIGINT)}

    def restore(self) -> None:
        for sig, handler in getattr(self, "_previous", {}).items():
            signal.signal(sig, handler)
        self._previous = {}


def write_health(path: Path, payload: dict[str, Any]) -> None:
    """Readable by a probe or a monitor (it holds no secret)."""
    write_atomic(path, json.dumps(payload, indent=2, default=str), mode=0o644)


def run_daemon(
    config_path: str | Path | None,
    *,
    schedule: Schedule | None = None,
    health_file: Path | None = None,
    once: bool = False,
    today: date | None = None,
    stop: StopFlag | None = None,
    cycles: int | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    """Loop: sync every connection, write health, sleep until the next slot. Returns an exit code.
    `clock` is the one clock of the whole run: the schedule, the health file, the send window and
    the company's today read it."""
    ws = Workspace.open(config_path, clock=clock)
    settings = ws.config.daemon
    if schedule is None:
        interval = timedelta(minutes=settings.interval_minutes) if settings.interval_minutes else None
        schedule = Schedule(
            interval=interval if not settings.cron else None,
            cron=settings.cron,
            jitter_seconds=settings.jitter_seconds,
        )
    health = health_file or (
        ws.resolve(settings.health_file) if settings.health_file else ws.root / "relance-health.json"
    )
    stop = stop or StopFlag()
    rng = random.Random()
    done_cycles = 0
    code = 0
    last_health: dict[str, Any] | None = None
    log.info("daemon started", extra={"data": {"config": str(ws.config_path), "pid": os.getpid()}})
    while not stop():
        started = clock()
        log.info("cycle started", extra={"data": {"cycle": done_cycles + 1}})
        failure: str | None = None
        runs: list[Any] = []
        try:
            runs = run_sync(ws, RunOptions(today=today, should_stop=stop, respect_send_window=True))
            code = exit_code(runs)
        except Exception as error:  # the state store or the config broke mid-run: report, keep serving
            failure = str(error) if isinstance(error, RelanceError) else f"{type(error).__name__}: {error}"
            log.error(
                "cycle failed",
                exc_info=not isinstance(error, RelanceError),
                extra={"data": {"error": failure}},
            )
            code = 1
        for run in runs:
            level = logging.INFO if run.ok else logging.ERROR
            log.log(level, "connection synced", extra={"data": {"connection": run.name, **run.to_json()}})
        done_cycles += 1
        next_at = schedule.next_run(clock(), rng)
        last_health = {
            "status": "ok" if code == 0 else ("partial" if code == 3 else "error"),
            "pid": os.getpid(),
            "cycles": done_cycles,
            "last_run_started": started.isoformat(),
            "last_run_finished": clock().isoformat(),
            "next_run": None if once or stop() else next_at.isoformat(),
            "error": failure,
            "connections": {
                run.name: {"ok": run.ok, "applied": run.applied, "errors": run.errors[:5]} for run in runs
            },
        }
        write_health(health, last_health)
        if once or (cycles is not None and done_cycles >= cycles):
            break
        stop.wait((next_at - clock()).total_seconds())
    if stop() and last_health is not None and last_health["next_run"] is not None:
        # Stopped by a signal after the cycle's health was written: no next run will happen.
        write_health(health, {**last_health, "next_run": None, "stopped": True})
    log.info("daemon stopped", extra={"data": {"cycles": done_cycles}})
    return code
