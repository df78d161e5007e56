"""Every endpoint of the API, in-process over ASGI, and every kind of bad input."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hub_testing import ApiClient, run_all
from omtx_hub.hub import Hub
from omtx_hub.worker import Worker

SEQ = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ"
PREDICT = "/api/v1/jobs/predict"
BATCH = "/api/v1/jobs/predict/batch"


def ligands(n: int) -> list[dict[str, str]]:
    return [{"name": f"lig{i}", "smiles": "C" * (1 + i % 7)} for i in range(n)]


def error(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return body["error"]  # type: ignore[no-any-return]


def test_predict_status_record_events_and_files(api: ApiClient, hub: Hub, worker: Worker) -> None:
    r = api.post(PREDICT, json={"protein_sequence": SEQ, "ligand_smiles": "CCO", "ligand_name": "ethanol"})
    assert r.status_code == 202
    job_id = r.json()["job_id"]
    assert r.json()["status"] == "pending"
    status = api.get(f"/api/v1/jobs/{job_id}/status").json()
    assert status["status"] == "pending" and status["progress"] is None and status["warnings"] == []
    run_all(worker)
    status = api.get(f"/api/v1/jobs/{job_id}/status").json()
    assert status["status"] == "completed" and status["results"]["heavy_atoms"] == 3
    record = api.get(f"/api/v1/jobs/{job_id}").json()
    assert record["input"]["ligand_smiles"] == "CCO" and record["attempts"] == 1 and record["predictor"] == "test"
    events = api.get(f"/api/v1/jobs/{job_id}/events").json()["events"]
    assert [(e["from"], e["to"]) for e in events] == [
        (None, "pending"),
        ("pending", "running"),
        ("running", "completed"),
    ]
    files = {f["name"] for f in api.get(f"/api/v1/jobs/{job_id}/files").json()["files"]}
    assert files == {"input.json", "results.json", "structure.cif"}
    download = api.get(f"/api/v1/jobs/{job_id}/files/results.json")
    assert download.status_code == 200 and json.loads(download.content)["results"] == status["results"]
    assert api.get(f"/api/v1/jobs/{job_id}/files/nothing.cif").status_code == 404
    assert api.get(f"/api/v1/jobs/{job_id}/files/..%2F..%2Fhub.db").status_code == 404


def test_batch_progress_children_pagination_and_results(api: ApiClient, worker: Worker) -> None:
    r = api.post(
        BATCH, json={"batch_name": "screen", "protein_sequence": SEQ, "ligands": ligands(7), "max_concurrent": 4}
    )
    assert r.status_code == 202
    body = r.json()
    batch_id = body["batch_id"]
    assert body["total"] == 7 and body["skipped"] == []
    progress = api.get(f"/api/v1/jobs/{batch_id}/status").json()["progress"]
    assert progress == {"total": 7, "pending": 7, "running": 0, "completed": 0, "failed": 0, "cancelled": 0}
    page1 = api.get(f"/api/v1/jobs/batch/{batch_id}/children", params={"limit": 5}).json()
    assert [c["batch_index"] for c in page1["items"]] == [0, 1, 2, 3, 4] and page1["next_cursor"]
    page2 = api.get(f"/api/v1/jobs/batch/{batch_id}/children", params={"limit": 5, "cursor": page1["next_cursor"]})
    assert [c["ligand_name"] for c in page2.json()["items"]] == ["lig5", "lig6"] and page2.json()["next_cursor"] is None
    run_all(worker)
    status = api.get(f"/api/v1/jobs/{batch_id}/status").json()
    assert status["status"] == "completed" and status["progress"]["completed"] == 7
    assert status["results"]["rank_by"] == "test_score"
    done = api.get(f"/api/v1/jobs/batch/{batch_id}/children", params={"status": "completed", "limit": 100}).json()
    assert len(done["items"]) == 7 and all("test_score" in c["results"] for c in done["items"])
    assert api.get(f"/api/v1/jobs/batch/{batch_id}/children", params={"status": "failed"}).json()["items"] == []
    csv_text = api.get(f"/api/v1/jobs/{batch_id}/files/batch_results.csv").text
    header = csv_text.splitlines()[0].split(",")
    assert header[:6] == ["rank", "job_id", "batch_index", "ligand_name", "ligand_smiles", "status"]
    assert {"test_score", "canonical_smiles", "inchikey", "qed", "accelerator_seconds", "cost"} <= set(header)
    child = done["items"][0]["job_id"]
    assert api.get(f"/api/v1/jobs/{child}/files/structure.cif").status_code == 200


def test_list_jobs_filters_and_cursor(api: ApiClient) -> None:
    for i in range(3):
        api.post(PREDICT, json={"protein_sequence": SEQ, "ligand_smiles": "CCO", "ligand_name": f"e{i}"})
    api.post(BATCH, json={"batch_name": "b", "protein_sequence": SEQ, "ligands": ligands(2)})
    first = api.get("/api/v1/jobs", params={"limit": 2}).json()
    assert [j["job_type"] for j in first["items"]] == ["BATCH_PARENT", "INDIVIDUAL"]
    rest = api.get("/api/v1/jobs", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert len(rest["items"]) == 2 and rest["next_cursor"] is None
    batches = api.get("/api/v1/jobs", params={"job_type": "BATCH_PARENT"}).json()["items"]
    assert len(batches) == 1 and batches[0]["progress"]["total"] == 2
    assert len(api.get("/api/v1/jobs", params={"status": "pending", "job_type": "BATCH_CHILD"}).json()["items"]) == 2
    assert error(api.get("/api/v1/jobs", params={"cursor": "@@@"}))["code"] == "invalid_cursor"


def test_cancel_retry_and_conflicts(api: ApiClient, worker: Worker) -> None:
    batch_id = api.post(
        BATCH, json={"batch_name": "b", "protein_sequence": SEQ, "ligands": ligands(3), "params": {"fail": "permanent"}}
    ).json()["batch_id"]
    run_all(worker)
    assert api.get(f"/api/v1/jobs/{batch_id}/status").json()["status"] == "failed"
    r = api.post(f"/api/v1/jobs/{batch_id}/cancel")
    assert r.status_code == 409 and error(r)["code"] == "job_finished"
    retried = api.post(f"/api/v1/jobs/{batch_id}/retry").json()
    assert retried["status"] == "pending" and retried["progress"]["pending"] == 3
    cancelled = api.post(f"/api/v1/jobs/{batch_id}/cancel").json()
    assert cancelled["status"] == "cancelled" and cancelled["progress"]["cancelled"] == 3
    assert error(api.post(f"/api/v1/jobs/{batch_id}/retry"))["code"] == "nothing_to_retry"
    job_id = api.post(PREDICT, json={"protein_sequence": SEQ, "ligand_smiles": "CCO"}).json()["job_id"]
    assert api.post(f"/api/v1/jobs/{job_id}/retry").status_code == 409
    assert api.post(f"/api/v1/jobs/{job_id}/cancel").json()["status"] == "cancelled"
    assert api.post(f"/api/v1/jobs/{job_id}/retry").json()["status"] == "pending"


def test_idempotent_submission(api: ApiClient) -> None:
    body = {"protein_sequence": SEQ, "ligand_smiles": "CCO", "idempotency_key": "abc"}
    first = api.post(PREDICT, json=body)
    second = api.post(PREDICT, json=body)
    assert (first.status_code, second.status_code) == (202, 200)
    assert first.json()["job_id"] == second.json()["job_id"]
    other = api.post(PREDICT, json={**body, "ligand_smiles": "CCCO"})
    assert other.status_code == 409 and error(other)["code"] == "idempotency_key_reused"
    assert error(other)["details"]["differs"] == ["ligand_smiles"] and "ligand_smiles" in error(other)["message"]
    as_batch = api.post(
        BATCH, json={"batch_name": "b", "protein_sequence": SEQ, "ligands": ligands(2), "idempotency_key": "abc"}
    )
    assert as_batch.status_code == 409 and error(as_batch)["details"]["differs"] == ["endpoint"]
    batch = {"batch_name": "b", "protein_sequence": SEQ, "ligands": ligands(2), "idempotency_key": "xyz"}
    created, repeated = api.post(BATCH, json=batch), api.post(BATCH, json=batch)
    assert (created.status_code, repeated.status_code) == (202, 200)
    assert created.json()["batch_id"] == repeated.json()["batch_id"]
    changed = api.post(BATCH, json={**batch, "ligands": ligands(3), "priority": 5})
    assert changed.status_code == 409 and error(changed)["details"]["differs"] == ["ligands", "priority"]
    csv_text = "".join(f"{lig['name']},{lig['smiles']}\n" for lig in ligands(2))
    uploaded = api.post(
        f"{BATCH}/upload",
        data={"batch_name": "b", "protein_sequence": SEQ, "idempotency_key": "xyz"},
        files={"file": ("l.csv", ("name,smiles\n" + csv_text).encode())},
    )
    assert uploaded.status_code == 409 and error(uploaded)["details"]["differs"] == ["endpoint"]


def test_skip_invalid_reports_skipped_rows(api: ApiClient) -> None:
    rows = [*ligands(3), {"name": "broken", "smiles": "C1CC"}]
    r = api.post(BATCH, json={"batch_name": "b", "protein_sequence": SEQ, "ligands": rows, "skip_invalid": True})
    assert r.status_code == 202
    assert r.json()["total"] == 3
    assert [(s["index"], s["name"]) for s in r.json()["skipped"]] == [(3, "broken")]


def test_status_warns_when_no_worker_runs_the_predictor(api: ApiClient) -> None:
    job_id = api.post(PREDICT, json={"protein_sequence": SEQ, "ligand_smiles": "CCO"}).json()["job_id"]
    warnings = api.get(f"/api/v1/jobs/{job_id}/status").json()["warnings"]
    assert len(warnings) == 1 and "omtx-hub worker --predictor test" in warnings[0]


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        (PREDICT, {"protein_sequence": SEQ, "ligand_smiles": "C1CC"}, 422, "invalid_ligand"),
        (PREDICT, {"protein_sequence": "", "ligand_smiles": "CCO"}, 422, "invalid_protein_sequence"),
        (PREDICT, {"protein_sequence": "MKT1Z", "ligand_smiles": "CCO"}, 422, "invalid_protein_sequence"),
        (PREDICT, {"protein_sequence": "ACGU" * 20 + "J", "ligand_smiles": "CCO"}, 422, "invalid_protein_sequence"),
        (PREDICT, {"protein_sequence": "M" * 5000, "ligand_smiles": "CCO"}, 422, "invalid_protein_sequence"),
        (PREDICT, {"protein_sequence": SEQ, "ligand_smiles": "CCO", "predictor": "nope"}, 422, "unknown_predictor"),
        (PREDICT, {"protein_sequence": SEQ}, 422, "invalid_request"),
        (PREDICT, {"protein_sequence": SEQ, "ligand_smiles": "CCO", "colour": 1}, 422, "invalid_request"),
        (BATCH, {"batch_name": "b", "protein_sequence": SEQ, "ligands": []}, 422, "no_ligands"),
        (BATCH, {"batch_name": "", "protein_sequence": SEQ, "ligands": ligands(1)}, 422, "invalid_batch_name"),
        (
            BATCH,
            {"batch_name": "b", "protein_sequence": SEQ, "ligands": ligands(2), "max_concurrent": 0},
            422,
            "invalid_request",
        ),
        (
            BATCH,
            {"batch_name": "b", "protein_sequence": SEQ, "ligands": ligands(2), "predictor": "nope"},
            422,
            "unknown_predictor",
        ),
    ],
)
def test_bad_input_is_a_clear_4xx_and_nothing_is_stored(
    api: ApiClient, path: str, body: dict[str, Any], status: int, code: str
) -> None:
    r = api.post(path, json=body)
    assert r.status_code == status, r.text
    assert error(r)["code"] == code
    assert api.get("/api/v1/jobs", params={"limit": 5}).json()["items"] == []


def test_every_bad_ligand_is_reported_by_index_and_name(api: ApiClient) -> None:
    rows = [
        {"name": "ok", "smiles": "CCO"},
        {"name": "bad1", "smiles": "C1CC"},
        {"name": "ok", "smiles": "CC"},
        {"name": "bad2", "smiles": "not a smiles"},
        {"name": "bad3", "smiles": "C(C)(C)(C)(C)C"},
    ]
    r = api.post(BATCH, json={"batch_name": "b", "protein_sequence": SEQ, "ligands": rows})
    assert r.status_code == 422
    problems = error(r)["details"]["ligands"]
    assert [(p["index"], p["name"]) for p in problems] == [(1, "bad1"), (2, "ok"), (3, "bad2"), (4, "bad3")]
    assert "duplicate" in problems[1]["reason"] and "whitespace" in problems[2]["reason"]
    assert api.get("/api/v1/jobs").json()["items"] == []


def test_malformed_json_oversized_body_and_batch_limit(hub: Hub, api: ApiClient) -> None:
    r = api.post(PREDICT, content=b'{"protein_sequence": "MKT", ', headers={"content-type": "application/json"})
    assert r.status_code == 400 and error(r)["code"] == "malformed_json"
    huge = b"x" * (hub.settings.max_body_bytes + 1)
    r = api.post(PREDICT, content=huge, headers={"content-type": "application/json"})
    assert r.status_code == 413 and error(r)["code"] == "payload_too_large"
    hub.settings.max_batch_size = 5
    r = api.post(BATCH, json={"batch_name": "b", "protein_sequence": SEQ, "ligands": ligands(6)})
    assert r.status_code == 413 and error(r)["code"] == "batch_too_large"


def test_unknown_ids_are_404(api: ApiClient) -> None:
    for method, path in [
        ("GET", "/api/v1/jobs/job_nope/status"),
        ("GET", "/api/v1/jobs/job_nope"),
        ("GET", "/api/v1/jobs/batch/batch_nope/children"),
        ("POST", "/api/v1/jobs/job_nope/cancel"),
        ("POST", "/api/v1/jobs/job_nope/retry"),
        ("GET", "/api/v1/jobs/job_nope/files"),
        ("GET", "/api/v1/jobs/job_nope/events"),
        ("GET", "/api/v1/nothing-here"),
    ]:
        r = api.request(method, path)
        assert r.status_code == 404, path
        assert error(r)["code"] in {"job_not_found", "not_found"}
    job_id = api.post(PREDICT, json={"protein_sequence": SEQ, "ligand_smiles": "CCO"}).json()["job_id"]
    assert error(api.get(f"/api/v1/jobs/batch/{job_id}/children"))["code"] == "batch_not_found"


def test_health_ready_metrics_docs(api: ApiClient, admin_api: ApiClient, worker: Worker) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.get("/readyz").json() == {"status": "ready"}
    api.post(BATCH, json={"batch_name": "b", "protein_sequence": SEQ, "ligands": ligands(4)})
    api.post(PREDICT, json={"protein_sequence": SEQ, "ligand_smiles": "CCO", "params": {"fail": "permanent"}})
    run_all(worker)
    assert api.get("/metrics").status_code == 403  # metrics are for operators
    text = admin_api.get("/metrics").text
    assert 'omtx_queue_jobs{status="completed"} 4.0' in text
    assert 'omtx_jobs_finished_total{outcome="failed"} 1.0' in text
    assert "omtx_job_duration_seconds_count 4.0" in text
    assert "omtx_workers_alive 1.0" in text
    schema = api.get("/openapi.json").json()
    assert "/api/v1/jobs/predict/batch" in schema["paths"]
    assert api.get("/docs").status_code == 200


def test_metrics_reuse_the_sums_over_finished_jobs_but_not_the_queue_depth(
    api: ApiClient, hub: Hub, worker: Worker
) -> None:
    from omtx_hub.api.ops import QueueCollector

    def sample(collector: QueueCollector, name: str, **labels: str) -> float:
        return next(
            s.value
            for metric in collector.collect()
            for s in metric.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )

    reused, fresh = QueueCollector(hub.manager, 60, history_seconds=3600), QueueCollector(hub.manager, 60)
    api.post(BATCH, json={"batch_name": "b", "protein_sequence": SEQ, "ligands": ligands(3)})
    run_all(worker)
    assert sample(reused, "omtx_job_duration_seconds_count") == sample(fresh, "omtx_job_duration_seconds_count") == 3
    api.post(BATCH, json={"batch_name": "c", "protein_sequence": SEQ, "ligands": ligands(2)})
    assert sample(reused, "omtx_queue_jobs", status="pending") == 2  # queue depth: read on every scrape
    run_all(worker)
    assert sample(reused, "omtx_job_duration_seconds_count") == 3  # the sums: reused for an hour
    assert sample(fresh, "omtx_job_duration_seconds_count") == 5
    assert sample(reused, "omtx_queue_jobs", status="completed") == 5


def test_batch_from_an_uploaded_ligand_file(api: ApiClient) -> None:
    csv_text = "name,smiles\naspirin,CC(=O)Oc1ccccc1C(=O)O\nethanol,CCO\nbroken,C1CC\n"
    form = {"batch_name": "upload", "protein_sequence": SEQ, "params": "{}", "skip_invalid": "true"}
    r = api.post("/api/v1/jobs/predict/batch/upload", data=form, files={"file": ("l.csv", csv_text.encode())})
    assert r.status_code == 202, r.text
    assert r.json()["total"] == 2 and [s["name"] for s in r.json()["skipped"]] == ["broken"]
    strict = api.post(
        "/api/v1/jobs/predict/batch/upload",
        data={**form, "skip_invalid": "false"},
        files={"file": ("l.csv", csv_text.encode())},
    )
    assert strict.status_code == 422 and error(strict)["code"] == "invalid_ligands"
    bad_file = api.post("/api/v1/jobs/predict/batch/upload", data=form, files={"file": ("l.csv", b"a,b\n1,2\n")})
    assert error(bad_file)["code"] == "invalid_ligand_file"
    bad_params = api.post(
        "/api/v1/jobs/predict/batch/upload",
        data={**form, "params": "{nope"},
        files={"file": ("l.csv", csv_text.encode())},
    )
    assert error(bad_params)["code"] == "invalid_params"


def test_ligand_file_parsing_for_the_ui(api: ApiClient) -> None:
    from pathlib import Path

    sdf = (Path(__file__).parents[1] / "support" / "two.sdf").read_bytes()
    r = api.post("/api/v1/ligands/parse", files={"file": ("two.sdf", sdf)})
    assert r.status_code == 200 and r.json() == {
        "ligands": [{"name": "ethanol", "smiles": "CCO"}, {"name": "ligand_2", "smiles": "C"}],
        "count": 2,
    }
    empty = api.post("/api/v1/ligands/parse", files={"file": ("empty.sdf", b"")})
    assert empty.status_code == 422 and error(empty)["code"] == "invalid_ligand_file"
    assert "empty.sdf" in error(empty)["message"] and "/tmp" not in error(empty)["message"]


def test_a_large_batch_is_checked_on_every_core_with_every_problem_by_index(hub: Hub) -> None:
    from omtx_hub.submission import build_batch_submission

    n = 20_000  # two processes' worth of SMILES checks
    bad = {7: "C1CC", 12_345: "c1cccc1", 19_999: "C C"}
    rows = [(f"l{i}", bad.get(i, "CC(=O)Oc1ccccc1C(=O)O" if i % 2 else "CCN")) for i in range(n)]
    sub = build_batch_submission(
        hub.settings, owner="local", batch_name="big", protein_sequence=SEQ, ligands=rows, skip_invalid=True
    )
    assert [(p["index"], p["smiles"]) for p in sub.skipped] == sorted(bad.items())
    assert sub.skipped[2]["reason"] == "SMILES contains whitespace"
    assert len(sub.ligands) == n - 3 and sub.ligands[7].name == "l8"
