"""Ranked reads of large batches: each job's primary score and each ligand's InChIKey in their own
indexed columns, copied from the JSON they already sit in; and each batch's result columns, kept
from now on (NULL for the batches before: their exports read the columns from the children).

The back-fill copies ``results[<primary score>]`` of completed jobs of the shipped predictors (the
names as declared when this revision was written: a migration is a snapshot) and
``input.properties.inchikey`` of every child, in one UPDATE per field, so a hub upgraded with
finished batches ranks them from the index at once. A plugin predictor's older jobs keep a NULL
score; its batches are ranked from their JSON as before.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

PRIMARY_SCORES = {"vina": "vina_score_kcal_mol", "boltz2": "affinity_probability_binary"}


def upgrade() -> None:
    op.add_column("jobs", sa.Column("score", sa.Float(), nullable=True))
    op.add_column("jobs", sa.Column("inchikey", sa.String(27), nullable=True))
    op.add_column("jobs", sa.Column("result_columns", sa.JSON(), nullable=True))
    postgres = op.get_bind().dialect.name == "postgresql"
    for predictor, name in PRIMARY_SCORES.items():
        if postgres:  # results is json: ->> gives text, json_typeof keeps only numbers
            value = f"CAST(results ->> '{name}' AS DOUBLE PRECISION)"
            number = f"json_typeof(results -> '{name}') = 'number'"
        else:
            value = f"json_extract(results, '$.\"{name}\"')"
            # a document an older hub wrote with a bare NaN is not valid JSON, and json_type would
            # fail the whole UPDATE: skipped here, mended (and scored) by 0008
            number = f"CASE WHEN json_valid(results) THEN json_type(results, '$.\"{name}\"') END IN ('integer', 'real')"
        op.execute(
            f"UPDATE jobs SET score = {value} "
            f"WHERE predictor = '{predictor}' AND status = 'completed' AND results IS NOT NULL AND {number}"
        )
    if postgres:
        key = "input -> 'properties' ->> 'inchikey'"
        text = "json_typeof(input -> 'properties' -> 'inchikey') = 'string'"
    else:
        key = "json_extract(input, '$.properties.inchikey')"
        text = "json_type(input, '$.properties.inchikey') = 'text'"
    op.execute(f"UPDATE jobs SET inchikey = {key} WHERE batch_parent_id IS NOT NULL AND {text}")
    op.create_index(
        "ix_jobs_parent_score",
        "jobs",
        ["batch_parent_id", "score", "batch_index"],
        sqlite_where=sa.text("score IS NOT NULL"),
        postgresql_where=sa.text("score IS NOT NULL"),
    )
    op.create_index(
        "ix_jobs_parent_inchikey",
        "jobs",
        ["batch_parent_id", "inchikey", "batch_index"],
        sqlite_where=sa.text("inchikey IS NOT NULL"),
        postgresql_where=sa.text("inchikey IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_parent_inchikey", table_name="jobs")
    op.drop_index("ix_jobs_parent_score", table_name="jobs")
    op.drop_column("jobs", "result_columns")
    op.drop_column("jobs", "inchikey")
    op.drop_column("jobs", "score")
