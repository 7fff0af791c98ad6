"""Engines for SQLite and PostgreSQL with the same transactional behaviour."""

from __future__ import annotations

import select
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError

from bot.errors import ConfigError

IDLE_PING = 10.0  # seconds a pooled PostgreSQL connection may sit unused before a ping


def normalise_url(url: str | URL) -> URL:
    """`postgres://` (Heroku's and libpq's spelling) and `postgresql://` both mean
    PostgreSQL over psycopg 3 unless a driver is named."""
    parsed = make_url(url)
    backend, _, driver = parsed.drivername.partition("+")
    if backend in {"postgres", "postgresql"}:
        parsed = parsed.set(drivername=f"postgresql+{driver or 'psycopg'}")
    return parsed


def sqlite_file(url: str | URL) -> Path | None:
    """The absolute path of a SQLite database file; None for other databases and for
    in-memory SQLite. A relative path is relative to the working directory."""
    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    if parsed.query.get("uri") in ("true", "1"):  # sqlite:///file:x.db?mode=ro&uri=true
        if parsed.query.get("mode") == "memory":
            return None
        database = database.removeprefix("file:")
    return Path(database).expanduser().absolute()


def location(url: str | URL) -> str:
    """Where the database is, for messages: a SQLite file's absolute path, otherwise the
    URL without its password."""
    path = sqlite_file(url)
    if path is not None:
        return str(path)
    return make_url(url).render_as_string(hide_password=True)


def require_existing(url: str | URL) -> None:
    """Refuse a SQLite file that does not exist rather than let SQLite create an empty
    one (a second, separate audit log); only `escbot migrate` and `serve` create it."""
    path = sqlite_file(url)
    if path is not None and not path.is_file():
        raise ConfigError(
            f"DATABASE_URL: no database at {path}: run `escbot migrate` to create it "
            "there, or set DATABASE_URL to the bot's database"
        )


def make_engine(url: str | URL, **kwargs: Any) -> Engine:
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            parsed, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        _serialise_sqlite_writers(engine)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    # Last in, first out: under light load the same few connections stay warm (and keep
    # the statements psycopg has prepared on them); the rest sit idle, and get pinged.
    kwargs.setdefault("pool_use_lifo", True)
    engine = create_engine(parsed, **kwargs)
    _ping_when_in_doubt(engine)
    return engine


def _ping_when_in_doubt(engine: Engine) -> None:
    """Check a pooled connection before use only when it may be dead, not on every use as
    `pool_pre_ping` does (a round trip, on a kill's path): when its socket has something
    to read while idle (a server that ended the session or closed it says so, and the
    socket reads EOF), or when it sat idle longer than IDLE_PING seconds (a dead peer or
    a dropped route says nothing). A failed ping makes the pool replace the connection.
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        fresh = idle_since is None or time.monotonic() - idle_since < IDLE_PING
        if fresh and not _readable(dbapi_connection):
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError(f"a pooled connection is gone: {exc}") from exc


def _readable(dbapi_connection: Any) -> bool:
    try:
        ready, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(ready)


def _serialise_sqlite_writers(engine: Engine) -> None:
    """Start every transaction with BEGIN IMMEDIATE.

    pysqlite's deferred BEGIN lets two readers both decide to write and then fail to
    upgrade their lock; taking the write lock up front makes SQLite queue them instead.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        read_only = connection.get_execution_options().get("read_only", False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def upsert(dialect: str, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that can say ON CONFLICT, in the dialect's own form."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
