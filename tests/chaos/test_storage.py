"""Chaos, third scenario: the result store fails mid-screen (an object store that goes away, a local disk
that fills up). Jobs wait without spending attempts, resume, and never complete without files."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from conftest import make_settings
from hub_testing import ApiClient, fill_disk
from omtx_hub.app import create_app
from omtx_hub.domain import Ligand
from omtx_hub.hub import Hub, open_hub
from omtx_hub.queue import BatchSubmission
from omtx_hub.worker import Worker
from omtx_test_predictor import TestPredictor

SEQ = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ"


def screen(n: int) -> BatchSubmission:
    return BatchSubmission(
        owner="local",
        predictor="test",
        protein_sequence=SEQ,
        batch_name="outage",
        ligands=[Ligand(f"l{i}", "C" * (1 + i)) for i in range(n)],
        max_attempts=3,
    )


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
    assert {c["status"] for c in failed_once} == {"pending"} and {c["attempts"] for c in failed_once} == {0}
    assert {c["error"]["code"] for c in failed_once} == {"storage_unavailable"}
    assert all(c["results"] is None for c in failed_once)
    while worker.run_once():
        pass
    done = list(s3_hub.manager.iter_children(batch_id))
    assert {c["status"] for c in done} == {"completed"} and {c["attempts"] for c in done} == {1}
    for c in done:
        assert "results.json" in s3_hub.store.list_files(f"batches/{batch_id}/jobs/{c['job_id']}")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs: a real filesystem that fills up and answers ENOSPC."""
    root = tmp_path / "small"
    root.mkdir()
    mounted = (
        os.geteuid() == 0
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(root)], capture_output=True
        ).returncode
        == 0
    )
    if not mounted:
        pytest.skip("mounting a small tmpfs needs root; tests/integration/test_worker.py covers refused writes")
    yield root
    subprocess.run(["umount", "-l", str(root)], check=False)


def test_a_full_disk_pauses_the_screen_without_burning_it(small_disk: Path, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}", storage_url=str(small_disk / "results"))
    hub = open_hub(settings)
    api = ApiClient(create_app(hub=hub), api_key=hub.keys.create("local")[0])
    batch_id = hub.manager.submit_batch(screen(30)).record["job_id"]
    fill_disk(small_disk / "ballast")
    worker = Worker(settings, hub.manager, hub.store, {"test": TestPredictor()})
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not any(
            (c["error"] or {}).get("code") == "storage_unavailable" for c in hub.manager.iter_children(batch_id)
        ):
            assert time.monotonic() < deadline, "the worker never met the full disk"
            time.sleep(0.1)
        time.sleep(2.0)  # backing off through at least one more probe
        children = list(hub.manager.iter_children(batch_id))
        assert {c["status"] for c in children} == {"pending"} and {c["attempts"] for c in children} == {0}
        assert [p for p in small_disk.rglob("*") if ".tmp-" in p.name] == []  # failed writes left nothing behind
        assert api.get("/readyz").json() == {
            "status": "degraded",
            "store": "unwritable",
            "reason": "No space left on device",
            "paused_workers": 1,
        }
        warnings = api.get(f"/api/v1/jobs/{batch_id}/status").json()["warnings"]
        assert len(warnings) == 1 and "No space left on device" in warnings[0] and "no attempt is spent" in warnings[0]
        (small_disk / "ballast").unlink()  # space is freed: the screen resumes by itself
        deadline = time.monotonic() + 90
        while hub.manager.get(batch_id)["status"] != "completed":
            assert time.monotonic() < deadline, "the screen did not resume"
            time.sleep(0.2)
        done = list(hub.manager.iter_children(batch_id))
        assert {c["status"] for c in done} == {"completed"} and {c["attempts"] for c in done} == {1}
        while api.get("/readyz").json() != {"status": "ready"}:  # the API re-checks the store every 2 s
            assert time.monotonic() < deadline, "/readyz did not recover"
            time.sleep(0.2)
    finally:
        worker.stop(grace_seconds=1)
        thread.join(timeout=10)
        api.close()
        hub.close()
