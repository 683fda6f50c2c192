"""Shared fixtures.

State fixtures run every test on both backends: SQLite (a file in tmp_path) and PostgreSQL (a fresh
database per test, created on the server named by RELANCE_TEST_POSTGRES_URL and dropped afterwards,
so parallel pytest-xdist workers never share state).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

PG_ENV = "RELANCE_TEST_POSTGRES_URL"
PG_SKIP = (
    "PostgreSQL tests need RELANCE_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test "
    "(set by .ci/run)"
)


@contextmanager
def fresh_postgres_database(base_url: str) -> Iterator[str]:
    """CREATE DATABASE relance_t_<uuid> on the server of `base_url`; yield its URL; drop it after."""
    url = sa.make_url(base_url)
    if url.get_backend_name() != "postgresql":
        raise pytest.UsageError(f"{PG_ENV} must be a postgresql+psycopg:// URL, got {base_url!r}")
    url = url.set(drivername="postgresql+psycopg")
    name = f"relance_t_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


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
