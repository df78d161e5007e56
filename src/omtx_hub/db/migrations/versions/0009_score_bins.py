"""A batch's primary scores counted in fine bins, ``score_bins`` (batch, bin, count, sum), kept by
each completion of a batch child, so the summary of a running batch is no longer a scan of the
score index (:mod:`omtx_hub.queue.score_bins`).

The back-fill counts the scores every batch child already has (``jobs.score``), a batch at a time
in the order of ``ix_jobs_parent_score``. The bin of a score is computed here as that module does
it: a migration is a snapshot, and a later change of the bins would need its own revision to count
them again.

Revision ID: 0009
Revises: 0008
"""

import struct
from collections import defaultdict

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_SHIFT = 52 - 8  # 8 bits of the mantissa: 256 bins per power of two
_SIGN = 1 << 63


def _bin(score: float) -> int:
    bits = struct.unpack("<Q", struct.pack("<d", score))[0]
    return (-(bits ^ _SIGN) if bits & _SIGN else bits) >> _SHIFT


def upgrade() -> None:
    table = op.create_table(
        "score_bins",
        sa.Column("batch_parent_id", sa.String(48), nullable=False),
        sa.Column("bin", sa.BigInteger(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("batch_parent_id", "bin", name="pk_score_bins"),
        sqlite_with_rowid=False,
    )
    conn = op.get_bind()
    batches = conn.execute(
        sa.text("SELECT DISTINCT batch_parent_id FROM jobs WHERE batch_parent_id IS NOT NULL AND score IS NOT NULL")
    ).scalars()
    for batch_id in list(batches):
        counts: dict[int, list[float]] = defaultdict(lambda: [0, 0.0])
        scores = conn.execute(
            sa.text("SELECT score FROM jobs WHERE batch_parent_id = :b AND score IS NOT NULL ORDER BY score"),
            {"b": batch_id},
        ).scalars()
        for score in scores:
            acc = counts[_bin(score)]
            acc[0] += 1
            acc[1] += score
        op.bulk_insert(
            table,
            [{"batch_parent_id": batch_id, "bin": b, "n": int(n), "total": total} for b, (n, total) in counts.items()],
        )


def downgrade() -> None:
    op.drop_table("score_bins")
