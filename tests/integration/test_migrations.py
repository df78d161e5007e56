"""Migrations produce exactly the declared schema, on SQLite and on PostgreSQL, and re-running is a no-op."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from omtx_hub.db import create_db_engine, metadata, migrate


def test_migrations_match_the_declared_schema(database_url: str) -> None:
    engine = create_db_engine(database_url)
    migrate(engine)
    migrate(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []
        assert context.get_current_revision() == "0006"
    engine.dispose()
