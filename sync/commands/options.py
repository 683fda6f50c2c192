"""The options and value types every command shares: DATE, --config, --today, --json, --connection.

One definition each, so a date is parsed, and a bad one reported, the same way everywhere."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


class IsoDate(click.ParamType):
    """A calendar date written YYYY-MM-DD."""

    name = "DATE"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> date:
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value).strip())
        except ValueError:
            self.fail(f"expected a date like 2026-12-31, got {value!r}", param, ctx)


DATE = IsoDate()


def config_option(
    help: str = "relance.yaml to use (default: $RELANCE_CONFIG or ./relance.yaml).",
) -> Callable[[F], F]:
    return click.option(
        "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None, help=help
    )


def today_option(
    help: str = "Evaluate as if today were DATE (default: today in the company's timezone).",
) -> Callable[[F], F]:
    return click.option("--today", type=DATE, default=None, help=help)


def json_option(help: str = "Print JSON instead of a table.") -> Callable[[F], F]:
    return click.option("--json", "as_json", is_flag=True, help=help)


def connection_option(help: str = "Only this connection.") -> Callable[[F], F]:
    return click.option("--connection", "connection", default=None, help=help)


def echo_json(payload: Any) -> None:
    click.echo(json.dumps(payload, indent=2, default=str))
