"""Policy YAML text -> `Policy`, with every problem reported as 'file:line: path: message'.

ruamel.yaml's round-trip loader keeps the line of every key and list item; pydantic error locations are
mapped back to those lines, and pydantic's wording is translated into what the user has to write.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.reader import ReaderError

from policies.config import RULEBOOK, Policy
from policies.model.errors import PolicyError
from policies.rulebook import Rulebook

Loc = tuple[str | int, ...]

_HINT = "see examples/policies/ for complete policies; `relance policy schema` prints the JSON Schema"


def parse_policy(text: str, source: str = "policy.yaml", *, rulebook: Rulebook) -> Policy:
    """Parse and validate policy YAML against the registered laws, rate tables and channels; the
    policy comes back bound to `rulebook`. Raises PolicyError whose problems name file:line and field
    path. (Reading the file is the caller's: sync.rulebook.load_policy.)"""
    return parse_policy_with_lines(text, source, rulebook=rulebook)[0]


def parse_policy_with_lines(
    text: str, source: str = "policy.yaml", *, rulebook: Rulebook
) -> tuple[Policy, dict[Loc, int]]:
    """As parse_policy, also returning the 1-based line of every field path (for lint messages)."""
    data, lines = read_yaml(text, source)
    try:
        policy = Policy.model_validate(data, context={RULEBOOK: rulebook})
    except ValidationError as error:
        raise PolicyError(describe_errors(error, lines, source), hint=_HINT) from None
    return policy.bind(rulebook), lines


def line_for(loc: Loc, lines: Mapping[Loc, int]) -> int:
    """Line of the deepest part of `loc` present in the file (the parent's line for a missing field)."""
    return _line_for(loc, lines)


class _Constructor(RoundTripConstructor):
    """Round-trip constructor that leaves impossible dates (2026-02-30) as text, so that validation
    reports them at their field ("expected a date like 2026-12-31") instead of crashing."""

    def construct_lenient_timestamp(self, node: Any, values: Any = None) -> Any:
        try:
            return self.construct_yaml_timestamp(node, values)
        except ValueError:
            return str(node.value)

    def check_mapping_key(self, node: Any, key_node: Any, mapping: Any, key: Any, value: Any) -> bool:
        _require_plain_key(key_node)
        return bool(super().check_mapping_key(node, key_node, mapping, key, value))

    def check_set_key(self, node: Any, key_node: Any, setting: Any, key: Any) -> None:
        _require_plain_key(key_node)
        super().check_set_key(node, key_node, setting, key)


class _ComplexKey(MarkedYAMLError):
    """A mapping or list used as a key (`{a: 1}: 2`, `? [x]`): no policy field is named like that,
    and ruamel cannot even hold a nested one (unhashable)."""


def _require_plain_key(key_node: Any) -> None:
    if not isinstance(key_node, ScalarNode):
        raise _ComplexKey(problem="complex key", problem_mark=key_node.start_mark)


_Constructor.add_constructor("tag:yaml.org,2002:timestamp", _Constructor.construct_lenient_timestamp)

# ReaderError names control characters only by code point; these are the ones people meet.
_CONTROL_NAMES = {
    0x00: "NUL",
    0x08: "BACKSPACE",
    0x0B: "VERTICAL TAB",
    0x0C: "FORM FEED",
    0x1B: "ESCAPE",
    0x7F: "DEL",
    0xFEFF: "BYTE ORDER MARK",
    0xFFFE: "NONCHARACTER",
    0xFFFF: "NONCHARACTER",
}
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")  # what ruamel counts as a new line


def _unacceptable_character(error: ReaderError, text: str, source: str) -> str:
    """'file:line: unacceptable character U+007F (DEL); remove it' from ruamel's position in the text."""
    code = error.character
    if isinstance(code, bytes | str):  # a decoding error on bytes input; text input never gets here
        code = ord(code[:1] or "\0")
    position = error.position if isinstance(error.position, int) else 0
    line = len(_LINE_BREAK.findall(text, 0, max(0, min(position, len(text))))) + 1
    if 0xD800 <= code <= 0xDFFF:
        name = "lone surrogate"
    else:
        name = _CONTROL_NAMES.get(code) or unicodedata.name(chr(code), None) or "control character"
    return f"{source}:{line}: unacceptable character U+{code:04X} ({name}); remove it"


def read_yaml(text: str, source: str) -> tuple[dict[str, Any], dict[Loc, int]]:
    """YAML text -> (plain data, 1-based line of every key path). Raises PolicyError for bad YAML."""
    yaml = YAML(typ="rt")
    yaml.Constructor = _Constructor
    try:
        document = yaml.load(text)
    except _ComplexKey as error:
        line = error.problem_mark.line + 1 if error.problem_mark else 1
        raise PolicyError(
            [f"{source}:{line}: keys must be plain names (text or numbers), not a mapping or a list"],
            hint=_HINT,
        ) from None
    except ReaderError as error:
        raise PolicyError([_unacceptable_character(error, text, source)], hint=_HINT) from None
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = error.problem or "invalid YAML"
        if error.context:
            started = error.context_mark
            opened = f" started on line {started.line + 1}" if started and started is not mark else ""
            problem += f" ({error.context}{opened})"
        raise PolicyError([f"{where}: YAML syntax error: {_one_line(problem)}"], hint=_HINT) from None
    except YAMLError as error:
        raise PolicyError([f"{source}:1: YAML syntax error: {_one_line(str(error))}"], hint=_HINT) from None
    if document is None:
        raise PolicyError([f"{source}:1: the file is empty; expected a policy (version:, company:, ladder:)"])
    if not isinstance(document, CommentedMap):
        raise PolicyError(
            [f"{source}:1: expected a mapping (key: value) at the top level, got {_describe(document)}"]
        )
    lines: dict[Loc, int] = {(): 1}
    return _plain(document, (), lines, source), lines


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _plain(node: Any, loc: Loc, lines: dict[Loc, int], source: str) -> Any:
    """Convert ruamel's round-trip nodes to plain Python values, recording line numbers on the way."""
    if isinstance(node, CommentedMap):
        result: dict[Any, Any] = {}
        for key in node:
            key_loc = (*loc, str(key))
            position = _key_line(node, key)
            if position is not None:
                lines[key_loc] = position
            result[key] = _plain(node[key], key_loc, lines, source)
        return result
    if isinstance(node, CommentedSeq):
        items = []
        for index, item in enumerate(node):
            try:
                lines[(*loc, index)] = node.lc.item(index)[0] + 1
            except (KeyError, TypeError, AttributeError):
                lines[(*loc, index)] = lines.get(loc, 1)
            items.append(_plain(item, (*loc, index), lines, source))
        return items
    if isinstance(node, TaggedScalar):
        tag = getattr(node.tag, "value", node.tag)
        raise PolicyError(
            [f"{source}:{_line_for(loc, lines)}: {format_path(loc)}: YAML tags like {tag} are not supported"]
        )
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, datetime):
        return datetime(*node.timetuple()[:6])
    if isinstance(node, str):
        return str(node)
    return node


