"""Screening analytics through the API: properties and filters, ranking, statistics, exports, dry runs,
the rescoring funnel and cost accounting (test predictor, SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from typing import Any

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from hub_testing import ApiClient, run_all
from omtx_hub.db.schema import job_scores, jobs
from omtx_hub.hub import Hub
from omtx_hub.worker import Worker

SEQ = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ"
BATCH = "/api/v1/jobs/predict/batch"
LIGANDS = [
    {"name": "aspirin", "smiles": "CC(=O)Oc1ccccc1C(=O)O"},
    {"name": "quinone", "smiles": "O=C1C=CC(=O)C=C1"},  # PAINS quinone_A
    {"name": "ethanol", "smiles": "CCO"},
    {"name": "ethanol again", "smiles": "OCC"},  # the same molecule: same InChIKey
    {"name": "big", "smiles": "CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC(=O)O"},  # 676 Da
    {"name": "ibuprofen", "smiles": "CC(C)Cc1ccc(cc1)C(C)C(=O)O"},
]


def test_filters_exclude_before_compute_with_reasons(api: ApiClient, hub: Hub) -> None:
    body = {
        "batch_name": "filtered",
        "protein_sequence": SEQ,
        "ligands": LIGANDS,
        "filters": {"pains": "exclude", "max_mw": 600, "dedupe": True, "lipinski": True},
    }
    r = api.post(BATCH, json=body)
    assert r.status_code == 202, r.text
    answer = r.json()
    reasons = {f["name"]: f["reason"] for f in answer["filtered"]}
    assert set(reasons) == {"quinone", "ethanol again", "big"} and answer["total"] == 3
    assert reasons["quinone"].startswith("PAINS alert: quinone_A")
    assert reasons["ethanol again"].startswith("duplicate of ligand #2")
    assert "molecular weight" in reasons["big"] or "rule-of-five" in reasons["big"]
    children = {c["input"]["ligand_name"]: c for c in hub.manager.iter_children(answer["batch_id"])}
    assert set(children) == {"aspirin", "ethanol", "ibuprofen"}
    props = children["aspirin"]["input"]["properties"]
    assert props["inchikey"] == "BSYNRYMUTXBXSQ-UHFFFAOYSA-N" and props["heavy_atoms"] == 13
    assert props["molecular_weight_da"] == pytest.approx(180.159, abs=0.01) and props["hbd"] == 1
    assert props["lipinski_violations"] == 0 and 0 < props["qed"] < 1 and props["pains_alerts"] == []
    bad = api.post(BATCH, json={**body, "filters": {"max_mw": -1, "colour": "red"}})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_filters"
    everything = api.post(BATCH, json={**body, "ligands": LIGANDS[1:2]})
    assert everything.status_code == 422 and everything.json()["error"]["code"] == "all_filtered"


def test_ranking_stats_exports_and_cost(api: ApiClient, hub: Hub, worker: Worker) -> None:
    hub.settings.price_per_accelerator_hour = 3.6  # 0.001 per accelerator-second
    ligands = [*LIGANDS, *({"name": f"alkane{i}", "smiles": "C" * (2 + i)} for i in range(14))]
    batch_id = api.post(BATCH, json={"batch_name": "screen", "protein_sequence": SEQ, "ligands": ligands}).json()[
        "batch_id"
    ]
    run_all(worker)
    # properties were computed once, at aggregation (no filters at submission); duplicates are flagged
    children = list(hub.manager.iter_children(batch_id))
    assert all("inchikey" in c["input"]["properties"] for c in children)
    # ... and, as the batch is small, every completed child is among the ends kept for each number
    index = hub.manager.get(batch_id)["results"]["property_index"]
    assert {"qed", "molecular_weight_da", "heavy_atoms"} <= set(index["fields"]) and "inchikey" not in index["fields"]
    with hub.manager.core.read() as conn:
        qeds = conn.execute(
            sa.select(job_scores.c.batch_index, job_scores.c.value).where(
                job_scores.c.batch_parent_id == batch_id, job_scores.c.field == "qed"
            )
        ).all()
    assert sorted(qeds) == sorted((c["batch_index"], c["input"]["properties"]["qed"]) for c in children)

    rows = list(csv.DictReader(io.StringIO(api.get(f"/api/v1/jobs/{batch_id}/export", params={"format": "csv"}).text)))
    assert len(rows) == 20 and [r["rank"] for r in rows] == [str(i) for i in range(1, 21)]
    scores = [float(r["test_score"]) for r in rows]
    assert scores == sorted(scores)  # the test predictor's primary score, ascending
    by_name = {r["ligand_name"]: r for r in rows}
    assert by_name["ethanol again"]["duplicate_of"] == "ethanol" and by_name["ethanol"]["duplicate_of"] == ""
    assert by_name["quinone"]["pains_alerts"] == "quinone_A(370)" and by_name["aspirin"]["cost"] == "0.0"

    by_qed = list(
        csv.DictReader(
            io.StringIO(
                api.get(f"/api/v1/jobs/{batch_id}/export", params={"sort": "qed", "order": "desc", "top": 3}).text
            )
        )
    )
    assert len(by_qed) == 3 and float(by_qed[0]["qed"]) >= float(by_qed[1]["qed"]) >= float(by_qed[2]["qed"])

    document = json.loads(api.get(f"/api/v1/jobs/{batch_id}/export", params={"format": "json"}).text)
    assert document["rank_by"] == "test_score" and len(document["results"]) == 20
    assert document["results"][0]["rank"] == 1 and "accelerator_seconds" in document["columns"]
    assert "test_score" in document["result_columns"] and not {"qed", "cost", "status"} & set(
        document["result_columns"]
    )

    table = pq.read_table(io.BytesIO(api.get(f"/api/v1/jobs/{batch_id}/export", params={"format": "parquet"}).content))
    assert table.num_rows == 20 and table.column("test_score").to_pylist() == scores

    archive = zipfile.ZipFile(io.BytesIO(api.get(f"/api/v1/jobs/{batch_id}/export", params={"format": "zip"}).content))
    manifest = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode())))
    assert len(manifest) == 20 and all(name in archive.namelist() for row in manifest for name in row["files"].split())
    assert sum(1 for n in archive.namelist() if n.endswith("structure.cif")) == 20

    stats = api.get(f"/api/v1/jobs/{batch_id}/stats", params={"top": 5}).json()
    assert stats["counts"]["completed"] == 20 and stats["rank_by"] == "test_score"
    field = stats["fields"]["test_score"]
    assert field["count"] == 20 and field["min"] == min(scores) and sum(field["histogram"]["counts"]) == 20
    assert [t["ligand_name"] for t in stats["top"]] == [r["ligand_name"] for r in rows[:5]]
    assert stats["cost"]["jobs_measured"] == 20 and stats["cost"]["currency"] == "USD"
    assert stats["fields"]["molecular_weight_da"]["max"] > 600
    # the primary score's summary of a finished batch is the one its aggregation kept, not a scan
    kept = hub.manager.get(batch_id)["results"]["score_summary"]
    assert kept == hub.manager.score_summary(batch_id) and kept["count"] == 20 and kept["min"] == min(scores)
    primary = api.get(f"/api/v1/jobs/{batch_id}/stats", params={"fields": "primary", "top": 5}).json()
    assert primary["fields"] == {"test_score": kept}
    with hub.manager.core.write() as conn:
        conn.execute(sa.update(jobs).where(jobs.c.batch_parent_id == batch_id).values(score=None))
    again = api.get(f"/api/v1/jobs/{batch_id}/stats", params={"fields": "primary", "top": 5}).json()
    assert again["fields"] == {"test_score": kept}

    bad = api.get(f"/api/v1/jobs/{batch_id}/export", params={"format": "xlsx"})
    assert bad.status_code == 422


def test_dry_run_estimates_without_queueing(api: ApiClient, hub: Hub, worker: Worker) -> None:
    hub.settings.price_per_accelerator_hour = 2.0
    hub.settings.default_seconds_per_ligand = {"test": 36.0}
    body = {"batch_name": "estimate", "protein_sequence": SEQ, "ligands": LIGANDS}
    r = api.post(BATCH, json=body, params={"dry_run": "true"})
    assert r.status_code == 200, r.text
    estimate = r.json()
    assert estimate["dry_run"] and estimate["ligands"] == 6 and estimate["seconds_per_ligand"] == 36.0
    assert estimate["estimated_accelerator_seconds"] == 216.0 and estimate["estimated_cost"] == 0.12
    assert "DEFAULT" in estimate["basis"] and hub.manager.list_jobs(owner=None, limit=10) == []
    api.post(BATCH, json=body)
    run_all(worker)
    observed = api.post(BATCH, json=body, params={"dry_run": "true"}).json()
    assert observed["basis"].startswith("median of the last 6 completed jobs")
    assert observed["seconds_per_ligand"] is not None and observed["seconds_per_ligand"] < 36


def test_rescore_the_top_k_as_a_linked_batch(api: ApiClient, hub: Hub, worker: Worker) -> None:
    ligands = [{"name": f"alkane{i}", "smiles": "C" * (2 + i)} for i in range(8)]
    source = api.post(BATCH, json={"batch_name": "dock", "protein_sequence": SEQ, "ligands": ligands}).json()[
        "batch_id"
    ]
    run_all(worker)
    best = list(csv.DictReader(io.StringIO(api.get(f"/api/v1/jobs/{source}/export", params={"top": 3}).text)))
    r = api.post(f"/api/v1/jobs/batch/{source}/rescore", json={"top_k": 3, "predictor": "test"})
    assert r.status_code == 202, r.text
    linked = hub.manager.get(r.json()["batch_id"])
    assert linked["input"]["source"] == {
        "batch_id": source,
        "rank_by": "test_score",
        "direction": "asc",
        "top_k": 3,
        "sent": 3,
    }
    names = [c["input"]["ligand_name"] for c in hub.manager.iter_children(linked["job_id"])]
    assert names == [row["ligand_name"] for row in best] and linked["name"] == "dock top 3 → test"
    missing = api.post(f"/api/v1/jobs/batch/{source}/rescore", json={"top_k": 3, "predictor": "nope"})
    assert missing.status_code == 422 and missing.json()["error"]["code"] == "unknown_predictor"


def test_properties_of_a_large_batch_are_computed_in_parallel_once(hub: Hub) -> None:
    from omtx_hub.aggregate import fill_properties
    from omtx_hub.domain import Ligand
    from omtx_hub.ligands import ligand_properties
    from omtx_hub.queue import BatchSubmission

    smiles = [lig["smiles"] for lig in LIGANDS]
    n = 2_400  # enough for a process pool on a machine with two or more cores
    sub = BatchSubmission(
        owner="local",
        predictor="test",
        protein_sequence=SEQ,
        batch_name="big",
        max_attempts=1,
        ligands=[Ligand(f"c{i}", smiles[i % len(smiles)]) for i in range(n)],
    )
    batch_id = hub.manager.submit_batch(sub).record["job_id"]
    assert fill_properties(hub.manager, batch_id) == n
    expected = [ligand_properties(s) for s in smiles]
    for child in hub.manager.iter_children(batch_id):
        assert child["input"]["properties"] == expected[child["batch_index"] % len(smiles)]
    assert fill_properties(hub.manager, batch_id) == 0  # once


def _compute_in_this_process(smiles: list[str], answers: Any) -> None:
    from omtx_hub.ligands import properties_of_many
    from omtx_hub.parallel import map_chunks

    # per_process=2: a pool would be tried for this many ligands
    answers.put(map_chunks(properties_of_many, smiles, per_process=2, chunk=2))


def test_properties_are_computed_inside_a_daemonic_process() -> None:
    """A Worker embedded in a daemonic process (which may not start children) computes them serially."""
    import multiprocessing

    from omtx_hub.ligands import ligand_properties

    smiles = [lig["smiles"] for lig in LIGANDS]
    ctx = multiprocessing.get_context("spawn")
    answers = ctx.Queue()
    child = ctx.Process(target=_compute_in_this_process, args=(smiles, answers), daemon=True)
    child.start()
    result = answers.get(timeout=60)
    child.join(10)
    assert child.exitcode == 0 and result == [ligand_properties(s) for s in smiles]
