"""Idle workers on PostgreSQL wait on LISTEN/NOTIFY: no query while nothing happens, woken by the
commit that queues a job (not by one that rolls back), and still working, by probing, while the
listening connection is down. On SQLite they probe as before."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from conftest import make_settings
from omtx_hub.domain import Ligand
from omtx_hub.hub import Hub, open_hub
from omtx_hub.queue import JobSubmission
from omtx_hub.queue.wakeup import announce
from omtx_hub.worker import Worker
from omtx_test_predictor import TestPredictor

pytestmark = pytest.mark.postgres


def job(name: str) -> JobSubmission:
    return JobSubmission(
        owner="o", predictor="test", protein_sequence="MKTAYIAKQR", ligand=Ligand(name, "CCO"), max_attempts=2
    )


def claimed_after(hub: Hub, job_id: str, timeout: float = 10.0) -> float:
    """Seconds from the job's submission to its claim (its ``running`` event)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        at = next((e["at"] for e in hub.manager.events(job_id) if e["to_status"] == "running"), None)
        if at is not None:
            return float(at - hub.manager.get(job_id)["created_at"])
        time.sleep(0.02)
    raise AssertionError(f"{job_id} was not claimed within {timeout} s")


@pytest.fixture
def pg_hub(tmp_path: Path, postgres_url: str) -> Iterator[Hub]:
    # heartbeats and maintenance rarely, so what an idle worker sends is its waiting alone
    hub = open_hub(make_settings(tmp_path, postgres_url, heartbeat_seconds=30.0, wake_poll_seconds=5.0))
    yield hub
    hub.close()


@pytest.fixture
def statements(pg_hub: Hub) -> list[str]:
    """Every statement the hub's engine sends, as it sends it."""
    sent: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    sa.event.listen(pg_hub.engine, "before_cursor_execute", note)
    yield sent
    sa.event.remove(pg_hub.engine, "before_cursor_execute", note)


@pytest.fixture
def running(pg_hub: Hub) -> Iterator[Worker]:
    worker = Worker(pg_hub.settings, pg_hub.manager, pg_hub.store, {"test": TestPredictor()})
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    yield worker
    worker.stop(grace_seconds=2)
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_the_listener_hears_committed_announcements_only(pg_hub: Hub) -> None:
    listener = pg_hub.manager.listener()
    assert listener is not None and listener.connect()
    try:
        assert not listener.wait(0.2)
        with pytest.raises(RuntimeError), pg_hub.engine.begin() as conn:
            announce(conn)
            raise RuntimeError("roll back")
        assert not listener.wait(0.3)
        pg_hub.manager.submit_job(job("a"))
        assert listener.wait(2.0)
    finally:
        listener.close()


def test_an_idle_worker_sends_nothing_and_wakes_on_a_submission(
    pg_hub: Hub, statements: list[str], running: Worker
) -> None:
    first = pg_hub.manager.submit_job(job("first")).record["job_id"]
    claimed_after(pg_hub, first)
    time.sleep(1.0)  # the worker finishes that job and goes idle
    statements.clear()
    time.sleep(3.0)
    idle = len(statements)
    assert idle <= 3, statements  # the SQLite worker sends ~100 probes a second
    waits = [claimed_after(pg_hub, pg_hub.manager.submit_job(job(f"j{i}")).record["job_id"]) for i in range(5)]
    assert sorted(waits)[2] < 0.5, waits  # a claim within milliseconds (the bench measures it)


def test_a_worker_keeps_claiming_while_its_listener_is_down(pg_hub: Hub, running: Worker) -> None:
    claimed_after(pg_hub, pg_hub.manager.submit_job(job("first")).record["job_id"])
    listener = running._listener
    assert listener is not None
    # the worker listens once it is idle: if it took "first" in its first claim, not before that is done
    end = time.monotonic() + 10
    while not listener.connected and time.monotonic() < end:
        time.sleep(0.05)
    assert listener.connected
    backend = listener._conn.info.backend_pid
    with psycopg.connect(pg_hub.settings.resolved_database_url().replace("+psycopg", ""), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
    time.sleep(0.5)
    # the listener noticed, and the worker claims by probing until it listens again
    claimed_after(pg_hub, pg_hub.manager.submit_job(job("while down")).record["job_id"], timeout=5)
    end = time.monotonic() + 10
    while not (listener.connected and listener._conn.info.backend_pid != backend) and time.monotonic() < end:
        time.sleep(0.1)
    assert listener.connected and listener._conn.info.backend_pid != backend
    assert claimed_after(pg_hub, pg_hub.manager.submit_job(job("back")).record["job_id"]) < 2.0


def test_an_idle_worker_still_reaps_the_jobs_of_a_worker_that_died(tmp_path: Path, postgres_url: str) -> None:
    """Maintenance runs while a worker sleeps on its listener: the job of a worker that died holding
    it (claimed here, never finished) is requeued when its lease expires and run by the idle worker,
    though nothing announces it (before, an idle fleet on PostgreSQL left it running forever)."""
    hub = open_hub(make_settings(tmp_path, postgres_url, lease_seconds=2.0, wake_poll_seconds=30.0))
    try:
        orphan = hub.manager.submit_job(job("orphan")).record["job_id"]
        assert [j.job_id for j in hub.manager.claim("died", ["test"])] == [orphan]
        worker = Worker(hub.settings, hub.manager, hub.store, {"test": TestPredictor()})
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        try:
            end = time.monotonic() + 15.0
            while hub.manager.get(orphan)["status"] != "completed" and time.monotonic() < end:
                time.sleep(0.1)
            assert hub.manager.get(orphan)["status"] == "completed"
            assert [e["worker_id"] for e in hub.manager.events(orphan) if e["to_status"] == "running"][-1] != "died"
        finally:
            worker.stop(grace_seconds=2)
            thread.join(timeout=10)
    finally:
        hub.close()
