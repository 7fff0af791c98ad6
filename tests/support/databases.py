"""Throwaway databases for tests: a migrated template per session, a copy per test.

Only databases this module creates are dropped.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from bot.db import migrate
from bot.db.engine import make_engine

PG_ADMIN_URL = os.environ.get("ESCBOT_TEST_PG_URL", "postgresql://127.0.0.1:5432/test")


def _admin_engine() -> sa.Engine:
    return sa.create_engine(
        make_engine(PG_ADMIN_URL).url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool
    )


def pg_url(name: str) -> str:
    url = make_engine(PG_ADMIN_URL).url.set(database=name)
    return url.render_as_string(hide_password=False)


def create_pg_database(template: str | None = None) -> str:
    name = f"escbot_test_{uuid.uuid4().hex[:12]}"
    engine = _admin_engine()
    with engine.connect() as connection:
        clause = f' TEMPLATE "{template}"' if template else ""
        connection.execute(sa.text(f'CREATE DATABASE "{name}"{clause}'))
    engine.dispose()
    return name


def drop_pg_database(name: str) -> None:
    engine = _admin_engine()
    with engine.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


class DatabaseFactory:
    """Hands out fresh, migrated databases of one kind."""

    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind = kind
        self.workdir = workdir
        self._template: str | None = None
        self._made: list[str] = []

    def _template_name(self) -> str:
        if self._template is None:
            if self.kind == "sqlite":
                path = self.workdir / "template.db"
                engine = make_engine(f"sqlite:///{path}")
                migrate.upgrade(engine)
                engine.dispose()  # the last connection to close folds the WAL into the file
                self._template = str(path)
            else:
                name = create_pg_database()
                self._made.append(name)
                engine = make_engine(pg_url(name))
                migrate.upgrade(engine)
                engine.dispose()
                self._template = name
        return self._template

    def fresh(self, *, migrated: bool = True) -> str:
        if self.kind == "sqlite":
            path = self.workdir / f"{uuid.uuid4().hex[:12]}.db"
            if migrated:
                shutil.copyfile(self._template_name(), path)
            return f"sqlite:///{path}"
        name = create_pg_database(self._template_name() if migrated else None)
        self._made.append(name)
        return pg_url(name)

    def cleanup(self) -> None:
        if self.kind == "postgresql":
            for name in reversed(self._made):
                drop_pg_database(name)
        self._made.clear()


@contextmanager
def database_factory(kind: str, workdir: Path) -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory(kind, workdir)
    try:
        yield factory
    finally:
        factory.cleanup()
