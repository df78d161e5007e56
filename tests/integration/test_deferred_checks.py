"""A large batch's ligand checks run in their process pool while the queue writes its rows: on
PostgreSQL inside the open transaction, on SQLite before its write lock is taken. A refused ligand
refuses the batch exactly as when the checks run first, and nothing is left behind: no row, no
pool process. On SQLite and PostgreSQL, through the API; and the started pool's own fallback."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
from typing import Any

import pytest
import sqlalchemy as sa

import omtx_hub.submission as submission
from hub_testing import ApiClient, squares_unless_in_a_pool
from omtx_hub.db.schema import jobs
from omtx_hub.errors import InvalidInput
from omtx_hub.hub import Hub
from omtx_hub.parallel import start_chunks

SEQ = "MKTAYIAKQRQISFVKSHFSRQ"
BATCH = "/api/v1/jobs/predict/batch"


@pytest.fixture(autouse=True)
def small_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pool for batches of 40 ligands or more (10,000 a process in the hub), so the tests stay small."""
    monkeypatch.setattr(submission, "_CHECKS_PER_PROCESS", 20)


def ligands(n: int, broken: tuple[int, ...] = ()) -> list[dict[str, str]]:
    return [{"name": f"l{i}", "smiles": "C1CC" if i in broken else f"C{'C' * (i % 7)}O"} for i in range(n)]


def rows(hub: Hub) -> int:
    with hub.manager.core.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(jobs)).scalar_one())


def watch_the_wait(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """When the queue waits on the checks, is a transaction writing to ``jobs``? (another session's
    RowExclusiveLock on PostgreSQL; on SQLite, whether another connection cannot take the write lock)"""
    seen: list[bool] = []
    wait = submission._LigandChecks.wait

    def observed(self: Any) -> None:
        if hub.manager.core.postgres:
            with hub.engine.connect() as conn:
                locks = conn.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_locks WHERE relation = 'jobs'::regclass "
                        "AND mode = 'RowExclusiveLock' AND pid <> pg_backend_pid()"
                    )
                ).scalar_one()
            seen.append(locks > 0)
        else:
            raw = hub.engine.raw_connection()
            try:
                raw.driver_connection.execute("PRAGMA busy_timeout=0")
                try:
                    raw.driver_connection.execute("BEGIN IMMEDIATE")
                    raw.driver_connection.execute("ROLLBACK")
                    seen.append(False)
                except sqlite3.OperationalError:  # database is locked
                    seen.append(True)
            finally:
                raw.close()
        wait(self)

    monkeypatch.setattr(submission._LigandChecks, "wait", observed)
    return seen


def test_the_rows_are_written_while_the_checks_run(hub: Hub, api: ApiClient, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = watch_the_wait(hub, monkeypatch)
    r = api.post(BATCH, json={"batch_name": "b", "protein_sequence": SEQ, "ligands": ligands(60)})
    assert r.status_code == 202, r.text
    assert seen == [hub.manager.core.postgres]  # inside the transaction on PostgreSQL only
    children = list(hub.manager.iter_children(r.json()["batch_id"]))
    assert [(c["batch_index"], c["name"], c["input"]["ligand_smiles"]) for c in children] == [
        (i, lig["name"], lig["smiles"]) for i, lig in enumerate(ligands(60))
    ]


def test_a_refused_ligand_refuses_the_batch_as_before_and_leaves_nothing(
    hub: Hub, api: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    others = set(multiprocessing.active_children())  # what earlier tests may have left running
    seen = watch_the_wait(hub, monkeypatch)
    body = {"batch_name": "b", "protein_sequence": SEQ, "ligands": ligands(60, broken=(3, 41))}
    r = api.post(BATCH, json=body)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_ligands"
    assert seen == [hub.manager.core.postgres] and rows(hub) == 0
    assert not set(multiprocessing.active_children()) - others
    with pytest.raises(InvalidInput) as first:  # the checks run first: the same refusal
        submission.build_batch_submission(
            hub.settings,
            owner="local",
            batch_name="b",
            protein_sequence=SEQ,
            ligands=[(lig["name"], lig["smiles"]) for lig in body["ligands"]],
        )
    assert r.json()["error"]["message"] == first.value.message
    assert r.json()["error"]["details"] == first.value.details
    assert [p["index"] for p in first.value.details["ligands"]] == [3, 41]


def test_what_must_be_known_first_is_checked_first(hub: Hub, api: ApiClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Skipping invalid ligands, filters and duplicate names decide which ligands are queued at all:
    their batches are checked before anything is written, as before."""
    seen = watch_the_wait(hub, monkeypatch)
    skipping = {"batch_name": "s", "protein_sequence": SEQ, "ligands": ligands(60, broken=(5,)), "skip_invalid": True}
    r = api.post(BATCH, json=skipping)
    assert r.status_code == 202 and r.json()["total"] == 59 and [s["index"] for s in r.json()["skipped"]] == [5]
    twice = ligands(60)
    twice[50]["name"] = "l7"
    r = api.post(BATCH, json={"batch_name": "d", "protein_sequence": SEQ, "ligands": twice})
    assert r.status_code == 422 and [p["index"] for p in r.json()["error"]["details"]["ligands"]] == [50]
    assert seen == []


def test_a_ligand_the_database_refuses_is_named_by_the_checks(hub: Hub, api: ApiClient) -> None:
    """A NUL in a name (which PostgreSQL cannot store) meets the insert before the checks end: the
    answer is still the checks' refusal naming that ligand, not the driver's error."""
    body = ligands(60)
    body[44]["name"] = "nul\x00byte"
    r = api.post(BATCH, json={"batch_name": "b", "protein_sequence": SEQ, "ligands": body})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_ligands"
    assert [(p["index"], "control character" in p["reason"]) for p in r.json()["error"]["details"]["ligands"]] == [
        (44, True)
    ]
    assert rows(hub) == 0


def test_started_work_whose_pool_dies_is_done_here(caplog: pytest.LogCaptureFixture) -> None:
    """The pool's processes die as they work: ``result()`` does it all in this process, with a warning,
    and no pool process is left."""
    if (os.cpu_count() or 1) < 2:
        pytest.skip("a pool runs only with two cores or more")
    others = set(multiprocessing.active_children())
    work = start_chunks(squares_unless_in_a_pool, list(range(50)), per_process=10, chunk=5)
    assert work.pooled
    with caplog.at_level("WARNING", logger="omtx_hub.parallel"):
        assert work.result() == [i * i for i in range(50)]
    assert any("could not run" in r.getMessage() for r in caplog.records)
    assert not work.pooled and not set(multiprocessing.active_children()) - others
