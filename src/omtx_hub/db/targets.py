"""Docking targets in the database: created once, then read by submissions and the API."""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from omtx_hub.db.engine import read_connection, transaction
from omtx_hub.db.schema import targets
from omtx_hub.errors import NotFound

__all__ = ["TargetRepository"]

Record = dict[str, Any]


class TargetRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def create(self, record: Record) -> Record:
        row = {**record, "created_at": record.get("created_at", time.time())}
        with transaction(self.engine) as conn:
            conn.execute(targets.insert(), row)
        return self.get(row["target_id"])

    def get(self, target_id: str, owner: str | None = None) -> Record:
        with read_connection(self.engine) as conn:
            row = conn.execute(sa.select(targets).where(targets.c.target_id == target_id)).first()
        if row is None or (owner is not None and row.owner != owner):
            raise NotFound(f"no target with id {target_id!r}", code="target_not_found")
        return dict(row._mapping)

    def list(self, owner: str | None, limit: int = 50, before_id: int | None = None) -> list[Record]:
        """Newest first; ``owner=None`` lists every owner's targets (admins)."""
        query = sa.select(targets).order_by(targets.c.id.desc()).limit(limit)
        if owner is not None:
            query = query.where(targets.c.owner == owner)
        if before_id is not None:
            query = query.where(targets.c.id < before_id)
        with read_connection(self.engine) as conn:
            return [dict(r._mapping) for r in conn.execute(query)]
