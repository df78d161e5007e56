"""Database: engine construction, the declared schema and Alembic migrations."""

from omtx_hub.db.engine import create_db_engine, migrate
from omtx_hub.db.schema import api_keys, job_events, jobs, metadata, owners, targets, workers

__all__ = ["api_keys", "create_db_engine", "job_events", "jobs", "metadata", "migrate", "owners", "targets", "workers"]
