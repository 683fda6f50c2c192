"""PostgreSQL for the tests: a fresh database per test on the server RELANCE_TEST_POSTGRES_URL names."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

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
