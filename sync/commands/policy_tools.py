"""`relance policy check FILE...` (validate + lint) and `relance policy schema` (JSON Schema)."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

import click

from policies.config import Policy
from policies.lint import PolicyReport, check_policy_text
from policies.model.errors import PolicyError
from policies.rulebook import Rulebook
from sync.commands.options import json_option, today_option
from sync.rulebook import load_rulebook, read_policy_file


def policy_schema(rulebook: Rulebook | None = None) -> dict[str, object]:
    """The JSON Schema of policy.yaml (for editors: yaml-language-server, VS Code, JetBrains), with
    the registered laws, rate tables and channels as enums."""
    rulebook = rulebook or load_rulebook()
    names = {"law": list(rulebook.laws), "table": list(rulebook.tables), "channel": list(rulebook.channels)}

    def registered(node: object) -> object:
        if isinstance(node, dict):
            if "x-registry" in node:
                rest = {key: value for key, value in node.items() if key != "x-registry"}
                return {**rest, "enum": names[node["x-registry"]]}
            return {key: registered(value) for key, value in node.items()}
        if isinstance(node, list):
            return [registered(item) for item in node]
        return node

    schema = registered(Policy.model_json_schema(by_alias=True))
    assert isinstance(schema, dict)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def check_files(paths: list[Path], today: date) -> list[PolicyReport]:
    reports = []
    for path in paths:
        try:
            text, source = read_policy_file(path)
        except PolicyError as error:
            reports.append(PolicyReport(str(path), tuple(error.problems), ()))
            continue
        reports.append(check_policy_text(text, source, today=today, rulebook=load_rulebook()))
    return reports


@click.group("policy")
def policy_group() -> None:
    """Validate policy files and print their JSON Schema."""


@policy_group.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@today_option("Lint as of DATE (default: today).")
@json_option("Print a JSON list, one object per file.")
def check_command(files: tuple[Path, ...], today: date | None, as_json: bool) -> None:
    """Validate and lint policy files: 'ok' or the problems of each, warnings prefixed 'warning:'.

    Exit status 1 when any file has an error (warnings alone exit 0).

    Example: relance policy check examples/policies/fr-b2b.yaml
    """
    reports = check_files(list(files), today or date.today())
    if as_json:
        click.echo(json.dumps([report.as_json() for report in reports], indent=2))
    else:
        for report in reports:
            for line in report.lines():
                click.echo(line)
    if not all(report.ok for report in reports):
        sys.exit(1)


@policy_group.command("schema")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the schema to this file instead of standard output.",
)
def schema_command(output: Path | None) -> None:
    """Print the JSON Schema of policy files, for editor validation.

    Example: relance policy schema > policy.schema.json
    """
    text = json.dumps(policy_schema(), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}")


COMMANDS = (policy_group,)
