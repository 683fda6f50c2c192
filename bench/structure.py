"""Structure figures of the tree: import cycles, upward imports, function-local project imports,
largest classes and files, `Any` in annotations.

    python -m bench.structure [--json] [ROOT]

ROOT defaults to this checkout (any checkout of relance can be measured, e.g. an older commit in a
temporary folder). Cycles count every import grimp sees, function-local and TYPE_CHECKING ones too.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grimp

PACKAGES = ("policies", "connectors", "sync", "bench")
RANK = {"policies": 0, "connectors": 1, "sync": 2, "bench": 3}


def sources(root: Path) -> Iterator[Path]:
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if "migrations/versions" not in path.as_posix():
                yield path


def strongly_connected(graph: grimp.ImportGraph) -> list[list[str]]:
    """Import cycles: the strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def _annotations(tree: ast.AST) -> Iterator[ast.expr]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            arguments = node.args
            for argument in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs):
                if argument.annotation is not None:
                    yield argument.annotation
            for special in (arguments.vararg, arguments.kwarg):
                if special is not None and special.annotation is not None:
                    yield special.annotation
            if node.returns is not None:
                yield node.returns
        elif isinstance(node, ast.AnnAssign):
            yield node.annotation


def figures(root: Path) -> dict[str, Any]:
    local_imports = 0
    any_annotations = 0
    classes: list[tuple[int, int, str]] = []
    files: list[tuple[int, str]] = []
    for path in sources(root):
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        name = path.relative_to(root).as_posix()
        files.append((len(text.splitlines()), name))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.ImportFrom) and inner.level == 0 and inner.module:
                        local_imports += inner.module.split(".")[0] in RANK
                    elif isinstance(inner, ast.Import):
                        local_imports += sum(alias.name.split(".")[0] in RANK for alias in inner.names)
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                methods = sum(isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) for item in node.body)
                classes.append((node.end_lineno - node.lineno + 1, methods, f"{name}:{node.name}"))
        for annotation in _annotations(tree):
            for part in ast.walk(annotation):
                if isinstance(part, ast.Name) and part.id == "Any":
                    any_annotations += 1
                elif isinstance(part, ast.Constant) and isinstance(part.value, str):
                    any_annotations += part.value.count("Any")
    sys.path.insert(0, str(root))
    try:
        graph = grimp.build_graph(*PACKAGES, include_external_packages=False, cache_dir=None)
    finally:
        sys.path.remove(str(root))
    upward = sorted(
        f"{importer} -> {imported}"
        for importer in graph.modules
        for imported in graph.find_modules_directly_imported_by(importer)
        if RANK[imported.split(".")[0]] > RANK[importer.split(".")[0]]
    )
    cycles = strongly_connected(graph)
    classes.sort(reverse=True)
    files.sort(reverse=True)
    return {
        "import_cycles": cycles,
        "modules_in_cycles": sum(len(cycle) for cycle in cycles),
        "upward_imports": upward,
        "function_local_project_imports": local_imports,
        "any_in_annotations": any_annotations,
        "largest_classes": [{"lines": n, "methods": m, "class": c} for n, m, c in classes[:5]],
        "largest_files": [{"lines": n, "file": f} for n, f in files[:5]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("root", nargs="?", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = figures(args.root.resolve())
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"import cycles: {len(result['import_cycles'])} ({result['modules_in_cycles']} modules)")
    for cycle in result["import_cycles"]:
        print(f"  {' <-> '.join(cycle)}")
    print(f"upward imports: {len(result['upward_imports'])}")
    for arrow in result["upward_imports"]:
        print(f"  {arrow}")
    print(f"function-local project imports: {result['function_local_project_imports']}")
    print(f"Any in annotations: {result['any_in_annotations']}")
    print(
        "largest classes: "
        + "; ".join(
            f"{c['class']} {c['lines']} lines/{c['methods']} methods" for c in result["largest_classes"]
        )
    )
    print("largest files: " + "; ".join(f"{f['file']} {f['lines']}" for f in result["largest_files"]))


if __name__ == "__main__":
    main()
