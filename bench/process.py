"""This process's memory, and bench runs in fresh processes.

Peak RSS is the high-water mark of the whole process (resource.getrusage ru_maxrss): to get one
figure per ledger size, each size runs in a fresh `python -m bench.<module> ...` process, and the
sandbox serving that size runs in yet another process, so the figure measures relance alone.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def peak_rss_mb() -> float:
    """This process's peak resident set size in MB (Linux reports KB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024, 1)


def current_rss_mb() -> float | None:
    """Resident set size now (Linux /proc only), to show memory flat between pages."""
    try:
        with open(f"/proc/{os.getpid()}/statm", encoding="ascii") as handle:
            pages = int(handle.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return round(pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024), 1)


class BenchChildFailed(RuntimeError):
    """A bench subprocess exited non-zero or printed no JSON."""


def run_json_module(module: str, args: list[str], *, timeout: float) -> dict[str, Any]:
    """Run `python -m module args` in a fresh process; its last stdout line is one JSON object."""
    command = [sys.executable, "-m", module, *args]
    completed = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
    )
    lines = [line for line in completed.stdout.splitlines() if line.strip()]
    if completed.returncode != 0 or not lines:
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-15:]
        raise BenchChildFailed(f"{' '.join(command[1:])} exited {completed.returncode}:\n" + "\n".join(tail))
    result: dict[str, Any] = json.loads(lines[-1])
    return result
