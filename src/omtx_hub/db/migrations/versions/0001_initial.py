"""Initial schema: jobs (records and queue), job_events (audit trail), workers.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
PENDING = sa.text("status = 'pending'")
RUNNING = sa.text("status = 'running'")


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(48), nullable=False),
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
        sa.Column("n_total", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("n_pending", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("n_running", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("n_completed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("n_failed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("n_cancelled", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("max_concurrent", sa.Integer(), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_claimed_at", sa.Float(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("run_after", sa.Float(), nullable=False),
        sa.Column("worker_id", sa.String(100), nullable=True),
        sa.Column("lease_expires_at", sa.Float(), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("results", sa.JSON(), nullable=True),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=True),
        sa.Column("completed_at", sa.Float(), nullable=True),
        sa.Column("wall_seconds", sa.Float(), nullable=True),
        sa.Column("accelerator_seconds", sa.Float(), nullable=True),
        sa.Column("aggregated_at", sa.Float(), nullable=True),
        sa.UniqueConstraint("job_id"),
        sa.UniqueConstraint("owner", "idempotency_key", name="uq_jobs_owner_idempotency_key"),
    )
    op.create_index(
        "ix_jobs_pending_claim",
        "jobs",
        ["batch_parent_id", "id"],
        sqlite_where=PENDING,
        postgresql_where=PENDING,
    )
    op.create_index(
        "ix_jobs_running_lease", "jobs", ["lease_expires_at"], sqlite_where=RUNNING, postgresql_where=RUNNING
    )
    op.create_index(
        "ix_jobs_running_worker", "jobs", ["worker_id"], sqlite_where=RUNNING, postgresql_where=RUNNING
    )
    op.create_index("ix_jobs_parent_index", "jobs", ["batch_parent_id", "batch_index"])
    op.create_index("ix_jobs_parent_status_index", "jobs", ["batch_parent_id", "status", "batch_index"])
    op.create_index("ix_jobs_owner_type_id", "jobs", ["owner", "job_type", "id"])
    op.create_index("ix_jobs_type_status", "jobs", ["job_type", "status"])

    op.create_table(
        "job_events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(48), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("worker_id", sa.String(100), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(500), nullable=True),
    )
    op.create_index("ix_job_events_job_id", "job_events", ["job_id", "id"])

    op.create_table(
        "workers",
        sa.Column("worker_id", sa.String(100), primary_key=True),
        sa.Column("hostname", sa.String(200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("predictors", sa.JSON(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("last_seen_at", sa.Float(), nullable=False),
        sa.Column("stopped_at", sa.Float(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("workers")
    op.drop_index("ix_job_events_job_id", table_name="job_events")
    op.drop_table("job_events")
    op.drop_table("jobs")
