"""Shared fixtures.

State fixtures run every test on both backends: SQLite (a file in tmp_path) and PostgreSQL (a fresh
database per test, created on the server named by RELANCE_TEST_POSTGRES_URL and dropped afterwards,
so parallel pytest-xdist workers never share state).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.postgres import PG_ENV, PG_SKIP, fresh_postgres_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL for an empty state database, on each backend in turn."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.sqlite'}"
        return
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(PG_SKIP)
    with fresh_postgres_database(base) as url:
        yield url


@pytest.fixture
def store(store_url: str) -> Iterator[object]:
    """An open Store at the latest schema (sync.store.Store), closed after the test."""
    from sync.store import open_store

    opened = open_store(store_url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture(autouse=True)
def _fresh_rate_limiters() -> Iterator[None]:
    """Client-side limiters live in a per-process registry: no test inherits another's budget."""
    from connectors.limits import reset_limiters

    reset_limiters()
    yield
    reset_limiters()
