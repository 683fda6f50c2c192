"""Reference tables for the README, generated from the pydantic models so they cannot drift.

`python -m sync.docs` rewrites the marked sections of README.md; a test fails when they are stale.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sync.commands.policy_tools import policy_schema
from sync.config import AppConfig

MARKERS = {
    "policy-reference": "policy",
    "config-reference": "config",
}


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return _resolve(schema, schema["$defs"][name])
    return node


def _type_of(schema: dict[str, Any], node: dict[str, Any]) -> str:
    node = dict(node)
    if "$ref" in node:
        target = _resolve(schema, node)
        if "enum" in target:
            return " \\| ".join(str(v) for v in target["enum"])
        return "mapping"
    if "enum" in node:
        return " \\| ".join(str(v) for v in node["enum"])
    if "anyOf" in node:
        parts = [_type_of(schema, option) for option in node["anyOf"] if option.get("type") != "null"]
        return " or ".join(dict.fromkeys(parts)) or "null"
    kind = node.get("type")
    if kind == "array":
        return f"list of {_type_of(schema, node.get('items', {}))}"
    if kind == "object":
        return "mapping"
    if node.get("format") == "date":
        return "date"
    if isinstance(kind, list):
        return " or ".join(str(k) for k in kind)
    return str(kind or "any")


def _children(schema: dict[str, Any], node: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Object properties below a field (through refs, optionals, lists and maps)."""
    node = _resolve(schema, node)
    if "anyOf" in node:
        for option in node["anyOf"]:
            props, suffix = _children(schema, option)
            if props:
                return props, suffix
        return {}, ""
    if node.get("type") == "array":
        props, suffix = _children(schema, node.get("items", {}))
        return props, "[]" + suffix
    if node.get("type") == "object" and isinstance(node.get("additionalProperties"), dict):
        props, suffix = _children(schema, node["additionalProperties"])
        return props, ".<name>" + suffix
    return node.get("properties", {}), ""


def rows(
    schema: dict[str, Any], node: dict[str, Any] | None = None, prefix: str = ""
) -> list[tuple[str, str, str, str]]:
    node = node or schema
    result = []
    for name, field in _resolve(schema, node).get("properties", {}).items():
        path = f"{prefix}{name}"
        default = field.get("default", "")
        default_text = "" if default in ("", None) else json.dumps(default, default=str)
        result.append(
            (path, _type_of(schema, field), default_text, " ".join(field.get("description", "").split()))
        )
        props, suffix = _children(schema, field)
        if props:
            result.extend(rows(schema, {"properties": props}, f"{path}{suffix}."))
    return result


def table(kind: str) -> str:
    if kind == "policy":
        schema = policy_schema()
    else:
        schema = AppConfig.model_json_schema(by_alias=True)
    lines = ["| field | type | default | meaning |", "|---|---|---|---|"]
    for path, kind_, default, description in rows(schema):
        cells = [f"`{path}`", kind_, f"`{default}`" if default else "", description.replace("|", "\\|")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _filled(generated: str) -> Callable[[re.Match[str]], str]:
    """Replacement keeping the markers around the freshly generated table."""
    return lambda match: match.group(1) + generated + "\n" + match.group(2)


def render_readme(text: str) -> str:
    for marker, kind in MARKERS.items():
        pattern = re.compile(rf"(<!-- {marker}:start -->\n).*?(<!-- {marker}:end -->)", re.S)
        text = pattern.sub(_filled(table(kind)), text)
    return text


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("README.md")
    path.write_text(render_readme(path.read_text(encoding="utf-8")), encoding="utf-8")


if __name__ == "__main__":
    main()
