"""Chaos on PostgreSQL: workers SIGKILLed mid-screen, and the database restarted mid-screen.

Bounded in time; each scenario writes its figures to bench/results/chaos_*.json and prints them.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from omtx_hub.db import create_db_engine
from omtx_hub.db.schema import job_events, jobs
from omtx_hub.domain import Ligand
from omtx_hub.queue import BatchSubmission, QueueManager

pytestmark = pytest.mark.chaos
ROOT = Path(__file__).parents[2]
BIN = Path(sys.executable).parent
SUPPORT = ROOT / "tests" / "support"
RESULTS = ROOT / "bench" / "results"
SEQ = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ"


def environment(tmp: Path, database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(SUPPORT),
        "OMTX_HOME": str(tmp / "home"),
        "OMTX_DATABASE_URL": database_url,
        "OMTX_STORAGE_URL": str(tmp / "results"),
        "OMTX_PREDICTOR_PLUGINS": json.dumps({"test": "omtx_test_predictor:make_test_predictor"}),
        "OMTX_DEFAULT_PREDICTOR": "test",
        "OMTX_LEASE_SECONDS": "3",
        "OMTX_HEARTBEAT_SECONDS": "0.5",
        "OMTX_POLL_SECONDS": "0.05",
        "OMTX_RETRY_BASE_SECONDS": "0.2",
        "OMTX_MAX_ATTEMPTS": "25",
        "OMTX_CLAIM_BATCH_SIZE": "4",
        "OMTX_LOG_FORMAT": "json",
    }


Chaos = tuple[dict[str, str], Path, sa.Engine, QueueManager]


@pytest.fixture
def chaos(postgres_url: str, tmp_path: Path) -> Iterator[Chaos]:
    """Environment for the hub's processes, a log folder, and a migrated database with its manager;
    the engine is disposed even when the test fails (no connection outlives it)."""
    env = environment(tmp_path, postgres_url)
    logs = tmp_path / "logs"
    logs.mkdir()
    subprocess.run([str(BIN / "omtx-hub"), "db", "migrate"], env=env, check=True, capture_output=True)
    engine = create_db_engine(postgres_url)
    yield env, logs, engine, QueueManager(engine)
    engine.dispose()


def start_worker(env: dict[str, str], logs: Path, n: int) -> subprocess.Popen[bytes]:
    with open(logs / f"worker-{n}.log", "wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [str(BIN / "omtx-hub"), "worker", "--predictor", "test", "--grace-seconds", "2"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def submit(manager: QueueManager, n: int, **params: Any) -> str:
    ligands = [Ligand(f"cpd{i}", ["CCO", "c1ccccc1", "CC(=O)O", "CCN", "C1CCCCC1"][i % 5]) for i in range(n)]
    sub = BatchSubmission(
        owner="local",
        predictor="test",
        protein_sequence=SEQ,
        batch_name="chaos",
        ligands=ligands,
        max_attempts=25,
        params=params,
    )
    return str(manager.submit_batch(sub).record["job_id"])


def check_invariants(engine: sa.Engine, manager: QueueManager, results: Path, batch_id: str, n: int) -> dict[str, int]:
    """Every job completed exactly once, with its files; no orphans; counters equal the children."""
    with engine.connect() as conn:
        children = conn.execute(sa.select(jobs).where(jobs.c.batch_parent_id == batch_id)).all()
        completions = Counter(
            conn.execute(
                sa.select(job_events.c.job_id).where(
                    job_events.c.to_status == "completed", job_events.c.job_id.in_([c.job_id for c in children])
                )
            ).scalars()
        )
        running = conn.execute(sa.select(sa.func.count()).where(jobs.c.status == "running")).scalar_one()
    states = Counter(c.status for c in children)
    parent = manager.get(batch_id)
    assert len(children) == n
    assert states == Counter({"completed": n}), states
    double = sum(1 for c in children if completions[c.job_id] > 1)
    lost = sum(1 for c in children if completions[c.job_id] == 0)
    assert double == 0 and lost == 0
    assert running == 0
    assert (parent["status"], parent["n_completed"], parent["n_pending"], parent["n_running"], parent["n_failed"]) == (
        "completed",
        n,
        0,
        0,
        0,
    )
    for c in children:
        folder = results / "batches" / batch_id / "jobs" / c.job_id
        stored = json.loads((folder / "results.json").read_text())
        assert stored["results"] == c.results and (folder / "structure.cif").read_bytes().startswith(b"data_")
        assert json.loads((folder / "input.json").read_text())["job_id"] == c.job_id
    return {"submitted": n, "completed": states["completed"], "double_completed": double, "lost": lost}


def wait_for(condition: Any, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_workers_killed_at_random_lose_nothing(chaos: Chaos, tmp_path: Path) -> None:
    """1,000 jobs, 4 worker processes, one SIGKILLed every 1.5–2.5 s and replaced."""
    env, logs, engine, manager = chaos
    batch_id = submit(manager, 1000, delay_max_seconds=0.06)
    workers = [(start_worker(env, logs, i), time.monotonic()) for i in range(4)]
    started = len(workers)
    kills: list[tuple[int, float]] = []
    rng = random.Random(7)
    deadline = time.monotonic() + 300
    try:
        time.sleep(3.0)
        while manager.get(batch_id)["status"] != "completed":
            assert time.monotonic() < deadline, manager.get(batch_id)
            time.sleep(rng.uniform(1.5, 2.5))
            # kill a worker that has had time to start working (not one still importing)
            ready = [i for i, (_, born) in enumerate(workers) if time.monotonic() - born > 3.0]
            if not ready or manager.get(batch_id)["status"] == "completed":
                continue
            victim, _ = workers.pop(rng.choice(ready))
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            kills.append((victim.pid, time.time()))
            workers.append((start_worker(env, logs, started), time.monotonic()))
            started += 1
    finally:
        for w, _ in workers:
            w.terminate()
        for w, _ in workers:
            w.wait(timeout=30)
    figures = check_invariants(engine, manager, tmp_path / "results", batch_id, 1000)

    # how long did a job wait between its worker's death and its next claim?
    waits = []
    with engine.connect() as conn:
        lost_events = conn.execute(
            sa.select(job_events).where(job_events.c.reason.like("%stopped renewing its lease%"))
        ).all()
        for event in lost_events:
            pid = int(event.worker_id.split("-")[-2])
            killed_at = next((t for p, t in kills if p == pid), None)
            next_claim = conn.execute(
                sa.select(sa.func.min(job_events.c.at)).where(
                    job_events.c.job_id == event.job_id, job_events.c.to_status == "running", job_events.c.at > event.at
                )
            ).scalar_one()
            if killed_at is not None and next_claim is not None:
                waits.append(next_claim - killed_at)
    figures.update(
        kills=len(kills),
        jobs_requeued_after_a_kill=len(lost_events),
        max_wait_after_worker_death_s=round(max(waits), 2) if waits else None,
        lease_seconds=3.0,
    )
    assert len(kills) >= 2 and lost_events  # the monkey did kill busy workers, and their jobs came back
    _report("chaos_kills", figures)


def _pg_ctl() -> list[str] | None:
    if shutil.which("pg_ctlcluster") is None or not Path("/etc/postgresql").is_dir() or os.geteuid() != 0:
        return None
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    return ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main"]


def test_database_restart_mid_screen(chaos: Chaos, tmp_path: Path) -> None:
    pg = _pg_ctl()
    if pg is None:
        pytest.skip("needs root and pg_ctlcluster to stop and start the local PostgreSQL")
    env, logs, engine, manager = chaos
    batch_id = submit(manager, 300, delay_max_seconds=0.08)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with open(logs / "api.log", "wb") as out:
        api = subprocess.Popen(
            [str(BIN / "omtx-hub"), "serve", "--no-worker", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    readyz = f"http://127.0.0.1:{port}/readyz"
    workers = [start_worker(env, logs, i) for i in range(2)]
    figures: dict[str, Any] = {}
    try:
        wait_for(lambda: _status(readyz) == 200, 60, "the API")
        wait_for(lambda: manager.get(batch_id)["n_completed"] >= 60, 120, "a fifth of the screen")
        engine.dispose()
        stopped_at = time.monotonic()
        subprocess.run([*pg, "stop", "-m", "fast"], check=True, capture_output=True)
        try:
            wait_for(lambda: _status(readyz) == 503, 30, "/readyz to answer 503")
            figures["readyz_during_outage"] = 503
            time.sleep(4.0)
        finally:
            subprocess.run([*pg, "start"], check=True, capture_output=True)
        back_at = time.monotonic()
        figures["outage_s"] = round(back_at - stopped_at, 2)
        wait_for(lambda: _status(readyz) == 200, 60, "/readyz to recover")
        figures["api_recovered_after_s"] = round(time.monotonic() - back_at, 2)
        done_before = manager.get(batch_id)["n_completed"]
        wait_for(lambda: manager.get(batch_id)["n_completed"] > done_before, 60, "workers to resume")
        figures["workers_resumed_after_s"] = round(time.monotonic() - back_at, 2)
        wait_for(lambda: manager.get(batch_id)["status"] == "completed", 240, "the screen to finish")
        # a second outage while every worker is idle, waiting on its listening connection: each
        # outlives it (its probes back off) and is woken by the next submission after it
        time.sleep(1.0)
        engine.dispose()
        subprocess.run([*pg, "stop", "-m", "fast"], check=True, capture_output=True)
        try:
            time.sleep(3.0)
        finally:
            subprocess.run([*pg, "start"], check=True, capture_output=True)
        assert all(w.poll() is None for w in workers), "a worker that was idle died in the outage"
        wait_for(lambda: _status(readyz) == 200, 60, "/readyz to recover again")
        after = submit(manager, 20)
        wait_for(lambda: manager.get(after)["status"] == "completed", 120, "the screen after the idle outage")
        assert all(w.poll() is None for w in workers)
    finally:
        subprocess.run([*pg, "start"], capture_output=True)  # whatever happened, leave PostgreSQL running
        for p in [*workers, api]:
            p.terminate()
        for p in [*workers, api]:
            p.wait(timeout=30)
    figures.update(check_invariants(engine, manager, tmp_path / "results", batch_id, 300))
    _report("chaos_pg_restart", figures)


def _status(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return None


def _report(name: str, figures: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(figures, indent=2))
    print(f"\n{name}: {json.dumps(figures)}")
