"""What an idempotent submission asked for (its key reused for another request is refused), and why a
live worker is paused (a result store that refuses writes).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # rows submitted before this revision keep NULL: their key answers any request, as it did then
    op.add_column("jobs", sa.Column("idempotency_request", sa.JSON(), nullable=True))
    op.add_column("workers", sa.Column("paused_reason", sa.String(500), nullable=True))


def downgrade() -> None:
    op.drop_column("workers", "paused_reason")
    op.drop_column("jobs", "idempotency_request")
