"""Crash safety at scale: SIGKILL `relance sync` at random points during apply, rerun, count.

`python -m bench.crash --kills N [--json]`: N=200 is the --full figure, 20 the CI one. The harness
(twin workspaces, kills at crash points or after seeded random delays, reruns, the comparison with an
uninterrupted twin) is tests/support/crash.py, which the crash tests run at small sizes; this module
runs its campaign at bench sizes and prints the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from tests.support.crash import crash_figures

__all__ = ["crash_figures", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.crash", description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--customers", type=int, default=40)
    parser.add_argument("--invoices", type=int, default=400, help="per ledger")
    parser.add_argument("--kills-per-day", type=int, default=4)
    parser.add_argument("--ledger", action="append", choices=("quickbooks", "xero"), default=None)
    parser.add_argument("--state-url", default=None, help="victim state (default: SQLite)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    figures = crash_figures(
        args.kills, seed=args.seed, ledgers=tuple(args.ledger or ("quickbooks", "xero")),
        state_url=args.state_url, customers=args.customers, invoices=args.invoices,
        kills_per_day=args.kills_per_day,
    )
    if args.json:
        print(json.dumps(figures, indent=2, default=str))
    else:
        for key, value in figures.items():
            if key != "details":
                print(f"{key}: {value}")
        if figures["duplicates"] or figures["lost"]:
            print(f"details: {json.dumps(figures['details'], indent=2, default=str)}")
    return 0 if not figures["duplicates"] and not figures["lost"] else 1


if __name__ == "__main__":
    sys.exit(main())
