"""Chaos, third scenario: the result store fails mid-screen. Jobs retry and never complete without files."""

from __future__ import annotations

from moto.server import ThreadedMotoServer
from omtx_test_predictor import TestPredictor

from omtx_hub.domain import Ligand
from omtx_hub.hub import Hub
from omtx_hub.queue.manager import BatchSubmission
from omtx_hub.worker import Worker

SEQ = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ"


def screen(n: int) -> BatchSubmission:
    return BatchSubmission(owner="local", predictor="test", protein_sequence=SEQ, batch_name="outage",
                           ligands=[Ligand(f"l{i}", "C" * (1 + i)) for i in range(n)], max_attempts=3)  # fmt: skip


def test_store_outage_retries_and_never_completes_without_files(
    s3_hub: Hub, s3: tuple[ThreadedMotoServer, str]
) -> None:
    server, _ = s3
    batch_id = s3_hub.manager.submit_batch(screen(2)).record["job_id"]
    worker = Worker(s3_hub.settings, s3_hub.manager, s3_hub.store, {"test": TestPredictor()})
    server.stop()
    try:
        assert worker.run_once() == 2
    finally:
        server.start()
    failed_once = list(s3_hub.manager.iter_children(batch_id))
    assert {c["status"] for c in failed_once} == {"pending"}
    assert {c["error"]["code"] for c in failed_once} == {"storage_error"}
    assert all(c["results"] is None for c in failed_once)
    while worker.run_once():
        pass
    done = list(s3_hub.manager.iter_children(batch_id))
    assert {c["status"] for c in done} == {"completed"} and {c["attempts"] for c in done} == {2}
    for c in done:
        assert "results.json" in s3_hub.store.list_files(f"batches/{batch_id}/jobs/{c['job_id']}")