def _key_line(node: CommentedMap, key: Any) -> int | None:
    try:
        return node.lc.key(key)[0] + 1
    except (KeyError, TypeError, AttributeError):  # merged keys (<<: *anchor) have no position of their own
        return None


# ---------------------------------------------------------------------------------------------------------
# pydantic errors -> user messages


def describe_errors(
    error: ValidationError, lines: Mapping[Loc, int], source: str, *, model: type[BaseModel] = Policy
) -> list[str]:
    """One 'file:line: path: what to write' per problem, in line order. `model`: the root of the
    validated document (unknown keys are matched against its fields for "did you mean")."""
    details = error.errors(include_url=False)
    unknown = {_clean_loc(d["loc"]) for d in details if d["type"] == "extra_forbidden"}
    all_locs = [_clean_loc(d["loc"]) for d in details]
    problems: list[tuple[int, str]] = []
    for detail in details:
        loc = _clean_loc(detail["loc"])
        if detail["type"] == "missing" and _explained_by_typo(loc, unknown):
            continue  # 'ofset_days' already says "did you mean 'offset_days'?"
        if detail["type"] == "too_short" and any(
            len(other) > len(loc) and other[: len(loc)] == loc for other in all_locs
        ):
            continue  # pydantic also calls a list "too short" when its items are invalid
        line = _line_for(loc, lines)
        path = format_path(loc) or "(top level)"
        problems.append((line, f"{source}:{line}: {path}: {_message(detail, loc, model)}"))
    seen: set[str] = set()
    ordered = []
    for _, text in sorted(problems, key=lambda item: item[0]):
        if text not in seen:
            seen.add(text)
            ordered.append(text)
    return ordered


