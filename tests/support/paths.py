"""Where the tests find the repository's files and the shared specs beside it."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_POLICIES = REPO / "examples" / "policies"
SHARED = REPO.parent / "shared"  # the specs and recorded responses shared by the project's repos
BROKEN_POLICIES = REPO / "tests" / "policies" / "broken_policies"
