"""The worker loop with the test predictor: files in the storage layout, aggregation, failures, cancel."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from omtx_hub.domain import Ligand
from omtx_hub.errors import StorageError
from omtx_hub.hub import Hub
from omtx_hub.queue import BatchSubmission, JobSubmission
from omtx_hub.storage import ResultStore
from omtx_hub.worker import Worker
from omtx_test_predictor import TestPredictor

SEQ = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ"
SMILES = ["CCO", "c1ccccc1", "CC(=O)Oc1ccccc1C(=O)O", "CC(C)Cc1ccc(cc1)C(C)C(=O)O", "C1CCCCC1N", "OCC(O)CO"]


def screen(n: int, params: dict | None = None, batch_name: str = "s", **kw: object) -> BatchSubmission:
    ligands = [Ligand(f"lig{i}", SMILES[i % len(SMILES)]) for i in range(n)]
    return BatchSubmission(
        owner="local",
        predictor="test",
        protein_sequence=SEQ,
        batch_name=batch_name,
        ligands=ligands,
        max_attempts=3,
        params=params or {},
        **kw,
    )  # type: ignore[arg-type]


@pytest.fixture
def predictor() -> TestPredictor:
    return TestPredictor()


@pytest.fixture
def worker(hub: Hub, predictor: TestPredictor) -> Iterator[Worker]:
    w = Worker(hub.settings, hub.manager, hub.store, {"test": predictor})
    thread = threading.Thread(target=w.run, daemon=True)
    thread.start()
    yield w
    w.stop(grace_seconds=2)
    thread.join(timeout=10)
    assert not thread.is_alive()


def wait_until(check, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def test_batch_runs_to_the_end_with_files_and_ranking(hub: Hub, worker: Worker, predictor: TestPredictor) -> None:
    bid = hub.manager.submit_batch(screen(12)).record["job_id"]
    wait_until(lambda: hub.manager.get(bid)["aggregated_at"] is not None)
    parent = hub.manager.get(bid)
    assert (parent["status"], parent["n_completed"]) == ("completed", 12)
    assert predictor.prepared == [parent["target_key"]]  # per-target work done once
    root = Path(hub.settings.storage_url or "")
    for child in hub.manager.iter_children(bid):
        folder = root / "batches" / bid / "jobs" / child["job_id"]
        assert sorted(p.name for p in folder.iterdir()) == ["input.json", "results.json", "structure.cif"]
        stored = json.loads((folder / "results.json").read_text())
        assert stored["results"] == child["results"]
        assert json.loads((folder / "input.json").read_text())["ligand_smiles"] == child["input"]["ligand_smiles"]
    table = list(csv.DictReader(io.StringIO((root / "batches" / bid / "batch_results.csv").read_text())))
    scores = [float(r["test_score"]) for r in table]
    assert scores == sorted(scores) and [r["rank"] for r in table] == [str(i) for i in range(1, 13)]
    document = json.loads((root / "batches" / bid / "batch_results.json").read_text())
    assert document["rank_by"] == "test_score" and document["counts"]["completed"] == 12
    assert parent["results"]["top"][0]["test_score"] == scores[0]


def test_individual_job_files(hub: Hub, worker: Worker) -> None:
    sub = JobSubmission(
        owner="local", predictor="test", protein_sequence=SEQ, ligand=Ligand("eth", "CCO"), max_attempts=3
    )
    jid = hub.manager.submit_job(sub).record["job_id"]
    wait_until(lambda: hub.manager.get(jid)["status"] == "completed")
    assert hub.store.list_files(f"jobs/{jid}") == ["input.json", "results.json", "structure.cif"]
    assert hub.manager.get(jid)["wall_seconds"] is not None


def test_permanent_failure_fails_only_that_job_and_transient_retries(hub: Hub, worker: Worker, tmp_path: Path) -> None:
    bad = hub.manager.submit_batch(screen(2, {"fail": "permanent"})).record["job_id"]
    flaky = hub.manager.submit_batch(screen(3, {"fail_once_dir": str(tmp_path / "markers")})).record["job_id"]
    wait_until(
        lambda: (
            hub.manager.get(bad)["aggregated_at"] is not None and hub.manager.get(flaky)["aggregated_at"] is not None
        )
    )
    b = hub.manager.get(bad)
    assert (b["status"], b["n_failed"]) == ("failed", 2)
    child = next(hub.manager.iter_children(bad))
    assert child["error"]["code"] == "test_permanent" and child["attempts"] == 1
    f = hub.manager.get(flaky)
    assert (f["status"], f["n_completed"]) == ("completed", 3)
    assert all(c["attempts"] == 2 for c in hub.manager.iter_children(flaky))


def test_unknown_params_fail_with_a_readable_error(hub: Hub, worker: Worker) -> None:
    bid = hub.manager.submit_batch(screen(1, {"colour": "blue"})).record["job_id"]
    wait_until(lambda: hub.manager.get(bid)["status"] == "failed")
    child = next(hub.manager.iter_children(bid))
    assert child["error"] == {"code": "invalid_params", "message": "unknown parameters: colour"}


def test_cancel_stops_a_running_job(hub: Hub, worker: Worker) -> None:
    bid = hub.manager.submit_batch(screen(4, {"delay_seconds": 30})).record["job_id"]
    wait_until(lambda: hub.manager.get(bid)["n_running"] > 0)
    hub.manager.cancel(bid)
    wait_until(lambda: hub.manager.get(bid)["status"] == "cancelled", timeout=10)
    assert hub.manager.get(bid)["n_cancelled"] == 4


def test_stop_releases_unfinished_jobs(hub: Hub, predictor: TestPredictor) -> None:
    w = Worker(hub.settings, hub.manager, hub.store, {"test": predictor})
    thread = threading.Thread(target=w.run, daemon=True)
    thread.start()
    jid = hub.manager.submit_job(
        JobSubmission(
            owner="local",
            predictor="test",
            protein_sequence=SEQ,
            ligand=Ligand("eth", "CCO"),
            max_attempts=3,
            params={"delay_seconds": 30},
        )
    ).record["job_id"]
    wait_until(lambda: hub.manager.get(jid)["status"] == "running")
    w.stop(grace_seconds=0.2)
    thread.join(timeout=10)
    record = hub.manager.get(jid)
    assert (record["status"], record["attempts"]) == ("pending", 0)


def test_storage_failure_retries_and_never_completes_without_files(hub: Hub, predictor: TestPredictor) -> None:
    root = Path(hub.settings.storage_url or "")
    root.mkdir(parents=True, exist_ok=True)
    (root / "jobs").write_text("a file where the jobs folder should be: every write below it fails")
    jid = hub.manager.submit_job(
        JobSubmission(
            owner="local", predictor="test", protein_sequence=SEQ, ligand=Ligand("eth", "CCO"), max_attempts=2
        )
    ).record["job_id"]
    w = Worker(hub.settings, hub.manager, hub.store, {"test": predictor})
    assert w.run_once() == 1
    assert hub.manager.get(jid)["status"] == "pending"
    assert w.run_once() == 1
    record = hub.manager.get(jid)
    assert record["status"] == "failed" and record["error"]["code"] == "storage_error"
    assert record["results"] is None


def test_a_store_that_refuses_writes_holds_jobs_back_without_spending_attempts(
    hub: Hub, predictor: TestPredictor
) -> None:
    root = Path(hub.settings.storage_url or "")
    jid = hub.manager.submit_job(
        JobSubmission(
            owner="local", predictor="test", protein_sequence=SEQ, ligand=Ligand("eth", "CCO"), max_attempts=2
        )
    ).record["job_id"]
    root.rmdir()
    root.write_text("a file where the store's folder should be: every write fails, probes included")
    w = Worker(hub.settings, hub.manager, hub.store, {"test": predictor})
    thread = threading.Thread(target=w.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: (hub.manager.get(jid)["error"] or {}).get("code") == "storage_unavailable")
        record = hub.manager.get(jid)
        assert (record["status"], record["attempts"], record["results"]) == ("pending", 0, None)
        [me] = hub.manager.live_workers(60)
        assert "result store refuses writes" in me["paused_reason"]
        time.sleep(1.5)  # backing off: probing the store, claiming nothing
        record = hub.manager.get(jid)
        assert (record["status"], record["attempts"]) == ("pending", 0)
        root.unlink()
        root.mkdir()
        wait_until(lambda: hub.manager.get(jid)["status"] == "completed")
        wait_until(lambda: hub.manager.live_workers(60)[0]["paused_reason"] is None)
    finally:
        w.stop(grace_seconds=1)
        thread.join(timeout=10)
    assert hub.manager.get(jid)["attempts"] == 1 and (root / "jobs" / jid / "results.json").exists()


class _StoreThatCannotSyncOnce(ResultStore):
    """The local store on a disk whose first flush fails (an I/O error cannot be caused here on purpose)."""

    failures = 1

    def sync(self) -> None:
        if self.failures:
            self.failures -= 1
            super().sync()
            raise StorageError("could not make 9 written files durable: [Errno 5] Input/output error")
        super().sync()


def test_a_micro_batch_whose_files_are_not_durable_completes_nothing(hub: Hub, predictor: TestPredictor) -> None:
    batch_id = hub.manager.submit_batch(screen(3)).record["job_id"]
    store = _StoreThatCannotSyncOnce(hub.settings.storage_url or "")
    w = Worker(hub.settings, hub.manager, store, {"test": predictor})
    assert w.run_once() == 3
    children = list(hub.manager.iter_children(batch_id))
    assert {c["status"] for c in children} == {"pending"}
    assert {c["error"]["code"] for c in children} == {"storage_error"} and all(c["results"] is None for c in children)
    assert hub.manager.get(batch_id)["n_completed"] == 0
    while w.run_once():
        pass
    assert {c["status"] for c in hub.manager.iter_children(batch_id)} == {"completed"}


def test_a_late_heartbeat_answer_does_not_stop_the_next_claim_of_a_job(hub: Hub) -> None:
    """Found by the PostgreSQL-restart chaos test: a heartbeat slowed by the outage saw a job between two
    attempts ("not running"), answered after the worker had claimed it again, and the new attempt was
    stopped as if cancelled."""
    worker = Worker(hub.settings, hub.manager, hub.store, {"test": TestPredictor()})  # not running: driven by hand
    job_id = hub.manager.submit_job(
        JobSubmission(owner="local", predictor="test", protein_sequence=SEQ, ligand=Ligand("e", "CCO"), max_attempts=3)
    ).record["job_id"]
    [first] = hub.manager.claim(worker.worker_id, ["test"], 1)
    worker._active = {job_id: 1}
    real = hub.manager.heartbeat

    def slow_heartbeat(worker_id: str, ids: list[str]) -> set[str]:
        hub.manager.fail(first, worker.worker_id, code="x", message="transient", transient=True)  # back to pending
        answer = real(worker_id, ids)  # sees the job not running: "stop it"
        [again] = hub.manager.claim(worker.worker_id, ["test"], 1)  # the next micro-batch holds attempt 2
        assert again.attempt == 2
        worker._active = {job_id: 2}
        return answer

    hub.manager.heartbeat = slow_heartbeat  # type: ignore[method-assign]
    try:
        worker.heartbeat()
    finally:
        hub.manager.heartbeat = real  # type: ignore[method-assign]
    assert not worker.should_stop(job_id)
    hub.manager.cancel(job_id)
    worker.heartbeat()  # a real cancel request still reaches the running attempt
    assert worker.should_stop(job_id)


def test_a_batch_whose_aggregation_raises_is_tried_again_and_stops_nothing(
    hub: Hub, predictor: TestPredictor, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A defect in one batch's aggregation (injected here: nothing real fails on demand) is logged and
    the batch tried again after a backoff, while the worker goes on with the rest; before, the error
    left the worker's loop, and a restarted worker met the same batch again."""
    import omtx_hub.worker as worker_module
    from omtx_hub.backoff import Backoff

    poisoned = {"on": True}
    real = worker_module.aggregate_batch

    def aggregate(manager, store, batch_id, **kwargs):  # type: ignore[no-untyped-def]
        if poisoned["on"] and manager.get(batch_id)["name"] == "poisoned":
            raise RuntimeError("a defect in this batch's aggregation")
        return real(manager, store, batch_id, **kwargs)

    monkeypatch.setattr(worker_module, "aggregate_batch", aggregate)
    monkeypatch.setattr(worker_module, "_AGGREGATE_BACKOFF", Backoff(first=0.5, cap=0.5))
    settings = hub.settings.model_copy(update={"lease_seconds": 4.0})  # maintenance every second
    w = Worker(settings, hub.manager, hub.store, {"test": predictor})
    thread = threading.Thread(target=w.run, daemon=True)
    with caplog.at_level("ERROR", logger="omtx_hub.worker"):
        thread.start()
        bad = hub.manager.submit_batch(screen(4, batch_name="poisoned")).record["job_id"]
        wait_until(lambda: hub.manager.get(bad)["status"] == "completed")
        good = hub.manager.submit_batch(screen(4)).record["job_id"]
        wait_until(lambda: hub.manager.get(good)["aggregated_at"] is not None)
        wait_until(lambda: sum(r.getMessage() == "aggregation failed" for r in caplog.records) >= 2)  # tried again
        assert thread.is_alive() and hub.manager.get(bad)["aggregated_at"] is None
        poisoned["on"] = False
        wait_until(lambda: hub.manager.get(bad)["aggregated_at"] is not None)
    w.stop(grace_seconds=2)
    thread.join(timeout=10)
    assert not thread.is_alive()
