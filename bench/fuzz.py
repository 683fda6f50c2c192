"""Bad-input proofs at scale: `python -m bench.fuzz [--policies 1000] [--payloads 10000] [--headers 2000]`.

The generators (hypothesis strategies, derandomized so every run draws the same inputs) and the
property each input must satisfy are tests/support/fuzz/ (policies, payloads, headers); the fuzz tests
run them with small counts, this module runs the large counts and prints figures (crashes must be 0).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import traceback
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from connectors.base import Entity
from tests.support.fuzz.gaps import known_gap
from tests.support.fuzz.headers import check_headers, header_inputs
from tests.support.fuzz.payloads import (
    ENTITIES,
    MapperUnderTest,
    check_page,
    check_payload,
    quickbooks_mapper,
    raw_records,
    xero_mapper,
)
from tests.support.fuzz.policies import check_policy, policy_texts


def bulk_settings(examples: int) -> settings:
    """Derandomized generation only: the same inputs on every run, no shrinking, no example database."""
    return settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )


@dataclasses.dataclass
class Tally:
    outcomes: Counter[str] = dataclasses.field(default_factory=Counter)
    failures: dict[str, str] = dataclasses.field(default_factory=dict)  # category -> first example

    def run(self, label: str, check: Callable[[], str]) -> None:
        try:
            self.outcomes[check()] += 1
        except AssertionError as error:
            gap = known_gap(error)
            category = f"property_failed ({gap.name})" if gap else "property_failed"
            self.outcomes[category] += 1
            self.failures.setdefault(category, f"{label}\n    -> {error}")
        except Exception as error:
            gap = known_gap(error)
            category = f"crashed ({gap.name})" if gap else "crashed"
            self.outcomes[category] += 1
            self.failures.setdefault(category, f"{label}\n{traceback.format_exc(limit=-4)}")

    @property
    def crashed(self) -> int:
        return sum(value for key, value in self.outcomes.items() if "crashed" in key)

    @property
    def failed(self) -> int:
        return sum(value for key, value in self.outcomes.items() if "property_failed" in key)


def run_policies(count: int) -> Tally:
    tally = Tally()

    @given(policy_texts())
    @bulk_settings(count)
    def one(text: str) -> None:
        tally.run(f"policy {text[:200]!r}", lambda: check_policy(text))

    one()
    return tally


def run_payloads(mapper: MapperUnderTest, count: int) -> Tally:
    tally = Tally()

    @given(
        st.sampled_from(ENTITIES).flatmap(lambda e: st.tuples(st.just(e), raw_records(mapper.templates, e)))
    )
    @bulk_settings(count)
    def one(case: tuple[Entity, Any]) -> None:
        entity, raw = case
        tally.run(f"{mapper.ledger} {entity} {excerpt(raw)}", lambda: check_payload(mapper, entity, raw))

    one()
    # Pages: good records on both sides of bad ones still come through.
    pages = Tally()

    @given(
        st.sampled_from(ENTITIES).flatmap(
            lambda e: st.tuples(st.just(e), st.lists(raw_records(mapper.templates, e), max_size=8))
        )
    )
    @bulk_settings(max(count // 20, 10))
    def page(case: tuple[Entity, list[Any]]) -> None:
        entity, rows = case
        pages.run(f"{mapper.ledger} page of {entity}", lambda: _page_outcome(mapper, entity, rows))

    page()
    tally.outcomes.update({f"page {key}": value for key, value in pages.outcomes.items()})
    tally.failures.update({f"page {key}": value for key, value in pages.failures.items()})
    return tally


def _page_outcome(mapper: MapperUnderTest, entity: Entity, rows: list[Any]) -> str:
    check_page(mapper, entity, rows)
    return "ok"


def run_headers(count: int) -> Tally:
    tally = Tally()

    @given(header_inputs())
    @bulk_settings(count)
    def one(inputs: dict[str, str]) -> None:
        tally.run(f"headers {inputs!r}", lambda: check_headers(inputs))

    one()
    return tally


def excerpt(raw: Any, limit: int = 300) -> str:
    try:
        text = json.dumps(raw, default=str, ensure_ascii=True)
    except (TypeError, ValueError):
        text = repr(raw)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _report(title: str, tally: Tally, *, verbose: bool) -> int:
    single = {key: value for key, value in tally.outcomes.items() if not key.startswith("page ")}
    pages = {key: value for key, value in tally.outcomes.items() if key.startswith("page ")}
    print(f"{title}: {sum(single.values())} inputs")
    for key, value in sorted(single.items()):
        print(f"  {key:<52} {value:>6}")
    if pages:
        print(f"  pages of good + fuzzed records: {sum(pages.values())}")
        for key, value in sorted(pages.items()):
            print(f"    {key:<50} {value:>6}")
    print(f"  => crashed {tally.crashed}, property failures {tally.failed}")
    for category, example in tally.failures.items():
        text = example if verbose else example[:600]
        print(f"  first {category}: {text}")
    return tally.crashed + tally.failed


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("--policies", type=int, default=1000, help="fuzzed policy texts (default 1000)")
    parser.add_argument(
        "--payloads", type=int, default=10000, help="fuzzed records per ledger (default 10000)"
    )
    parser.add_argument("--headers", type=int, default=2000, help="fuzzed email header inputs (default 2000)")
    parser.add_argument("--verbose", action="store_true", help="print whole examples and tracebacks")
    args = parser.parse_args(list(argv) if argv is not None else None)
    # Mappers log each email address they drop; thousands of fuzzed ones would bury the figures.
    logging.getLogger("relance.connectors").setLevel(logging.ERROR)

    crashes = 0
    if args.policies:
        crashes += _report("policies", run_policies(args.policies), verbose=args.verbose)
    for mapper in (quickbooks_mapper(), xero_mapper()):
        if args.payloads:
            crashes += _report(
                f"{mapper.ledger} payloads", run_payloads(mapper, args.payloads), verbose=args.verbose
            )
    if args.headers:
        crashes += _report("email headers", run_headers(args.headers), verbose=args.verbose)
    print(f"total: crashed + property failures = {crashes}" + (" (must be 0)" if crashes else ""))
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
