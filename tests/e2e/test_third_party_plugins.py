"""Extension points: a third-party package, built and installed here into a temporary folder,
registers a late-payment law (`relance.laws`) and a notice channel (`relance.channels`) through
entry points, exactly as the shipped ones do, and `relance plan` uses both."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PACKAGE = "relance_acme_extras"

MODULE = '''
"""A law of a fictional country and an SMS channel, as a third party would ship them."""
from decimal import Decimal

from policies.laws import CompensationTier, Fixing, Law, RateTableSource
from policies.model.actions import ActionKind
from policies.rulebook import ChannelSpec
from sync.channels.registry import ChannelPlugin
from sync.outcome import Outcome


class SmsSender:
    def send(self, notice, kit):
        return Outcome.done(sms_to=notice.customer.name)

    def settle(self, notice, kit):
        return None


LAW = Law(
    code="xx",
    title="Late Payment Act of Xland",
    countries=("XX",),
    base_table="xx_reference",
    margin=Decimal(7),
    fixing=Fixing.HALF_YEARLY,
    compensation_currency="EUR",
    compensation=(CompensationTier(None, Decimal(25)),),
    consumer_exclusion="the Xland act covers business debts only",
    tables=(RateTableSource("xx_reference", "relance_acme_extras", "xx_reference.csv"),),
)
SMS = ChannelPlugin(ChannelSpec("sms", ActionKind.REMINDER, "a text message"), SmsSender)
'''

PYPROJECT = f'''
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "relance-acme-extras"
version = "0.1"

[project.entry-points."relance.laws"]
xx = "{PACKAGE}:LAW"

[project.entry-points."relance.channels"]
sms = "{PACKAGE}:SMS"

[tool.setuptools]
packages = ["{PACKAGE}"]

[tool.setuptools.package-data]
{PACKAGE} = ["*.csv"]
'''

POLICY = """
version: 1
company: {name: Xland Ltd, country: XX, currency: EUR, timezone: UTC}
interest: {statutory: xx}
ladder:
  steps:
    - {name: text-reminder, offset_days: 10, channel: sms, template: late_1, charge: [interest, compensation]}
"""

INVOICES = [
    {
        "id": "1",
        "number": "X-1",
        "customer": {"id": "c1", "name": "Buyer GmbH", "country": "XX"},
        "issue_date": "2026-01-01",
        "due_date": "2026-01-31",
        "currency": "EUR",
        "total": "1000.00",
    }
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package built from source and pip-installed into a folder of its own."""
    root = tmp_path_factory.mktemp("plugin")
    source = root / "src"
    (source / PACKAGE).mkdir(parents=True)
    (source / "pyproject.toml").write_text(textwrap.dedent(PYPROJECT), encoding="utf-8")
    (source / PACKAGE / "__init__.py").write_text(textwrap.dedent(MODULE), encoding="utf-8")
    (source / PACKAGE / "xx_reference.csv").write_text(
        'effective_from,rate,source\n2025-07-01,3.00,"Xland central bank (test)"\n'
        '2026-01-01,3.00,"Xland central bank (test)"\n',
        encoding="utf-8",
    )
    target = root / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert list(target.glob("relance_acme_extras-*.dist-info/entry_points.txt"))
    return target


def relance(site: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "sync", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_relance_plan_uses_a_third_party_law_and_channel(site: Path, tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text(POLICY, encoding="utf-8")
    (tmp_path / "invoices.json").write_text(json.dumps(INVOICES), encoding="utf-8")
    done = relance(
        site,
        "plan",
        "--invoices",
        "invoices.json",
        "--policy",
        "policy.yaml",
        "--today",
        "2026-03-02",
        "--json",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    actions = json.loads(done.stdout)
    [notice] = [a for a in actions if a["kind"] == "reminder"]
    assert notice["channel"] == "sms" and notice["step"] == "text-reminder"
    [fee] = [a for a in actions if a["kind"] == "fee"]
    charges = {c["component"]: c["amount"] for c in fee["charges"]}
    # Xland: reference 3.00 + 7 points = 10 % a year; 1000.00 x 10 % x 30 days / 365 = 8.22
    assert charges == {"interest": "8.22", "compensation": "25.00"}


def test_the_third_party_names_are_checked_and_listed(site: Path, tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text(POLICY.replace("channel: sms", "channel: smss"), encoding="utf-8")
    checked = relance(site, "policy", "check", "policy.yaml", cwd=tmp_path)
    assert checked.returncode == 1
    assert (
        "expected one of: ledger_email, email, call_task, letter, agency, sms, got 'smss'" in checked.stdout
    )
    schema = json.loads(relance(site, "policy", "schema", cwd=tmp_path).stdout)
    assert "xx" in schema["$defs"]["InterestSettings"]["properties"]["statutory"]["anyOf"][0]["enum"]
    (tmp_path / "plain.yaml").write_text(POLICY, encoding="utf-8")
    assert relance(site, "policy", "check", "plain.yaml", cwd=tmp_path).returncode == 0
    without = subprocess.run(  # the same policy where the package is not installed
        [sys.executable, "-m", "sync", "policy", "check", "plain.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert without.returncode == 1
    assert "interest.statutory: expected one of: fr, de, uk, eu, got 'xx'" in without.stdout
    assert (
        "channel: expected one of: ledger_email, email, call_task, letter, agency, got 'sms'"
        in without.stdout
    )
