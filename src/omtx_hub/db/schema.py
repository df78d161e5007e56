"""The declared schema (SQLAlchemy Core). Migrations must produce exactly this; a test compares them.

Timestamps are UNIX seconds (float): portable between SQLite and PostgreSQL and cheap to compare in
the claim query. The API renders them as ISO 8601.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "api_keys",
    "job_events",
    "job_scores",
    "jobs",
    "metadata",
    "owners",
    "score_bins",
    "targets",
    "webhook_deliveries",
    "webhooks",
    "workers",
]

metadata = sa.MetaData()

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_pending = sa.text("status = 'pending'")
_running = sa.text("status = 'running'")
_scored = sa.text("score IS NOT NULL")
_keyed = sa.text("inchikey IS NOT NULL")

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.String(48), nullable=False, unique=True),
    sa.Column("job_type", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("owner", sa.String(100), nullable=False),
    sa.Column("name", sa.String(300), nullable=True),
    sa.Column("predictor", sa.String(40), nullable=False),
    sa.Column("params", sa.JSON(), nullable=False),
    sa.Column("target_key", sa.String(64), nullable=False),
    sa.Column("input", sa.JSON(), nullable=False),
    sa.Column("batch_parent_id", sa.String(48), nullable=True),
    sa.Column("batch_index", sa.Integer(), nullable=True),
    # progress counters, parents only; updated in the same transaction as each child's transition
    sa.Column("n_total", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("n_pending", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("n_running", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("n_completed", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("n_failed", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("n_cancelled", sa.Integer(), nullable=False, server_default="0"),
    # parents: every one-cell result field its children reported, in first-seen order, kept with each
    # completion; a whole-batch export heads its table with it without reading every child (0007;
    # NULL: a batch from before, whose columns are read from its children)
    sa.Column("result_columns", sa.JSON(), nullable=True),
    # scheduling
    sa.Column("max_concurrent", sa.Integer(), nullable=True),
    sa.Column("priority", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("last_claimed_at", sa.Float(), nullable=True),
    # queue state
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("max_attempts", sa.Integer(), nullable=False),
    sa.Column("run_after", sa.Float(), nullable=False),
    sa.Column("worker_id", sa.String(100), nullable=True),
    sa.Column("lease_expires_at", sa.Float(), nullable=True),
    sa.Column("cancel_requested", sa.Boolean(), nullable=False, server_default=sa.false()),
    # outcome
    sa.Column("results", sa.JSON(), nullable=True),
    sa.Column("error", sa.JSON(), nullable=True),
    # the predictor's primary score (a copy of one number in ``results``), written with the
    # completion: a batch is ranked from an index instead of from every child's JSON (0007)
    sa.Column("score", sa.Float(), nullable=True),
    # the ligand's InChIKey (a copy of ``input.properties.inchikey``), written at submission: a
    # row's duplicate is found by an index lookup (0007)
    sa.Column("inchikey", sa.String(27), nullable=True),
    sa.Column("idempotency_key", sa.String(200), nullable=True),
    sa.Column("idempotency_request", sa.JSON(), nullable=True),  # endpoint + a digest per field of the request
    sa.Column("created_at", sa.Float(), nullable=False),
    sa.Column("started_at", sa.Float(), nullable=True),
    sa.Column("completed_at", sa.Float(), nullable=True),
    sa.Column("wall_seconds", sa.Float(), nullable=True),
    sa.Column("accelerator_seconds", sa.Float(), nullable=True),
    sa.Column("aggregated_at", sa.Float(), nullable=True),
    sa.UniqueConstraint("owner", "idempotency_key", name="uq_jobs_owner_idempotency_key"),
    # claim: pending jobs of one batch (or of no batch) in submission order
    sa.Index(
        "ix_jobs_pending_claim",
        "batch_parent_id",
        "id",
        sqlite_where=_pending,
        postgresql_where=_pending,
    ),
    # reaper and heartbeat: running jobs by lease and by worker
    sa.Index("ix_jobs_running_lease", "lease_expires_at", sqlite_where=_running, postgresql_where=_running),
    sa.Index("ix_jobs_running_worker", "worker_id", sqlite_where=_running, postgresql_where=_running),
    # children pages, with and without a status filter
    sa.Index("ix_jobs_parent_index", "batch_parent_id", "batch_index"),
    sa.Index("ix_jobs_parent_status_index", "batch_parent_id", "status", "batch_index"),
    # ranked reads: a batch's scored children best first, either direction, ties by submission order
    sa.Index(
        "ix_jobs_parent_score",
        "batch_parent_id",
        "score",
        "batch_index",
        sqlite_where=_scored,
        postgresql_where=_scored,
    ),
    # duplicates: the first child of a batch with a given InChIKey
    sa.Index(
        "ix_jobs_parent_inchikey",
        "batch_parent_id",
        "inchikey",
        "batch_index",
        sqlite_where=_keyed,
        postgresql_where=_keyed,
    ),
    # job lists
    sa.Index("ix_jobs_owner_type_id", "owner", "job_type", "id"),
    sa.Index("ix_jobs_type_status", "job_type", "status"),
)

# A batch child's other scores (a predictor's declared fields with a direction, besides the primary
# one in ``jobs.score``): one row per number, written in the completion transaction (a completed
# child never changes), deleted with its batch. The key is the index: a batch's best by such a field
# are one range of it, in either direction, ties in submission order (0008). On SQLite the table is
# that index alone (WITHOUT ROWID).
job_scores = sa.Table(
    "job_scores",
    metadata,
    sa.Column("batch_parent_id", sa.String(48), nullable=False),
    sa.Column("field", sa.String(100), nullable=False),
    sa.Column("value", sa.Float(), nullable=False),
    sa.Column("batch_index", sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint("batch_parent_id", "field", "value", "batch_index", name="pk_job_scores"),
    sqlite_with_rowid=False,
)

# A batch's primary scores counted in fine bins (:mod:`omtx_hub.queue.score_bins`): how many of its
# completed children's scores fall in each, and their sum, kept by each completion in its
# transaction (a completed child's score never changes), deleted with the batch. The summary of a
# batch that is still running is read from them and a few short ranges of ``ix_jobs_parent_score``
# instead of a scan of it (0009).
score_bins = sa.Table(
    "score_bins",
    metadata,
    sa.Column("batch_parent_id", sa.String(48), nullable=False),
    sa.Column("bin", sa.BigInteger(), nullable=False),
    sa.Column("n", sa.Integer(), nullable=False),
    sa.Column("total", sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint("batch_parent_id", "bin", name="pk_score_bins"),
    sqlite_with_rowid=False,
)

job_events = sa.Table(
    "job_events",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.String(48), nullable=False),
    sa.Column("from_status", sa.String(16), nullable=True),
    sa.Column("to_status", sa.String(16), nullable=False),
    sa.Column("at", sa.Float(), nullable=False),
    sa.Column("worker_id", sa.String(100), nullable=True),
    sa.Column("attempt", sa.Integer(), nullable=True),
    sa.Column("reason", sa.String(500), nullable=True),
    sa.Index("ix_job_events_job_id", "job_id", "id"),
)

workers = sa.Table(
    "workers",
    metadata,
    sa.Column("worker_id", sa.String(100), primary_key=True),
    sa.Column("hostname", sa.String(200), nullable=False),
    sa.Column("pid", sa.Integer(), nullable=False),
    sa.Column("predictors", sa.JSON(), nullable=False),
    sa.Column("started_at", sa.Float(), nullable=False),
    sa.Column("last_seen_at", sa.Float(), nullable=False),
    sa.Column("stopped_at", sa.Float(), nullable=True),
    sa.Column("paused_reason", sa.String(500), nullable=True),  # why it claims nothing now (the store refuses writes)
)

targets = sa.Table(
    "targets",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("target_id", sa.String(48), nullable=False, unique=True),
    sa.Column("owner", sa.String(100), nullable=False),
    sa.Column("name", sa.String(300), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("protein_sequence", sa.Text(), nullable=False),
    sa.Column("chains", sa.JSON(), nullable=False),
    sa.Column("site", sa.JSON(), nullable=False),
    sa.Column("files", sa.JSON(), nullable=False),
    sa.Column("warnings", sa.JSON(), nullable=False),
    sa.Column("cofactors", sa.JSON(), nullable=True),  # Boltz-2 cofactors and ions; NULL: none (before 0006)
    sa.Column("created_at", sa.Float(), nullable=False),
    sa.Index("ix_targets_owner_id", "owner", "id"),
)

owners = sa.Table(
    "owners",
    metadata,
    sa.Column("owner", sa.String(100), primary_key=True),
    sa.Column("limits", sa.JSON(), nullable=False),
    sa.Column("created_at", sa.Float(), nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_id", sa.String(48), primary_key=True),
    sa.Column("owner", sa.String(100), nullable=False),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False),
    sa.Column("admin", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("label", sa.String(200), nullable=False, server_default=""),
    sa.Column("created_at", sa.Float(), nullable=False),
    sa.Column("revoked_at", sa.Float(), nullable=True),
    sa.Index("ix_api_keys_prefix", "prefix"),
)

webhooks = sa.Table(
    "webhooks",
    metadata,
    sa.Column("webhook_id", sa.String(48), primary_key=True),
    sa.Column("owner", sa.String(100), nullable=False),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("secret", sa.String(200), nullable=False),
    sa.Column("events", sa.JSON(), nullable=False),
    sa.Column("created_at", sa.Float(), nullable=False),
    sa.Column("deleted_at", sa.Float(), nullable=True),
    sa.Index("ix_webhooks_owner", "owner"),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("delivery_id", sa.String(48), nullable=False, unique=True),
    sa.Column("webhook_id", sa.String(48), nullable=False),
    sa.Column("event", sa.String(40), nullable=False),
    sa.Column("job_id", sa.String(48), nullable=False),
    sa.Column("payload", sa.JSON(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.Float(), nullable=False),
    sa.Column("last_error", sa.String(500), nullable=True),
    sa.Column("response_status", sa.Integer(), nullable=True),
    sa.Column("created_at", sa.Float(), nullable=False),
    sa.Column("delivered_at", sa.Float(), nullable=True),
    sa.Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    sa.Index("ix_webhook_deliveries_webhook", "webhook_id", "id"),
)
