"""Docking targets: receptor structure, binding site box, files in the result store.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "targets",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("target_id", sa.String(48), nullable=False),
        sa.Column("owner", sa.String(100), nullable=False),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("protein_sequence", sa.Text(), nullable=False),
        sa.Column("chains", sa.JSON(), nullable=False),
        sa.Column("site", sa.JSON(), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("warnings", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.UniqueConstraint("target_id"),
    )
    op.create_index("ix_targets_owner_id", "targets", ["owner", "id"])


def downgrade() -> None:
    op.drop_index("ix_targets_owner_id", table_name="targets")
    op.drop_table("targets")
