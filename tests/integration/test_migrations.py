"""Migrations produce exactly the declared schema, on SQLite and on PostgreSQL, and re-running is a no-op."""

from __future__ import annotations

import json
import math

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from omtx_hub.db import create_db_engine, metadata, migrate


def test_migrations_match_the_declared_schema(database_url: str) -> None:
    engine = create_db_engine(database_url)
    migrate(engine)
    migrate(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []
        assert context.get_current_revision() == "0009"
    engine.dispose()


def test_0007_back_fills_scores_and_inchikeys(database_url: str) -> None:
    """Batches finished before 0007 are ranked from the index at once: the shipped predictors'
    primary scores of completed jobs and every child's InChIKey are copied out of the JSON; a
    missing, non-numeric or unfinished score stays NULL."""
    engine = create_db_engine(database_url)
    migrate(engine, "0006")
    vina, boltz = "vina_score_kcal_mol", "affinity_probability_binary"
    rows = [  # job_id, predictor, status, results, properties
        ("j-vina", "vina", "completed", {vina: -9.25, "poses": [-9.25, -8.0]}, {"inchikey": "A" * 27}),
        ("j-int", "vina", "completed", {vina: -7}, {"inchikey": "A" * 27}),
        ("j-boltz", "boltz2", "completed", {boltz: 0.75}, {"inchikey": "B" * 27}),
        ("j-text", "vina", "completed", {vina: "n/a"}, {}),
        ("j-none", "vina", "completed", {vina: None}, {"inchikey": None}),
        ("j-failed", "vina", "failed", {vina: -5.0}, {"inchikey": "C" * 27}),
        ("j-plugin", "test", "completed", {"test_score": 1.0}, {"inchikey": "D" * 27}),
    ]
    _insert_children(
        engine,
        [
            {
                "job_id": job_id,
                "status": status,
                "predictor": predictor,
                "input": json.dumps({"ligand_name": job_id, "properties": props}),
                "results": json.dumps(results),
                "parent": "batch-1",
            }
            for job_id, predictor, status, results, props in rows
        ],
    )
    migrate(engine)
    with engine.connect() as conn:
        found = {
            r.job_id: (r.score, r.inchikey) for r in conn.execute(sa.text("SELECT job_id, score, inchikey FROM jobs"))
        }
    assert found == {
        "j-vina": (-9.25, "A" * 27),
        "j-int": (-7.0, "A" * 27),
        "j-boltz": (0.75, "B" * 27),
        "j-text": (None, None),
        "j-none": (None, None),
        "j-failed": (None, "C" * 27),
        "j-plugin": (None, "D" * 27),  # a plugin's score name is not known to the migration
    }
    engine.dispose()


def test_0008_back_fills_other_scores_and_mends_nan_documents(database_url: str) -> None:
    """Completed children finished before 0008 have their other scores in ``job_scores`` (numbers
    only; a failed child's, an individual job's and a plugin's are not copied). On SQLite a result
    document an older hub wrote with a bare NaN (not JSON to SQLite) is rewritten with null and
    gets the primary score 0007 had to skip."""
    engine = create_db_engine(database_url)
    migrate(engine, "0006")
    le, rmsd, affinity = (
        "ligand_efficiency_kcal_mol_per_heavy_atom",
        "rmsd_to_reference_angstrom",
        "affinity_pred_value",
    )
    rows = [  # job_id, predictor, status, parent, results (as the hub stored them)
        ("j-vina", "vina", "completed", "b", json.dumps({"vina_score_kcal_mol": -9.0, le: -0.4, rmsd: None})),
        ("j-rmsd", "vina", "completed", "b", json.dumps({le: -1, rmsd: 1.5})),
        ("j-text", "vina", "completed", "b", json.dumps({le: "n/a"})),
        ("j-failed", "vina", "failed", "b", json.dumps({le: -0.2})),
        ("j-single", "vina", "completed", None, json.dumps({le: -0.3})),
        ("j-boltz", "boltz2", "completed", "c", json.dumps({affinity: 1.25, "confidence_score": 0.5})),
        ("j-plugin", "test", "completed", "c", json.dumps({le: -0.6})),
    ]
    sqlite = engine.dialect.name == "sqlite"
    if sqlite:  # what json.dumps wrote for a NaN before 0007: SQLite cannot read it
        rows.append(("j-nan", "vina", "completed", "b", json.dumps({"vina_score_kcal_mol": -8.5, le: math.nan})))
    _insert_children(
        engine,
        [
            {
                "job_id": job_id,
                "status": status,
                "predictor": predictor,
                "input": "{}",
                "results": results,
                "parent": parent,
            }
            for job_id, predictor, status, parent, results in rows
        ],
    )
    migrate(engine)
    with engine.connect() as conn:
        kept = {
            tuple(r) for r in conn.execute(sa.text("SELECT batch_parent_id, field, value, batch_index FROM job_scores"))
        }
        nan = conn.execute(sa.text("SELECT results, score FROM jobs WHERE job_id = 'j-nan'")).first()
    assert kept == {
        ("b", le, -0.4, 0),
        ("b", le, -1.0, 1),
        ("b", rmsd, 1.5, 1),
        ("c", affinity, 1.25, 5),
        ("c", "confidence_score", 0.5, 5),
    }
    if sqlite:
        assert nan is not None
        assert json.loads(nan.results) == {"vina_score_kcal_mol": -8.5, le: None}
        assert nan.score == -8.5
    engine.dispose()


def _insert_children(engine: sa.Engine, rows: list[dict[str, object]]) -> None:
    """Rows as an older hub left them (JSON as it wrote the text), each at its position in the batch."""
    insert = sa.text(
        "INSERT INTO jobs (job_id, job_type, status, owner, predictor, params, target_key, input, results, "
        "batch_parent_id, batch_index, max_attempts, run_after, created_at) VALUES (:job_id, 'BATCH_CHILD', "
        ":status, 'o', :predictor, '{}', 'k', :input, :results, :parent, :index, 1, 0, 0)"
    )
    with engine.begin() as conn:
        for index, row in enumerate(rows):
            conn.execute(insert, {**row, "index": index})
