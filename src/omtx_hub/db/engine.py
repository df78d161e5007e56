"""Engine construction for SQLite (WAL, one writer at a time) and PostgreSQL, and schema migration."""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from omtx_hub.errors import QueueUnavailable

__all__ = ["create_db_engine", "driver_errors_translated", "dump_json", "migrate", "read_connection", "transaction"]

_MIGRATIONS = Path(__file__).parent / "migrations"
_ADVISORY_LOCK = 4_242_001  # any constant shared by every process that migrates


def _finite(value: Any) -> Any:
    """``value`` with every NaN and infinity replaced by None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def dump_json(value: Any) -> str:
    """A JSON column's text, written by orjson (several times faster than ``json``: a million-ligand
    submission writes two documents per child); by ``json`` what orjson refuses (keys that are not
    text, integers beyond 64 bits). NaN and infinities (a predictor's failed estimate) are stored as
    null either way: they are not JSON, PostgreSQL refuses them (the completion of such a job failed
    there) and SQLite's JSON functions cannot read a document that holds one."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return json.dumps(_finite(value), allow_nan=False)


def _json_loads(text: str | bytes) -> Any:
    """A JSON column decoded by orjson (several times faster than ``json``: a million-row export
    decodes three documents per row), or by ``json`` for what orjson refuses: integers beyond 64
    bits, and the NaN that a SQLite file written before :func:`dump_json` may hold."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def create_db_engine(url: str, *, pool_size: int = 5) -> sa.Engine:
    """Build the engine. ``postgresql://`` URLs use psycopg 3; SQLite files get WAL and BEGIN IMMEDIATE."""
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite"):
        path = sa.make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url,
            connect_args={"timeout": 30, "check_same_thread": False},
            json_serializer=dump_json,
            json_deserializer=_json_loads,
        )
        _configure_sqlite(engine)
        return engine
    return sa.create_engine(
        url,
        pool_size=pool_size,
        max_overflow=10,
        pool_pre_ping=True,
        json_serializer=dump_json,
        json_deserializer=_json_loads,
    )


@contextmanager
def driver_errors_translated() -> Iterator[None]:
    """The one place where a driver's "cannot reach the database" becomes :class:`QueueUnavailable`.

    Operational errors (server down or restarting, connection lost, SQLite locked past its busy
    timeout) are the ones a caller can wait out; every other driver error is a bug and propagates.
    """
    try:
        yield
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        first_line = str(exc.orig if exc.orig is not None else exc).splitlines()[0][:200]
        raise QueueUnavailable(f"the database is unavailable: {first_line}") from exc


@contextmanager
def transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A write transaction (committed on success, rolled back on error), driver errors translated."""
    with driver_errors_translated(), engine.begin() as conn:
        yield conn


@contextmanager
def read_connection(engine: sa.Engine, *, snapshot: bool = False) -> Iterator[sa.Connection]:
    """A connection for reads only, driver errors translated.

    SQLite: a plain BEGIN (no write lock; WAL lets it run beside the writer), so every statement
    sees the database as the first one did. PostgreSQL: autocommit, which saves the BEGIN and
    ROLLBACK round trips of every read; each statement still sees committed data only, exactly as
    it would inside a READ COMMITTED transaction, but each its own. ``snapshot``: one read-only
    REPEATABLE READ transaction instead, for reads whose statements must agree with each other.
    """
    options: dict[str, Any] = {"readonly": True}
    if engine.dialect.name == "postgresql":
        options["isolation_level"] = "REPEATABLE READ" if snapshot else "AUTOCOMMIT"
        if snapshot:
            options["postgresql_readonly"] = True
    with driver_errors_translated(), engine.connect().execution_options(**options) as conn:
        yield conn


def _configure_sqlite(engine: sa.Engine) -> None:
    # pysqlite's own transaction handling begins lazily and DEFERRED; a claim must hold the write
    # lock from its first read, so we switch it off and emit BEGIN IMMEDIATE ourselves.
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # readers (execution option readonly=True) take no lock; WAL lets them run beside the writer
        readonly = conn.get_execution_options().get("readonly", False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def migrate(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``. Safe to call from several processes at once on PostgreSQL."""
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _ADVISORY_LOCK})
            conn.commit()
        try:
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
            conn.commit()
        finally:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _ADVISORY_LOCK})
                conn.commit()
