"""What a user does to jobs and batches: cancel and retry. A batch's pending children are cancelled
at once; running ones get ``cancel_requested`` and are stopped by their worker's next heartbeat."""

from __future__ import annotations

from collections import Counter

import sqlalchemy as sa

from omtx_hub.db.schema import jobs
from omtx_hub.domain import TERMINAL, JobType
from omtx_hub.errors import Conflict
from omtx_hub.queue import transitions, wakeup
from omtx_hub.queue.core import QueueCore
from omtx_hub.queue.reads import get
from omtx_hub.queue.types import Record

__all__ = ["cancel", "retry"]

PENDING, RUNNING = transitions.PENDING, transitions.RUNNING
FAILED, CANCELLED = transitions.FAILED, transitions.CANCELLED


def cancel(q: QueueCore, job_id: str, owner: str | None = None) -> Record:
    record = get(q, job_id, owner)
    now = q.clock()
    if record["status"] in TERMINAL:
        raise Conflict(f"job {job_id} is already {record['status']}; nothing to cancel", code="job_finished")
    with q.write() as conn:
        if record["job_type"] == JobType.BATCH_PARENT.value:
            cancelled = list(
                conn.execute(
                    sa.update(jobs)
                    .where(jobs.c.batch_parent_id == job_id, jobs.c.status == PENDING)
                    .values(status=CANCELLED, completed_at=now)
                    .returning(jobs.c.job_id)
                ).scalars()
            )
            conn.execute(
                sa.update(jobs)
                .where(jobs.c.batch_parent_id == job_id, jobs.c.status == RUNNING)
                .values(cancel_requested=True)
            )
            _events(conn, cancelled, PENDING, CANCELLED, now, reason="batch cancelled")
            conn.execute(sa.update(jobs).where(jobs.c.job_id == job_id).values(cancel_requested=True))
            transitions.shift_parent(conn, job_id, Counter({(PENDING, CANCELLED): len(cancelled)}), now)
        else:
            row = conn.execute(
                sa.update(jobs)
                .where(jobs.c.job_id == job_id, jobs.c.status == PENDING)
                .values(status=CANCELLED, completed_at=now)
                .returning(jobs.c.batch_parent_id)
            ).first()
            if row is not None:
                transitions.record(conn, job_id, PENDING, CANCELLED, now, reason="cancelled by user")
                if row.batch_parent_id:
                    transitions.shift_parent(conn, row.batch_parent_id, Counter({(PENDING, CANCELLED): 1}), now)
            else:
                conn.execute(
                    sa.update(jobs)
                    .where(jobs.c.job_id == job_id, jobs.c.status == RUNNING)
                    .values(cancel_requested=True)
                )
    return get(q, job_id, owner)


def retry(q: QueueCore, job_id: str, owner: str | None = None) -> Record:
    record = get(q, job_id, owner)
    now = q.clock()
    reset = {
        "status": PENDING,
        "attempts": 0,
        "error": None,
        "results": None,
        "score": None,
        "run_after": now,
        "completed_at": None,
        "worker_id": None,
        "lease_expires_at": None,
        "cancel_requested": False,
    }
    with q.write() as conn:
        if record["job_type"] == JobType.BATCH_PARENT.value:
            ids = list(
                conn.execute(
                    sa.update(jobs)
                    .where(jobs.c.batch_parent_id == job_id, jobs.c.status == FAILED)
                    .values(**reset)
                    .returning(jobs.c.job_id)
                ).scalars()
            )
            if not ids:
                raise Conflict(f"batch {job_id} has no failed children to retry", code="nothing_to_retry")
            _events(conn, ids, FAILED, PENDING, now, reason="retried by user")
            conn.execute(sa.update(jobs).where(jobs.c.job_id == job_id).values(cancel_requested=False))
            transitions.shift_parent(conn, job_id, Counter({(FAILED, PENDING): len(ids)}), now)
        else:
            if record["status"] not in (FAILED, CANCELLED):
                raise Conflict(
                    f"job {job_id} is {record['status']}; only failed or cancelled jobs can be retried",
                    code="not_retryable",
                )
            row = conn.execute(
                sa.update(jobs)
                .where(jobs.c.job_id == job_id, jobs.c.status == record["status"])
                .values(**reset)
                .returning(jobs.c.batch_parent_id)
            ).first()
            if row is None:
                raise Conflict(f"job {job_id} changed state meanwhile; try again", code="state_changed")
            transitions.record(conn, job_id, record["status"], PENDING, now, reason="retried by user")
            if row.batch_parent_id:
                conn.execute(sa.update(jobs).where(jobs.c.job_id == row.batch_parent_id).values(cancel_requested=False))
                transitions.shift_parent(conn, row.batch_parent_id, Counter({(record["status"], PENDING): 1}), now)
        wakeup.announce(conn)
    return get(q, job_id, owner)


def _events(conn: sa.Connection, ids: list[str], src: str, dst: str, now: float, reason: str) -> None:
    transitions.record_many(
        conn, [{"job_id": i, "from_status": src, "to_status": dst, "at": now, "reason": reason} for i in ids]
    )
