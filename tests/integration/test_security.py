"""Access control: keys, isolation between owners (404, never 403), revocation, limits, hostile input."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest

from hub_testing import ApiClient
from omtx_hub.hub import Hub
from omtx_hub.worker import Worker
from omtx_test_predictor import TestPredictor

SEQ = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ"
DATA = Path(str(files("omtx_hub.demo"))) / "1iep"
BOX = {"mode": "box", "center": [15.19, 53.903, 16.917], "size": [20, 20, 20]}


def client(hub: Hub, app: Any, owner: str, admin: bool = False) -> ApiClient:
    key, _ = hub.keys.create(owner, admin=admin)
    return ApiClient(app, api_key=key)


@pytest.fixture
def world(hub: Hub, app: Any) -> Iterator[dict[str, Any]]:
    """Two owners with a job, a batch and a target each; everything run once by a worker."""
    alice, bob, admin = client(hub, app, "alice"), client(hub, app, "bob"), client(hub, app, "ops", admin=True)
    objects: dict[str, dict[str, str]] = {}
    for name, c in (("alice", alice), ("bob", bob)):
        target = c.post(
            "/api/v1/targets",
            data={"name": f"{name}-t", "binding_site": json.dumps(BOX)},
            files={"receptor": ("r.pdb", (DATA / "1iep_receptorH.pdb").read_bytes())},
        ).json()
        job = c.post("/api/v1/jobs/predict", json={"protein_sequence": SEQ, "ligand_smiles": "CCO"}).json()
        batch = c.post(
            "/api/v1/jobs/predict/batch",
            json={
                "batch_name": name,
                "protein_sequence": SEQ,
                "ligands": [{"name": "a", "smiles": "CCO"}, {"name": "b", "smiles": "CCN"}],
            },
        ).json()
        hook = c.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"}).json()
        objects[name] = {
            "target": target["target_id"],
            "job": job["job_id"],
            "batch": batch["batch_id"],
            "webhook": hook["webhook_id"],
        }
    worker = Worker(hub.settings, hub.manager, hub.store, {"test": TestPredictor()})
    while worker.run_once():
        pass
    worker._maintenance()
    for name in ("alice", "bob"):
        objects[name]["child"] = next(hub.manager.iter_children(objects[name]["batch"]))["job_id"]
    yield {"alice": alice, "bob": bob, "admin": admin, "ids": objects}
    for c in (alice, bob, admin):
        c.close()


def reads_for(ids: dict[str, str]) -> list[str]:
    job, batch, child, target = ids["job"], ids["batch"], ids["child"], ids["target"]
    return [
        f"/api/v1/jobs/{job}/status",
        f"/api/v1/jobs/{job}",
        f"/api/v1/jobs/{job}/events",
        f"/api/v1/jobs/{job}/files",
        f"/api/v1/jobs/{job}/files/results.json",
        f"/api/v1/jobs/{batch}/status",
        f"/api/v1/jobs/{batch}",
        f"/api/v1/jobs/batch/{batch}/children",
        f"/api/v1/jobs/{batch}/files/batch_results.csv",
        f"/api/v1/jobs/{batch}/export/poses.sdf",
        f"/api/v1/jobs/{batch}/export/structures.zip",
        f"/api/v1/jobs/{child}/status",
        f"/api/v1/jobs/{child}/files/structure.cif",
        f"/api/v1/targets/{target}",
        f"/api/v1/targets/{target}/files/receptor.pdb",
        f"/api/v1/jobs/{batch}/export?format=csv",
        f"/api/v1/jobs/{batch}/stats",
        f"/api/v1/webhooks/{ids['webhook']}/deliveries",
    ]


def requests_for(ids: dict[str, str]) -> list[tuple[str, str, dict[str, Any]]]:
    job, batch, child, target = ids["job"], ids["batch"], ids["child"], ids["target"]
    calls: list[tuple[str, str, dict[str, Any]]] = [("GET", path, {}) for path in reads_for(ids)]
    calls += [
        ("POST", "/api/v1/jobs/predict", {"json": {"target_id": target, "ligand_smiles": "CCO", "predictor": "vina"}}),
        ("POST", f"/api/v1/jobs/{job}/retry", {}),
        ("POST", f"/api/v1/jobs/{batch}/retry", {}),
        ("POST", f"/api/v1/jobs/{child}/cancel", {}),
        ("POST", f"/api/v1/jobs/batch/{batch}/rescore", {"json": {"top_k": 1, "predictor": "test"}}),
        ("DELETE", f"/api/v1/webhooks/{ids['webhook']}", {}),
    ]
    return calls


def test_isolation_matrix(world: dict[str, Any]) -> None:
    for me, other in (("alice", "bob"), ("bob", "alice")):
        c = world[me]
        for method, path, kwargs in requests_for(world["ids"][other]):
            r = c.request(method, path, **kwargs)
            assert r.status_code == 404, (me, method, path, r.status_code, r.text)
            assert r.json()["error"]["code"].endswith("not_found")
        for path in reads_for(world["ids"][me]):
            assert c.get(path).status_code == 200, (me, path)
        listed = {j["job_id"] for j in c.get("/api/v1/jobs").json()["items"]}
        assert listed == {world["ids"][me]["job"], world["ids"][me]["batch"]}
        assert [t["target_id"] for t in c.get("/api/v1/targets").json()["items"]] == [world["ids"][me]["target"]]
    admin = world["admin"]
    for who in ("alice", "bob"):
        for path in reads_for(world["ids"][who]):
            assert admin.get(path).status_code == 200, path
    assert len(admin.get("/api/v1/jobs").json()["items"]) == 4


def test_own_state_changes_still_work(world: dict[str, Any]) -> None:
    ids = world["ids"]["alice"]
    alice = world["alice"]
    assert alice.post(f"/api/v1/jobs/{ids['job']}/retry").status_code == 409  # completed: not retryable, but found
    assert alice.post(f"/api/v1/jobs/{ids['child']}/cancel").status_code == 409


def test_requests_without_a_valid_key_are_401(hub: Hub, app: Any) -> None:
    anonymous = ApiClient(app)
    for method, path in [
        ("GET", "/api/v1/jobs"),
        ("POST", "/api/v1/jobs/predict"),
        ("GET", "/api/v1/targets"),
        ("GET", "/metrics"),
        ("GET", "/api/v1/jobs/job_x/status"),
    ]:
        r = anonymous.request(method, path)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", path
    assert anonymous.get("/healthz").status_code == 200 and anonymous.get("/readyz").status_code == 200
    assert anonymous.get("/openapi.json").status_code == 200
    for header in (
        {"Authorization": "Bearer omtx_forged"},
        {"X-API-Key": "omtx_" + "x" * 43},
        {"Authorization": "Basic x"},
    ):
        assert anonymous.get("/api/v1/jobs", headers=header).status_code == 401
    assert anonymous.get("/", follow_redirects=False).headers["location"].startswith("/login")
    anonymous.close()


def test_a_leaked_key_stops_working_after_revocation(hub: Hub, app: Any) -> None:
    key, record = hub.keys.create("carol")
    c = ApiClient(app, api_key=key)
    assert c.get("/api/v1/jobs").status_code == 200
    listed = json.dumps(hub.keys.list())
    assert key not in listed and "key_hash" not in listed and record["prefix"] in listed  # prefix only
    hub.keys.revoke(record["prefix"])
    r = c.get("/api/v1/jobs")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert hub.keys.verify(key) is None
    c.close()


def test_sessions_need_csrf_for_changes_and_end_with_the_key(hub: Hub, app: Any) -> None:
    key, record = hub.keys.create("erin")
    browser = ApiClient(app)
    form = browser.get("/login")
    csrf = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    r = browser.post("/login", data={"api_key": key, "csrf": csrf, "next": "//evil.example"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert "httponly" in r.headers["set-cookie"].lower() and "samesite=strict" in r.headers["set-cookie"].lower()
    assert browser.get("/api/v1/jobs").status_code == 200
    body = {"protein_sequence": SEQ, "ligand_smiles": "CCO"}
    denied = browser.post("/api/v1/jobs/predict", json=body)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "csrf_failed"
    page = browser.get("/").text
    token = page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
    assert browser.post("/api/v1/jobs/predict", json=body, headers={"x-csrf-token": token}).status_code == 202
    hub.keys.revoke(record["key_id"])
    assert browser.get("/api/v1/jobs").status_code == 401
    browser.close()


def test_rate_limit_and_quotas_with_owner_overrides(hub: Hub, app: Any) -> None:
    key, _ = hub.keys.create("frank")
    c = ApiClient(app, api_key=key)
    hub.keys.set_owner_limits("frank", {"submissions_per_minute": 3, "max_batch_size": 2})
    body = {"protein_sequence": SEQ, "ligand_smiles": "CCO"}
    assert [c.post("/api/v1/jobs/predict", json=body).status_code for _ in range(3)] == [202, 202, 202]
    limited = c.post("/api/v1/jobs/predict", json=body)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    hub.keys.set_owner_limits("frank", {"submissions_per_minute": 100, "max_pending_jobs": 4})
    batch = {
        "batch_name": "b",
        "protein_sequence": SEQ,
        "ligands": [{"name": f"l{i}", "smiles": "C"} for i in range(3)],
    }
    assert c.post("/api/v1/jobs/predict/batch", json=batch).json()["error"]["code"] == "batch_too_large"
    assert c.post("/api/v1/jobs/predict", json=body).status_code == 202  # 4 unfinished: at the limit
    over = c.post("/api/v1/jobs/predict", json=body)
    assert over.status_code == 429 and over.json()["error"]["code"] == "rate_limited"
    assert "4 unfinished jobs" in over.json()["error"]["message"]
    hub.keys.set_owner_limits("frank", {"max_pending_jobs": None, "max_batch_size": None})
    assert c.post("/api/v1/jobs/predict/batch", json=batch).status_code == 202
    hub.keys.set_owner_limits("frank", {"max_body_bytes": 2048})
    big = {
        "batch_name": "big",
        "protein_sequence": SEQ,
        "ligands": [{"name": f"l{i}", "smiles": "C"} for i in range(90)],
    }
    too_big = c.post("/api/v1/jobs/predict/batch", json=big)
    assert too_big.status_code == 413 and "owner's limit of 2048" in too_big.json()["error"]["message"]
    c.close()


def test_secrets_are_not_logged_and_errors_carry_no_traces(
    hub: Hub, app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key, _ = hub.keys.create("grace")
    c = ApiClient(app, api_key=key)
    c.post("/api/v1/jobs/predict", json={"protein_sequence": SEQ, "ligand_smiles": "CCO"})
    bad = c.get("/api/v1/jobs", params={"cursor": "%%%"})
    assert "Traceback" not in bad.text
    assert key not in caplog.text and key[12:] not in caplog.text
    c.close()
