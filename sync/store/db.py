"""Engines for the state store and migration to the latest schema (Alembic, run programmatically).

SQLite: WAL (readers never block the writer), foreign keys on, a 30 s busy timeout, and write
transactions opened with BEGIN IMMEDIATE so two processes queue for the write lock instead of
failing on a read->write upgrade. PostgreSQL: psycopg 3 (`postgresql+psycopg://`).

Migrations ship inside the package (sync/store/migrations), so an installed wheel can upgrade its
own database; `upgrade()` is a no-op at head and never drops data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from policies.model.errors import RelanceError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000


class StoreError(RelanceError):
    """The state database cannot be opened, reached or upgraded."""


def parse_url(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(
            f"state: {url!r} is not a database URL",
            hint="use sqlite:///relance.sqlite or postgresql+psycopg://user@host/db",
        ) from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreError(
            f"state: unsupported database {parsed.get_backend_name()!r} in {parsed.render_as_string()}",
            hint="use sqlite:///relance.sqlite or postgresql+psycopg://user@host/db",
        )
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() != "psycopg":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def sqlite_path(url: URL) -> Path | None:
    """The database file of a SQLite URL (None for in-memory databases)."""
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    return Path(database).expanduser().resolve()


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's `begin` event issue BEGIN itself (pysqlite's implicit BEGIN is deferred).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA synchronous = NORMAL")  # safe with WAL: a crash loses no committed txn
    cursor.close()


def _sqlite_begin(connection: sa.Connection) -> None:
    immediate = connection.get_execution_options().get("sqlite_immediate", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def create_engine(url: str | URL, *, create: bool = True) -> Engine:
    """An engine configured for the store. `create=False` refuses to create a missing SQLite file."""
    parsed = parse_url(url) if isinstance(url, str) else url
    path = sqlite_path(parsed)
    if path is not None:
        if not path.exists() and not create:
            raise StoreError(f"state: {path} does not exist", hint="run `relance sync` once to create it")
        if not path.parent.is_dir():
            raise StoreError(f"state: folder {path.parent} does not exist", hint="create it or fix `state:`")
        engine = sa.create_engine(parsed)
        sa.event.listen(engine, "connect", _sqlite_connect)
        sa.event.listen(engine, "begin", _sqlite_begin)
        return engine
    if parsed.get_backend_name() == "sqlite":  # in-memory: one shared connection
        engine = sa.create_engine(
            parsed, poolclass=sa.pool.StaticPool, connect_args={"check_same_thread": False}
        )
        sa.event.listen(engine, "connect", _sqlite_connect)
        sa.event.listen(engine, "begin", _sqlite_begin)
        return engine
    try:
        return sa.create_engine(parsed, pool_pre_ping=True)
    except NoSuchModuleError as error:  # pragma: no cover - psycopg is a dependency
        raise StoreError(f"state: {error}", hint="pip install 'psycopg[binary]'") from None


def writer(engine: Engine) -> Engine:
    """The same engine whose transactions take the write lock up front on SQLite."""
    return engine.execution_options(sqlite_immediate=True)


def alembic_config(engine: Engine | None = None) -> Config:
    config = Config()
    config.set_main_option("path_separator", "os")
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("version_locations", str(MIGRATIONS / "versions"))
    if engine is not None:
        config.set_main_option(
            "sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%")
        )
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` (default: the latest). Safe to run at every start."""
    config = alembic_config(engine)
    try:
        with writer(engine).begin() as connection:
            if connection.dialect.name == "postgresql":  # two processes starting at once: one migrates
                connection.execute(
                    sa.text("SELECT pg_advisory_xact_lock(hashtext('relance'), hashtext('migrate'))")
                )
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    except OperationalError as error:
        raise StoreError(
            f"state: cannot open {engine.url.render_as_string(hide_password=True)}: {_first_line(error)}",
            hint="check `state:` in relance.yaml and that the database server is running",
        ) from None


def _first_line(error: Exception) -> str:
    text = str(getattr(error, "orig", None) or error)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__
