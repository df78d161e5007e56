"""Database: engine construction, the declared schema and Alembic migrations."""

from omtx_hub.db.engine import create_db_engine, migrate
from omtx_hub.db.schema import job_events, jobs, metadata, targets, workers

__all__ = ["create_db_engine", "job_events", "jobs", "metadata", "migrate", "targets", "workers"]
