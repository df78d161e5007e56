"""The result store on S3 (an S3-compatible moto server on loopback, see conftest): layout, downloads, prune."""

from __future__ import annotations

import json
import time
from typing import Any

from hub_testing import ApiClient
from omtx_hub.app import create_app
from omtx_hub.domain import Ligand
from omtx_hub.hub import Hub
from omtx_hub.queue import BatchSubmission
from omtx_hub.worker import Worker
from omtx_test_predictor import TestPredictor

SEQ = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ"


def screen(n: int, **params: Any) -> BatchSubmission:
    return BatchSubmission(
        owner="local",
        predictor="test",
        protein_sequence=SEQ,
        batch_name="s3",
        ligands=[Ligand(f"l{i}", "C" * (1 + i)) for i in range(n)],
        max_attempts=3,
        params=params,
    )


def test_layout_and_downloads_on_s3(s3_hub: Hub) -> None:
    batch_id = s3_hub.manager.submit_batch(screen(3)).record["job_id"]
    worker = Worker(s3_hub.settings, s3_hub.manager, s3_hub.store, {"test": TestPredictor()})
    while worker.run_once():
        pass
    worker._maintenance()
    store = s3_hub.store
    assert store.list_files(f"batches/{batch_id}") == [
        "batch_results.csv",
        "batch_results.json",
        "batch_results.parquet",
        "best_poses.sdf",
    ]
    children = list(s3_hub.manager.iter_children(batch_id))
    for child in children:
        assert store.list_files(f"batches/{batch_id}/jobs/{child['job_id']}") == [
            "input.json",
            "results.json",
            "structure.cif",
        ]
    assert store.list_files(f"cache/targets/{children[0]['target_key']}") == ["target.json"]

    key, _ = s3_hub.keys.create("local")
    api = ApiClient(create_app(hub=s3_hub), api_key=key)
    listed = api.get(f"/api/v1/jobs/{children[1]['job_id']}/files").json()["files"]
    assert {f["name"] for f in listed} == {"input.json", "results.json", "structure.cif"}
    body = api.get(f"/api/v1/jobs/{children[1]['job_id']}/files/results.json")
    assert body.status_code == 200 and json.loads(body.content)["results"] == children[1]["results"]
    csv_text = api.get(f"/api/v1/jobs/{batch_id}/files/batch_results.csv").text
    assert len(csv_text.splitlines()) == 4
    api.close()


def test_prune_removes_rows_and_files(s3_hub: Hub) -> None:
    batch_id = s3_hub.manager.submit_batch(screen(2)).record["job_id"]
    worker = Worker(s3_hub.settings, s3_hub.manager, s3_hub.store, {"test": TestPredictor()})
    while worker.run_once():
        pass
    assert s3_hub.manager.prune(time.time() - 3600) == []  # nothing that old
    pruned = s3_hub.manager.prune(time.time() + 1)
    assert pruned == [(batch_id, batch_id)]
    s3_hub.store.delete_dir(s3_hub.store.batch_dir(batch_id))
    assert s3_hub.store.list_files(f"batches/{batch_id}") == []
    assert s3_hub.manager.list_jobs() == [] and s3_hub.manager.events(batch_id) == []