def _explained_by_typo(missing: Loc, unknown: set[Loc]) -> bool:
    siblings = [str(loc[-1]) for loc in unknown if loc[:-1] == missing[:-1]]
    return bool(difflib.get_close_matches(str(missing[-1]), siblings, n=1, cutoff=0.6))


def _clean_loc(loc: Sequence[Any]) -> Loc:
    # Validators wrapping a type may add their own segment (e.g. 'function-after[...]'); drop them.
    return tuple(part for part in loc if not (isinstance(part, str) and re.match(r"^[\w-]+\[.*\]$", part)))


def _line_for(loc: Loc, lines: Mapping[Loc, int]) -> int:
    for end in range(len(loc), -1, -1):
        line = lines.get(loc[:end])
        if line is not None:
            return line
    return 1


def format_path(loc: Loc) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, date):
        return value.isoformat()
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:45]}... ({len(text)} characters)"


_KIND_TEXT = {
    "string_type": "expected text",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "date_type": "expected a date like 2026-12-31",
    "date_parsing": "expected a date like 2026-12-31",
    "date_from_datetime_parsing": "expected a date like 2026-12-31",
    "date_from_datetime_inexact": "expected a date like 2026-12-31 (without a time)",
    "time_type": 'expected a time like "09:00" (quoted)',
    "time_parsing": 'expected a time like "09:00" (quoted)',
    "decimal_type": "expected an amount like '40.00'",
    "decimal_parsing": "expected an amount like '40.00'",
    "model_type": "expected a mapping (key: value)",
    "model_attributes_type": "expected a mapping (key: value)",
    "dict_type": "expected a mapping (key: value)",
    "list_type": "expected a list",
    "tuple_type": "expected a list",
    "none_required": "expected nothing",
}


def _message(detail: Any, loc: Loc, model: type[BaseModel]) -> str:
    kind = detail["type"]
    value = detail.get("input")
    context = detail.get("ctx") or {}
    field = next((part for part in reversed(loc) if isinstance(part, str)), "")
    got = f", got {_describe(value)}"
    if kind == "missing":
        return "required, but missing"
    if kind == "extra_forbidden":
        return _unknown_field(loc, model)
    if kind in ("int_type", "int_parsing", "int_from_float"):
        unit = "whole days" if field.endswith("days") else "a whole number"
        return f"expected {unit}{got}"
    if kind in ("enum", "literal_error"):
        choices = re.findall(r"'([^']*)'", str(context.get("expected", ""))) or [str(context.get("expected"))]
        return f"expected one of: {', '.join(choices)}{got}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        words = {
            "greater_than_equal": "at least",
            "greater_than": "more than",
            "less_than_equal": "at most",
            "less_than": "less than",
        }
        bound = next(iter(context.values()), "")
        # "at most 3650 days" reads as the rule it is; "at least 1" and "at least 0" need no unit
        unit = " days" if field.endswith("days") and bound not in (0, 1, -1) else ""
        return f"must be {words[kind]} {bound}{unit}{got}"
    if kind == "too_short":
        return "expected at least one item"
    if kind == "value_error":
        return str(detail["msg"]).removeprefix("Value error, ")
    if kind in _KIND_TEXT:
        return _KIND_TEXT[kind] + got
    return str(detail["msg"])  # our own PydanticCustomError messages are already written for users


# ---------------------------------------------------------------------------------------------------------
# model introspection for "did you mean"


def _unknown_field(loc: Loc, root: type[BaseModel]) -> str:
    name = str(loc[-1])
    model = _model_at(loc[:-1], root)
    if model is None:
        return f"unknown field {name!r}"
    known = [field.alias or key for key, field in model.model_fields.items()]
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return f"unknown field {name!r} (did you mean {close[0]!r}?)"
    return f"unknown field {name!r} (expected one of: {', '.join(known)})"


def _model_at(loc: Loc, root: type[BaseModel]) -> type[BaseModel] | None:
    current: Any = root
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            fields = {field.alias or key: field for key, field in current.model_fields.items()}
            if part not in fields:
                return None
            current = fields[part].annotation
            continue
        origin = typing.get_origin(current)
        args = typing.get_args(current)
        if origin in (tuple, list) and args:
            current = args[0]
        elif origin is dict and len(args) == 2:
            current = args[1]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            options = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            if len(options) != 1:
                return annotation
            annotation = options[0]
        else:
            return annotation
