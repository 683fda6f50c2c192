"""Engines for the state store, migration to the latest schema (Alembic, run programmatically), and
the unit of work every repository goes through (`Database`).

SQLite: WAL (readers never block the writer), foreign keys on, a 30 s busy timeout, and write
transactions opened with BEGIN IMMEDIATE so two processes queue for the write lock instead of
failing on a read->write upgrade. PostgreSQL: psycopg 3 (`postgresql+psycopg://`).

Migrations ship inside the package (sync/store/migrations), so an installed wheel can upgrade its
own database; `upgrade()` is a no-op at head and never drops data.

The unit of work: `with database.transaction():` binds one connection (one transaction) to the
current context (thread or task); every repository call made inside it, on the same `Database`,
runs on that connection and commits or rolls back with it. Outside one, each call is its own short
transaction, as it always was. A `transaction()` inside another is a savepoint. Never `yield` from a
generator while inside `transaction()`: the binding would follow the generator's consumer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any, NamedTuple

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from connectors.base import Clock, read_clock
from policies.model.errors import RelanceError
from sync.store import schema as t

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
CHUNK = 5000  # rows per executemany (bounded memory, well under SQLite's variable limit per row)
IN_CHUNK = 500  # ids per IN (...) list in streaming lookups


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


# ---------------------------------------------------------------- the unit of work


class _Bound(NamedTuple):
    connection: sa.Connection
    writable: bool


# Connections bound to the current context, per Database (module level: a ContextVar is never freed).
_BOUND: ContextVar[Mapping[Database, _Bound]] = ContextVar(
    "relance_store_bound", default=MappingProxyType({})
)


class Database:
    """One state database: its engine, its dialect's quirks, and the unit of work.

    Repositories never open connections themselves: they call `read()` or `write()`, which join the
    connection bound to the current context (a `transaction()`, or an enclosing `read()`) or else
    open their own for the length of the block."""

    def __init__(self, engine: Engine, clock: Clock | None = None) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._writer = writer(engine)
        self._clock = clock

    def now(self) -> datetime:
        """The run's clock (the workspace's), for every timestamp the repositories write."""
        return read_clock(self._clock)

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    @property
    def path(self) -> Path | None:
        """The SQLite database file (None on PostgreSQL or in memory)."""
        return sqlite_path(self.engine.url)

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------ connections

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """One transaction for every repository call inside the block: committed when the block
        ends, rolled back if it raises. Nested: a savepoint (an inner failure caught inside the outer
        block undoes only the inner writes). On SQLite the write lock is taken up front."""
        bindings = _BOUND.get()
        bound = bindings.get(self)
        if bound is not None and bound.writable:
            with bound.connection.begin_nested():
                yield bound.connection
            return
        if bound is not None:
            raise RuntimeError("a transaction cannot start inside a read of the same store")
        with self._writer.begin() as connection:
            token = _BOUND.set({**bindings, self: _Bound(connection, True)})
            try:
                yield connection
            finally:
                _BOUND.reset(token)

    def write(self) -> AbstractContextManager[sa.Connection]:
        """The current transaction's connection, or a new short write transaction for the block."""
        return _Use(self, write=True)

    def read(self) -> AbstractContextManager[sa.Connection]:
        """The bound connection (a transaction's or an enclosing read's: one consistent view), or a
        new one for the block. The block must not `yield` out of a generator."""
        return _Use(self, write=False)

    @contextmanager
    def stream(self) -> Iterator[sa.Connection]:
        """For a generator that yields rows as it reads them: the transaction's connection, or a
        connection of its own that is never bound (the consumer's own calls meanwhile use theirs)."""
        bound = _BOUND.get().get(self)
        if bound is not None and bound.writable:
            yield bound.connection
            return
        with self.engine.connect() as connection:
            yield connection

    # ------------------------------------------------------------ dialect quirks

    def insert(self, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
        """INSERT with ON CONFLICT support (both dialects spell it the same way)."""
        return postgresql.insert(table) if self.dialect == "postgresql" else sqlite.insert(table)

    @property
    def mark(self) -> str:
        """The driver's positional parameter mark, for SQL sent through the driver."""
        return "?" if self.dialect == "sqlite" else "%s"

    def named_mark(self, name: str) -> str:
        return f":{name}" if self.dialect == "sqlite" else f"%({name})s"

    def driver_converter(self, column: sa.Column[Any]) -> Callable[[Any], Any] | None:
        """Python value -> what the DB driver takes for this column, matching the column types' own
        bind processing (schema.UTCDateTime, schema.Amount, JSON); None when the value goes as is."""
        kind = column.type
        if isinstance(kind, sa.JSON):
            if self.dialect == "sqlite":
                return _sqlite_json
            # Imported here: psycopg is only loaded for PostgreSQL stores (SQLite never pays for it).
            from psycopg.types.json import Json

            return lambda value: None if value is None else Json(value)
        if isinstance(kind, t.UTCDateTime):
            return _sqlite_datetime if self.dialect == "sqlite" else _aware_datetime
        if self.dialect != "sqlite":
            return None
        if isinstance(kind, t.Amount):
            return lambda value: None if value is None else str(value)
        if isinstance(kind, sa.Date):
            return lambda value: None if value is None else value.isoformat()
        if isinstance(kind, sa.Boolean):
            return lambda value: None if value is None else int(value)
        return None


class _Use(AbstractContextManager[sa.Connection]):
    """`Database.read()` / `write()`: join the connection bound to the context (a read joins any,
    a write only a transaction's), or open one and bind it for the block. A plain class, not a
    generator: every repository call goes through one."""

    __slots__ = ("_db", "_opened", "_token", "_write")

    def __init__(self, db: Database, *, write: bool) -> None:
        self._db = db
        self._write = write
        self._opened: AbstractContextManager[sa.Connection] | None = None
        self._token: Token[Mapping[Database, _Bound]] | None = None

    def __enter__(self) -> sa.Connection:
        db = self._db
        bindings = _BOUND.get()
        bound = bindings.get(db)
        if bound is not None and (bound.writable or not self._write):
            return bound.connection
        opened = db._writer.begin() if self._write else db.engine.connect()
        connection = opened.__enter__()
        self._opened = opened
        self._token = _BOUND.set({**bindings, db: _Bound(connection, self._write)})
        return connection

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        opened, token = self._opened, self._token
        if opened is None or token is None:
            return None
        self._opened = self._token = None
        _BOUND.reset(token)
        return opened.__exit__(exc_type, exc, tb)


def loads(payload: Any) -> Any:
    """A JSON column read through the driver: text on SQLite, already decoded on PostgreSQL."""
    return json.loads(payload) if isinstance(payload, str | bytes) else payload


def _sqlite_json(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _aware_datetime(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: the store only takes timezone-aware datetimes")
    return value


def _sqlite_datetime(value: datetime | None) -> str | None:
    # SQLAlchemy's SQLite DATETIME storage format, so ORM-level reads parse what we write here.
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: the store only takes timezone-aware datetimes")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
