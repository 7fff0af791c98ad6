"""Sessions and transactions over one engine."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from bot.db.engine import location, make_engine
from bot.db.migrate import current_revision, head_revision
from bot.errors import ConfigError


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        # SQLite has one writer at a time, and a writer that finds the lock taken sleeps
        # in growing steps (up to tens of ms) before it looks again. Writers of this
        # process queue on a lock of ours instead, which hands over at once; SQLite's own
        # waiting is left for other processes (the break-glass CLI beside the bot).
        self._writers = threading.Lock() if engine.dialect.name == "sqlite" else nullcontext()
        reader = engine.execution_options(read_only=True)
        self._read_sessions = sessionmaker(reader, expire_on_commit=False)
        if engine.dialect.name == "postgresql":
            reader = engine.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        self._snapshot_sessions = sessionmaker(reader, expire_on_commit=False)

    @classmethod
    def from_url(cls, url: str) -> Store:
        return cls(make_engine(url))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with self._writers, self._sessions.begin() as session:
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A read-only transaction. On SQLite it takes no write lock (WAL lets it read
        beside a writer); a writer's BEGIN IMMEDIATE is only for what may write."""
        with self._read_sessions.begin() as session:
            yield session
            session.rollback()

    @contextmanager
    def snapshot(self) -> Iterator[Session]:
        """A read-only transaction that sees the database as it was at its first read,
        to the end: REPEATABLE READ on PostgreSQL, a deferred read transaction on SQLite
        (WAL). Neither holds up a writer, however long it runs."""
        with self._snapshot_sessions.begin() as session:
            yield session
            session.rollback()

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def require_migrated(self) -> None:
        current, head = current_revision(self.engine), head_revision()
        if current != head:
            raise ConfigError(
                f"DATABASE_URL: the database at {location(self.engine.url)} is at revision "
                f"{current or 'none'}, not {head}: run `escbot migrate`"
            )

    def dispose(self) -> None:
        self.engine.dispose()
