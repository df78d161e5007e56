"""A batch child's other scores in their own indexed table, ``job_scores`` (the fields of its
predictor with a direction, besides the primary one in ``jobs.score``), so a batch's best by any of
them are one index range instead of a pass over every child's JSON.

The back-fill copies those fields of the completed children of the shipped predictors (the names as
declared when this revision was written: a migration is a snapshot), one INSERT per field.

Before it, on SQLite, result documents that are not valid JSON are rewritten: a hub before 0007
wrote a NaN or an infinity as the bare words ``NaN`` / ``Infinity``, which Python reads back but
SQLite's JSON functions refuse ("malformed JSON": the back-fills, and the best by a field, failed on
such a batch). They become null, as the hub writes them now, and the job's primary score is filled
in where 0007 skipped the document. PostgreSQL never stored them (its ``json`` type refuses them).

Revision ID: 0008
Revises: 0007
"""

import json
import math
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

PRIMARY_SCORES = {"vina": "vina_score_kcal_mol", "boltz2": "affinity_probability_binary"}
OTHER_SCORES = {
    "vina": ("ligand_efficiency_kcal_mol_per_heavy_atom", "rmsd_to_reference_angstrom"),
    "boltz2": ("affinity_pred_value", "confidence_score", "pic50_derived", "delta_g_kcal_mol_derived"),
}


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _repair_sqlite_results(conn: sa.Connection) -> None:
    broken = conn.execute(
        sa.text(
            "SELECT id, predictor, status, results FROM jobs WHERE results IS NOT NULL AND NOT json_valid(results)"
        )
    ).all()
    for row in broken:
        try:
            results = _finite(json.loads(row.results))
        except ValueError:
            continue  # not JSON at all: nothing this revision can mend
        primary = PRIMARY_SCORES.get(row.predictor)
        score = _number(results.get(primary)) if primary and row.status == "completed" else None
        conn.execute(
            sa.text("UPDATE jobs SET results = :results, score = COALESCE(score, :score) WHERE id = :id"),
            {"results": json.dumps(results, allow_nan=False), "score": score, "id": row.id},
        )


def upgrade() -> None:
    op.create_table(
        "job_scores",
        sa.Column("batch_parent_id", sa.String(48), nullable=False),
        sa.Column("field", sa.String(100), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("batch_index", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("batch_parent_id", "field", "value", "batch_index", name="pk_job_scores"),
        sqlite_with_rowid=False,
    )
    conn = op.get_bind()
    postgres = conn.dialect.name == "postgresql"
    if not postgres:
        _repair_sqlite_results(conn)
    for predictor, names in OTHER_SCORES.items():
        for name in names:
            if postgres:  # results is json: ->> gives text, json_typeof keeps only numbers
                value = f"CAST(results ->> '{name}' AS DOUBLE PRECISION)"
                number = f"json_typeof(results -> '{name}') = 'number'"
            else:
                value = f"json_extract(results, '$.\"{name}\"')"
                number = f"json_type(results, '$.\"{name}\"') IN ('integer', 'real')"
            op.execute(
                "INSERT INTO job_scores (batch_parent_id, field, value, batch_index) "
                f"SELECT batch_parent_id, '{name}', {value}, batch_index FROM jobs "
                f"WHERE predictor = '{predictor}' AND status = 'completed' AND batch_parent_id IS NOT NULL "
                f"AND batch_index IS NOT NULL AND results IS NOT NULL AND {number}"
            )


def downgrade() -> None:
    op.drop_table("job_scores")
