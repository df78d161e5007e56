"""A target's cofactors and ions (Boltz-2 co-folds them with every ligand of every job on it).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # targets created before this revision have none: NULL reads as an empty list
    op.add_column("targets", sa.Column("cofactors", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("targets", "cofactors")
