"""The edge where relance reads its rules: law and channel plugins (the `relance.laws` and
`relance.channels` entry points), the laws' rate tables (CSV resources) and policy files. What it
reads is handed to the pure rules of policies/ as values (a Rulebook, a bound Policy).
"""

from __future__ import annotations

from functools import cache
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from policies.config import Policy
from policies.laws import Law
from policies.loader import parse_policy
from policies.model.errors import PolicyError, RelanceError
from policies.rates import RateTable, parse_csv
from policies.rulebook import ChannelSpec, Rulebook
from sync.channels.registry import CHANNELS_GROUP, ChannelPlugin

LAWS_GROUP = "relance.laws"


def entry_point_objects(group: str, kind: type) -> list[tuple[str, Any]]:
    """(name, object) of every entry point of `group`, each checked to be a `kind`. A plugin that
    fails to import or names something else is a one-line error naming the plugin."""
    found = []
    for entry in metadata.entry_points(group=group):
        try:
            value = entry.load()
        except Exception as error:  # a plugin's import error must not look like relance's own
            raise RelanceError(
                f"plugin {entry.name!r} ({entry.value}, group {group}) failed to load: "
                f"{type(error).__name__}: {error}",
                hint="fix or uninstall the package that provides it",
            ) from None
        if not isinstance(value, kind):
            raise RelanceError(
                f"plugin {entry.name!r} ({entry.value}, group {group}) is a {type(value).__name__}, "
                f"expected a {kind.__module__}.{kind.__qualname__}",
                hint="fix or uninstall the package that provides it",
            )
        found.append((entry.name, value))
    return found


def registered_laws() -> list[Law]:
    laws: dict[str, Law] = {}
    for name, law in entry_point_objects(LAWS_GROUP, Law):
        if law.code in laws:
            raise RelanceError(f"two plugins register the law {law.code!r} (the second is {name!r})")
        laws[law.code] = law
    return sorted(laws.values(), key=lambda law: (law.rank, law.code))


@cache
def channel_plugins() -> dict[str, ChannelPlugin]:
    plugins: dict[str, ChannelPlugin] = {}
    for name, plugin in entry_point_objects(CHANNELS_GROUP, ChannelPlugin):
        if plugin.spec.name in plugins:
            raise RelanceError(
                f"two plugins register the channel {plugin.spec.name!r} (the second is {name!r})"
            )
        plugins[plugin.spec.name] = plugin
    return plugins


def read_rate_tables(laws: list[Law]) -> list[RateTable]:
    """Every table the laws bring, read once from its package resource."""
    tables: dict[str, RateTable] = {}
    for law in laws:
        for source in law.tables:
            if source.name in tables:
                continue
            where = f"{source.package}/{source.resource}"
            try:
                text = resources.files(source.package).joinpath(source.resource).read_text(encoding="utf-8")
            except (OSError, ModuleNotFoundError, UnicodeDecodeError) as error:
                raise RelanceError(
                    f"rate table {source.name!r} of law {law.code!r} cannot be read from {where}: {error}"
                ) from None
            tables[source.name] = parse_csv(source.name, text, source=where)
    return list(tables.values())


@cache
def load_rulebook() -> Rulebook:
    """The laws, rate tables and channels installed with relance and its plugins (read once)."""
    laws = registered_laws()
    channels: list[ChannelSpec] = [plugin.spec for plugin in channel_plugins().values()]
    return Rulebook.of(laws, read_rate_tables(laws), channels)


def read_policy_file(path: Path | str) -> tuple[str, str]:
    """(text, source name) of a policy file; PolicyError when it cannot be read."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8"), str(path)
    except FileNotFoundError:
        raise PolicyError([f"{path}: file not found (check the `policy:` path in relance.yaml)"]) from None
    except IsADirectoryError:
        raise PolicyError([f"{path}: is a directory, expected a policy YAML file"]) from None
    except UnicodeDecodeError as error:
        raise PolicyError([f"{path}: not UTF-8 text ({error.reason} at byte {error.start})"]) from None
    except OSError as error:
        raise PolicyError([f"{path}: cannot read ({error.strerror})"]) from None


def load_policy(path: Path | str) -> Policy:
    """Read and validate a policy file against the installed rulebook. Raises PolicyError (never
    anything else for bad input)."""
    text, source = read_policy_file(path)
    return parse_policy(text, source=source, rulebook=load_rulebook())
