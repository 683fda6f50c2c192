"""What the policy and payload mutations share: walking a tree, drawing odd scalars, header breakers."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

Draw = Callable[[Any], Any]  # hypothesis' `draw` inside an @st.composite

# Characters that end a header line somewhere (CR, LF, NUL, Unicode line and paragraph separators...).
HEADER_BREAKERS = ("\r", "\n", "\x00", "\u2028", "\u2029", "\x85", "\x0b", "\x0c")
INJECTION = ("Bcc: victim@evil.example", "X-Injected: yes", "To: a@evil.example")


def containers(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    """Every mapping and list in the tree, with its path."""
    found: list[tuple[tuple[Any, ...], Any]] = []
    if isinstance(node, dict):
        found.append((path, node))
        for key, value in node.items():
            found.extend(containers(value, (*path, key)))
    elif isinstance(node, list):
        found.append((path, node))
        for index, value in enumerate(node):
            found.extend(containers(value, (*path, index)))
    return found


def odd_scalar(
    draw: Draw, constants: tuple[Any, ...], *, kinds: int, text_size: int, int_bound: int, specials: bool
) -> Any:
    """Text, a huge integer, a float (NaN and infinities when `specials`), or, for the other
    `kinds - 3` draws of the first integer, one of `constants`, deep-copied so that no mutation ever
    changes the shared constants."""
    kind = draw(st.integers(0, kinds - 1))
    if kind == 0:
        return draw(st.text(max_size=text_size))
    if kind == 1:
        return draw(st.integers(min_value=-int_bound, max_value=int_bound))
    if kind == 2:
        return draw(st.floats(allow_nan=specials, allow_infinity=specials))
    return copy.deepcopy(draw(st.sampled_from(constants)))


def mutate_list(
    draw: Draw, items: list[Any], operation: str, odd: Callable[[Draw], Any], wrap: Callable[[Any], Any]
) -> None:
    """One mutation of a list in a tree: an item dropped, swapped for an odd value, nulled, doubled,
    wrapped; the list emptied (any other operation); an odd value appended to an empty list."""
    if not items:
        items.append(odd(draw))
        return
    index = draw(st.integers(0, len(items) - 1))
    if operation == "drop":
        del items[index]
    elif operation in ("swap", "rename"):
        items[index] = odd(draw)
    elif operation == "null":
        items[index] = None
    elif operation in ("insert", "duplicate"):
        items.insert(index, copy.deepcopy(draw(st.sampled_from([items[index], odd(draw)]))))
    elif operation == "wrap":
        items[index] = wrap(items[index])
    else:
        items.clear()
