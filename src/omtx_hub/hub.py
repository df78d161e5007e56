"""Assembling the parts from settings: database (migrated), queue manager, result store."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from omtx_hub.db import create_db_engine, migrate
from omtx_hub.queue.manager import QueueManager
from omtx_hub.queue.retry import RetryPolicy
from omtx_hub.settings import Settings
from omtx_hub.storage import ResultStore

__all__ = ["Hub", "open_hub"]


@dataclass
class Hub:
    settings: Settings
    engine: sa.Engine
    manager: QueueManager
    store: ResultStore

    def close(self) -> None:
        self.engine.dispose()


def open_hub(settings: Settings, *, run_migrations: bool = True) -> Hub:
    engine = create_db_engine(settings.resolved_database_url())
    if run_migrations:
        migrate(engine)
    manager = QueueManager(
        engine,
        lease_seconds=settings.lease_seconds,
        retry=RetryPolicy(base_seconds=settings.retry_base_seconds, max_delay_seconds=settings.retry_max_seconds),
    )
    return Hub(settings=settings, engine=engine, manager=manager, store=ResultStore(settings.resolved_storage_url()))
