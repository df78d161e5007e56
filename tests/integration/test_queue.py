"""The queue manager on a real SQLite file and on the real PostgreSQL server (same tests)."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
import sqlalchemy as sa

from omtx_hub.db.schema import job_scores, jobs
from omtx_hub.domain import Ligand
from omtx_hub.errors import Conflict, NotFound
from omtx_hub.hub import Hub
from omtx_hub.queue import BatchSubmission, JobSubmission, QueueManager, Submitted

SEQ = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ"


def batch(n: int, name: str = "screen", **kw: object) -> BatchSubmission:
    ligands = [Ligand(f"lig{i}", "C" * (1 + i % 5)) for i in range(n)]
    return BatchSubmission(
        owner="me",
        predictor="test",
        protein_sequence=SEQ,
        batch_name=name,
        ligands=ligands,
        max_attempts=kw.pop("max_attempts", 3),
        **kw,
    )  # type: ignore[arg-type]


def single(name: str = "aspirin", **kw: object) -> JobSubmission:
    return JobSubmission(
        owner="me",
        predictor="test",
        protein_sequence=SEQ,
        ligand=Ligand(name, "CC(=O)Oc1ccccc1C(=O)O"),
        max_attempts=3,
        **kw,
    )  # type: ignore[arg-type]


def completion_events(m: QueueManager, job_id: str) -> int:
    return sum(1 for e in m.events(job_id) if e["to_status"] == "completed")


def test_submit_batch_writes_parent_and_children(hub: Hub) -> None:
    m = hub.manager
    sub = m.submit_batch(batch(25, max_concurrent=3))
    parent = sub.record
    assert sub.created and parent["job_type"] == "BATCH_PARENT" and parent["status"] == "pending"
    assert (parent["n_total"], parent["n_pending"], parent["max_concurrent"]) == (25, 25, 3)
    children = list(m.iter_children(parent["job_id"], page=10))
    assert [c["batch_index"] for c in children] == list(range(25))
    assert {c["status"] for c in children} == {"pending"}
    assert len({c["job_id"] for c in children}) == 25
    assert children[3]["input"] == {"ligand_name": "lig3", "ligand_smiles": "CCCC"}


def test_a_large_batch_is_inserted_whole_and_leaves_the_connection_as_it_was(hub: Hub) -> None:
    """More children than one insert chunk (SQLite widens its page cache for them, then restores it)."""
    m = hub.manager
    with hub.engine.connect() as conn:
        default = conn.exec_driver_sql("PRAGMA cache_size").scalar() if hub.engine.dialect.name == "sqlite" else None
    parent = m.submit_batch(batch(12_001)).record
    children = list(m.iter_children(parent["job_id"], columns=["batch_index", "job_id", "name"]))
    assert [c["batch_index"] for c in children] == list(range(12_001))
    assert len({c["job_id"] for c in children}) == 12_001 and children[-1]["name"] == "lig12000"
    if default is not None:
        with hub.engine.connect() as conn:  # the pool's one connection, the one that inserted
            assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == default


def test_a_child_without_a_position_still_completes(hub: Hub) -> None:
    """Its other scores have no place in ``job_scores`` (keyed by position); the completion must not fail on them."""
    m = hub.manager
    m.declare_score("test", "test_score", ("other",))
    parent = m.submit_batch(batch(2)).record["job_id"]
    with m.core.write() as conn:
        conn.execute(
            sa.update(jobs).where(jobs.c.batch_parent_id == parent, jobs.c.batch_index == 1).values(batch_index=None)
        )
    claimed = m.claim("w", ["test"], limit=2)
    done = m.complete_many([(job, {"test_score": -1.0, "other": 2.0}, 1.0, None) for job in claimed], "w")
    assert [f.applied for f in done] == [True, True]
    with m.core.read() as conn:
        kept = conn.execute(sa.select(job_scores.c.batch_index).where(job_scores.c.batch_parent_id == parent)).all()
    assert [r.batch_index for r in kept] == [0]


def test_idempotency_key_returns_first_job_for_the_same_request_only(hub: Hub) -> None:
    m = hub.manager
    first = m.submit_job(single(idempotency_key="k1"))
    again = m.submit_job(single(idempotency_key="k1"))
    assert first.created and not again.created
    assert again.record["job_id"] == first.record["job_id"]
    with pytest.raises(Conflict) as other_name:
        m.submit_job(single(name="other", idempotency_key="k1"))
    assert other_name.value.code == "idempotency_key_reused"
    assert other_name.value.details["differs"] == ["ligand_name"]
    b1 = m.submit_batch(batch(3, idempotency_key="b1"))
    b2 = m.submit_batch(batch(3, idempotency_key="b1"))
    assert not b2.created and b2.record["job_id"] == b1.record["job_id"] and b2.record["n_total"] == 3
    with pytest.raises(Conflict) as more:
        m.submit_batch(batch(5, idempotency_key="b1"))
    assert more.value.details["differs"] == ["ligands"] and more.value.details["job_id"] == b1.record["job_id"]
    with pytest.raises(Conflict) as elsewhere:  # a job's key on the batch endpoint: never answered with a job
        m.submit_batch(batch(3, idempotency_key="k1"))
    assert elsewhere.value.details["differs"] == ["endpoint"]
    with m.core.engine.connect() as conn:  # the job, the batch and its three children: nothing more was stored
        assert conn.execute(sa.select(sa.func.count()).select_from(jobs)).scalar_one() == 5


def test_concurrent_identical_idempotent_submissions_make_one_batch(hub: Hub) -> None:
    barrier = threading.Barrier(4)
    results: list[Submitted] = []

    def submit() -> None:
        barrier.wait()
        results.append(hub.manager.submit_batch(batch(50, idempotency_key="same")))

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({r.record["job_id"] for r in results}) == 1 and sum(r.created for r in results) == 1


def test_claim_complete_updates_counters_and_finishes_parent(hub: Hub) -> None:
    m = hub.manager
    bid = m.submit_batch(batch(3)).record["job_id"]
    claims = m.claim("w1", ["test"], limit=2)
    assert [c.batch_index for c in claims] == [0, 1]
    assert claims[0].input["protein_sequence"] == SEQ and claims[0].attempt == 1
    p = m.get(bid)
    assert (p["status"], p["n_pending"], p["n_running"]) == ("running", 1, 2)
    for c in claims:
        assert m.complete(c, "w1", {"test_score": -1.0}).applied
    last = m.claim("w1", ["test"], limit=5)
    assert len(last) == 1
    done = m.complete(last[0], "w1", {"test_score": -2.0})
    assert done.parent_finished == "completed"
    p = m.get(bid)
    assert (p["status"], p["n_completed"], p["n_running"], p["n_pending"]) == ("completed", 3, 0, 0)
    assert [e["to_status"] for e in m.events(bid)] == ["pending", "running", "completed"]


def test_results_with_nan_complete_and_read_back_as_null(hub: Hub) -> None:
    """A NaN or an infinity in a predictor's results is not JSON: PostgreSQL refused the completion.
    It is stored as null. Integers beyond 64 bits and keys that are not text, which orjson refuses,
    are written and read by json."""
    m = hub.manager
    m.declare_score("test", "test_score")
    bid = m.submit_batch(batch(2)).record["job_id"]
    plain, odd = m.claim("w1", ["test"], limit=2)
    assert m.complete(plain, "w1", {"test_score": -1.5, "names": ["a", "é"], "ok": True, "n": 2**63 - 1}).applied
    odd_results = {"test_score": float("nan"), "poses": [1.0, float("-inf")], "n": 2**70, "by_pose": {1: -7.5}}
    done = m.complete(odd, "w1", odd_results)
    assert done.applied and done.parent_finished == "completed"
    assert m.get(plain.job_id)["results"] == {"test_score": -1.5, "names": ["a", "é"], "ok": True, "n": 2**63 - 1}
    # orjson writes the first; json what orjson refuses (a 70-bit integer, a key that is not text)
    expected = {"test_score": None, "poses": [1.0, None], "n": 2**70, "by_pose": {"1": -7.5}}
    assert m.get(odd.job_id)["results"] == expected
    assert [c["score"] for c in m.iter_children(bid, columns=("score",))] == [-1.5, None]


def test_claim_ignores_other_predictors(hub: Hub) -> None:
    hub.manager.submit_batch(batch(2))
    assert hub.manager.claim("w1", ["vina"], limit=5) == []
    assert len(hub.manager.claim("w1", ["vina", "test"], limit=5)) == 2


def test_guarded_completion_is_exactly_once(hub: Hub) -> None:
    m = hub.manager
    m.core.lease_seconds = 0.2
    jid = m.submit_job(single()).record["job_id"]
    (first,) = m.claim("w1", ["test"])
    time.sleep(0.3)
    assert m.reap_expired() == 1
    assert m.get(jid)["status"] == "pending"
    (second,) = m.claim("w2", ["test"])
    assert second.attempt == 2
    assert not m.complete(first, "w1", {"test_score": 1.0}).applied  # the stale holder cannot complete
    assert m.complete(second, "w2", {"test_score": 2.0}).applied
    assert not m.complete(second, "w2", {"test_score": 3.0}).applied  # nor complete twice
    record = m.get(jid)
    assert record["results"] == {"test_score": 2.0} and record["attempts"] == 2
    assert completion_events(m, jid) == 1
    reasons = [e["reason"] for e in m.events(jid)]
    assert any("worker_lost" in (r or "") for r in reasons)


def test_heartbeat_keeps_a_lease_alive(hub: Hub) -> None:
    m = hub.manager
    m.core.lease_seconds = 2.0
    m.submit_job(single())
    (claim,) = m.claim("w1", ["test"])
    for _ in range(5):  # 2.5 s in all: longer than the lease, kept alive by the heartbeats
        time.sleep(0.5)
        assert m.heartbeat("w1", [claim.job_id]) == set()
        assert m.reap_expired() == 0
    assert m.complete(claim, "w1", {}).applied


def test_two_workers_racing_never_share_a_job(hub: Hub) -> None:
    m = hub.manager
    bid = m.submit_batch(batch(120)).record["job_id"]
    m.submit_batch(batch(40, name="second"))
    seen: dict[str, list[str]] = {"a": [], "b": [], "c": []}
    errors: list[BaseException] = []

    def work(worker: str) -> None:
        try:
            while True:
                claims = m.claim(worker, ["test"], limit=3)
                if not claims:
                    return
                for c in claims:
                    seen[worker].append(c.job_id)
                    assert m.complete(c, worker, {"test_score": 0.0}).applied
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in seen]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    everything = [j for ids in seen.values() for j in ids]
    assert len(everything) == 160 and len(set(everything)) == 160
    p = m.get(bid)
    assert (p["status"], p["n_completed"], p["n_running"], p["n_pending"]) == ("completed", 120, 0, 0)
    with hub.engine.connect() as conn:
        completed = conn.execute(
            sa.select(sa.func.count())
            .select_from(jobs)
            .where(jobs.c.status == "completed", jobs.c.job_type == "BATCH_CHILD")
        ).scalar()
    assert completed == 160


def test_transient_failure_backs_off_then_fails_after_max_attempts(hub: Hub) -> None:
    m = hub.manager
    m.core.retry_policy = type(m.core.retry_policy)(base_seconds=0.6, max_delay_seconds=10)
    jid = m.submit_job(single()).record["job_id"]
    (c1,) = m.claim("w1", ["test"])
    assert m.fail(c1, "w1", code="oom", message="out of memory", transient=True).status == "pending"
    assert m.claim("w1", ["test"]) == []  # run_after is in the future
    time.sleep(0.65)
    (c2,) = m.claim("w1", ["test"])
    assert c2.attempt == 2
    m.fail(c2, "w1", code="oom", message="out of memory", transient=True)
    time.sleep(1.25)
    (c3,) = m.claim("w1", ["test"])
    assert m.fail(c3, "w1", code="oom", message="out of memory", transient=True).status == "failed"
    record = m.get(jid)
    assert record["status"] == "failed" and record["error"] == {"code": "oom", "message": "out of memory"}


def test_permanent_failure_fails_at_once(hub: Hub) -> None:
    m = hub.manager
    bid = m.submit_batch(batch(1)).record["job_id"]
    (c,) = m.claim("w1", ["test"])
    finished = m.fail(c, "w1", code="bad_ligand", message="cannot prepare", transient=False)
    assert finished.status == "failed" and finished.parent_finished == "failed"
    assert m.get(bid)["n_failed"] == 1


def test_cancel_batch_cancels_pending_and_asks_running_to_stop(hub: Hub) -> None:
    m = hub.manager
    bid = m.submit_batch(batch(6)).record["job_id"]
    running = m.claim("w1", ["test"], limit=2)
    record = m.cancel(bid)
    assert (record["n_cancelled"], record["n_running"], record["status"]) == (4, 2, "running")
    assert m.heartbeat("w1", [c.job_id for c in running]) == {c.job_id for c in running}
    assert m.claim("w2", ["test"]) == []
    assert m.complete(running[0], "w1", {"test_score": 1.0}).applied  # a finished result is kept
    assert m.stopped(running[1], "w1").parent_finished == "completed"
    p = m.get(bid)
    assert (p["status"], p["n_completed"], p["n_cancelled"]) == ("completed", 1, 5)
    with pytest.raises(Conflict):
        m.cancel(bid)


def test_cancel_individual_and_unknown(hub: Hub) -> None:
    m = hub.manager
    jid = m.submit_job(single()).record["job_id"]
    assert m.cancel(jid)["status"] == "cancelled"
    with pytest.raises(Conflict):
        m.cancel(jid)
    with pytest.raises(NotFound):
        m.cancel("job_doesnotexist")


def test_transient_failure_of_a_cancelled_job_ends_cancelled(hub: Hub) -> None:
    m = hub.manager
    jid = m.submit_job(single()).record["job_id"]
    (c,) = m.claim("w1", ["test"])
    assert m.cancel(jid)["cancel_requested"]
    assert m.fail(c, "w1", code="oom", message="x", transient=True).status == "cancelled"


def test_retry_failed_children_reopens_the_batch(hub: Hub) -> None:
    m = hub.manager
    bid = m.submit_batch(batch(3)).record["job_id"]
    claims = m.claim("w1", ["test"], limit=3)
    m.complete(claims[0], "w1", {"test_score": 1.0})
    m.fail(claims[1], "w1", code="x", message="x", transient=False)
    m.fail(claims[2], "w1", code="x", message="x", transient=False)
    assert m.get(bid)["status"] == "completed"
    record = m.retry(bid)
    assert (record["status"], record["n_pending"], record["n_failed"]) == ("pending", 2, 0)
    again = m.claim("w1", ["test"], limit=5)
    assert sorted(c.batch_index for c in again) == [1, 2] and all(c.attempt == 1 for c in again)
    with pytest.raises(Conflict):
        m.retry(claims[0].job_id)  # completed jobs are not retried


def test_max_concurrent_caps_running_children(hub: Hub) -> None:
    m = hub.manager
    m.submit_batch(batch(10, max_concurrent=2))
    assert len(m.claim("w1", ["test"], limit=5)) == 2
    assert m.claim("w2", ["test"], limit=5) == []


def test_fair_share_round_robin_between_batches_and_individuals(hub: Hub) -> None:
    m = hub.manager
    a = m.submit_batch(batch(10, name="a")).record["job_id"]
    b = m.submit_batch(batch(10, name="b")).record["job_id"]
    order = [m.claim("w", ["test"])[0].batch_parent_id for _ in range(4)]
    assert order == [a, b, a, b]
    jid = m.submit_job(single()).record["job_id"]
    # an individual job takes its turn in the round robin: each batch once (served before it was
    # submitted), then the individual job, though both screens still have pending work
    following = [m.claim("w", ["test"])[0] for _ in range(3)]
    assert [c.batch_parent_id for c in following[:2]] == [a, b]
    assert following[2].job_id == jid


def test_priority_comes_first(hub: Hub) -> None:
    m = hub.manager
    m.submit_batch(batch(3, name="low"))
    urgent = m.submit_batch(batch(3, name="urgent", priority=10)).record["job_id"]
    assert {c.batch_parent_id for c in m.claim("w", ["test"], limit=3)} == {urgent}


def test_micro_batch_groups_individual_jobs_of_one_target(hub: Hub) -> None:
    m = hub.manager
    for i in range(3):
        m.submit_job(single(name=f"l{i}"))
    other = JobSubmission(
        owner="me", predictor="test", protein_sequence="MKV", ligand=Ligand("x", "CCO"), max_attempts=3
    )
    m.submit_job(other)
    claims = m.claim("w", ["test"], limit=8)
    assert len(claims) == 3 and len({c.target_key for c in claims}) == 1


def test_release_gives_the_job_back_without_counting_an_attempt(hub: Hub) -> None:
    m = hub.manager
    jid = m.submit_job(single()).record["job_id"]
    (c,) = m.claim("w1", ["test"])
    assert m.release(c, "w1").status == "pending"
    assert m.get(jid)["attempts"] == 0
    assert m.claim("w2", ["test"])[0].attempt == 1


def test_status_counts_from_batch_counters_equal_a_count_of_every_row(hub: Hub) -> None:
    m = hub.manager
    m.submit_batch(batch(7))
    m.submit_batch(batch(3, name="second"))
    m.submit_job(single())
    claims = m.claim("w", ["test"], limit=4)
    m.complete(claims[0], "w", {"test_score": 1.0})
    m.fail(claims[1], "w", code="bad", message="bad input", transient=False)
    m.cancel(m.submit_batch(batch(2, name="dropped")).record["job_id"], None)
    with hub.engine.connect() as conn:
        every_row = {
            (r[0], r[1], r[2]): r[3]
            for r in conn.execute(
                sa.select(jobs.c.job_type, jobs.c.status, jobs.c.predictor, sa.func.count()).group_by(
                    jobs.c.job_type, jobs.c.status, jobs.c.predictor
                )
            )
        }
    counts = m.status_counts()
    assert counts == every_row
    assert counts[("BATCH_CHILD", "running", "test")] == 2 and counts[("BATCH_CHILD", "cancelled", "test")] == 2


def test_list_jobs_and_children_filters(hub: Hub) -> None:
    m = hub.manager
    bid = m.submit_batch(batch(5)).record["job_id"]
    m.submit_job(single())
    listed = m.list_jobs(owner="me")
    assert [r["job_type"] for r in listed] == ["INDIVIDUAL", "BATCH_PARENT"]
    assert len(m.list_jobs(owner="me", job_type="BATCH_CHILD")) == 5
    claims = m.claim("w", ["test"], limit=2)
    assert claims[0].batch_parent_id == bid
    running = m.list_children(bid, status="running")
    assert [r["batch_index"] for r in running] == [0, 1]
    assert [r["batch_index"] for r in m.list_children(bid, after_index=2)] == [3, 4]
    counts = m.status_counts()
    assert counts[("BATCH_CHILD", "running", "test")] == 2 and counts[("INDIVIDUAL", "pending", "test")] == 1
    assert Counter(r["status"] for r in m.list_children(bid))["pending"] == 3
