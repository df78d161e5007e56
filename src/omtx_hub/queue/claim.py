"""Claiming: a worker takes a micro-batch of pending jobs of one target, in one transaction.

Order: priority, then fair share (the batch served longest ago, an individual job counting as a
group of its own that was last served when it was submitted), then age. Lock order on PostgreSQL:
the parent row first, then only children taken with SKIP LOCKED, so a claim never waits on a child.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from omtx_hub.db.schema import jobs
from omtx_hub.domain import ACTIVE, ClaimedJob, JobType
from omtx_hub.queue import transitions
from omtx_hub.queue.core import QueueCore

__all__ = ["claim", "has_runnable"]

PENDING, RUNNING = transitions.PENDING, transitions.RUNNING


def claim(q: QueueCore, worker_id: str, predictors: Iterable[str], limit: int = 1) -> list[ClaimedJob]:
    """Claim up to ``limit`` pending jobs of one target for ``worker_id``."""
    names = sorted(set(predictors))
    if not names:
        return []
    now = q.clock()
    with q.write() as conn:
        for kind, ident in _candidates(conn, names, now):
            if kind == "batch":
                claimed = _claim_children(q, conn, ident, worker_id, limit, now)
            else:
                claimed = _claim_individuals(q, conn, ident, worker_id, limit, now)
            if claimed:
                return claimed
    return []


def has_runnable(q: QueueCore, predictors: Iterable[str]) -> bool:
    """A cheap read (no write lock): is any job of these predictors pending and due?"""
    with q.read() as conn:
        row = conn.execute(
            sa.select(jobs.c.id)
            .where(
                jobs.c.status == PENDING,
                jobs.c.run_after <= q.clock(),
                jobs.c.job_type != JobType.BATCH_PARENT.value,
                jobs.c.predictor.in_(sorted(set(predictors))),
            )
            .limit(1)
        ).first()
    return row is not None


def _candidates(conn: sa.Connection, names: list[str], now: float) -> list[tuple[str, Any]]:
    batches = conn.execute(_BATCHES, {"names": names}).all()
    head = conn.execute(_HEAD, {"names": names, "now": now}).first()
    ranked: list[tuple[tuple[float, float, int], str, Any]] = [
        ((-b.priority, b.turn, b.id), "batch", b.job_id) for b in batches
    ]
    if head is not None:
        ranked.append(((-head.priority, head.created_at, head.id), "individual", head))
    ranked.sort(key=lambda item: item[0])
    return [(kind, ident) for _, kind, ident in ranked]


def _claim_children(
    q: QueueCore, conn: sa.Connection, batch_id: str, worker_id: str, limit: int, now: float
) -> list[ClaimedJob]:
    parent = conn.execute(_PARENT, {"batch_id": batch_id}).one()
    if parent.status not in ACTIVE:
        return []
    cap = limit if parent.max_concurrent is None else min(limit, parent.max_concurrent - parent.n_running)
    if cap <= 0:
        return []
    rows = conn.execute(_CHILDREN, {"batch_id": batch_id, "now": now, "cap": cap}).all()
    if not rows:
        return []
    _mark_running(q, conn, rows, worker_id, now)
    conn.execute(_PARENT_CLAIMED, {"batch_id": batch_id, "n": len(rows), "now": now})
    if parent.status == PENDING:
        transitions.record(
            conn, batch_id, PENDING, RUNNING, now, batch=True, worker_id=worker_id, reason="first child claimed"
        )
    shared = {"protein_sequence": parent.input["protein_sequence"], "target": parent.input.get("target", {})}
    return [_claimed(row, {**shared, **row.input}) for row in rows]


def _claim_individuals(
    q: QueueCore, conn: sa.Connection, head: Any, worker_id: str, limit: int, now: float
) -> list[ClaimedJob]:
    rows = conn.execute(
        sa.select(*_claim_columns())
        .where(
            jobs.c.batch_parent_id.is_(None),
            jobs.c.status == PENDING,
            jobs.c.job_type == JobType.INDIVIDUAL.value,
            jobs.c.run_after <= now,
            jobs.c.predictor == head.predictor,
            jobs.c.target_key == head.target_key,
        )
        .order_by(jobs.c.priority.desc(), jobs.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not rows:
        return []
    _mark_running(q, conn, rows, worker_id, now)
    return [_claimed(row, row.input) for row in rows]


def _mark_running(q: QueueCore, conn: sa.Connection, rows: Sequence[Any], worker_id: str, now: float) -> None:
    conn.execute(
        _RUNNING, {"ids": [r.id for r in rows], "worker_id": worker_id, "lease": now + q.lease_seconds, "now": now}
    )
    transitions.record_many(
        conn,
        [
            {
                "job_id": r.job_id,
                "from_status": PENDING,
                "to_status": RUNNING,
                "at": now,
                "worker_id": worker_id,
                "attempt": r.attempts + 1,
                "reason": "claimed",
            }
            for r in rows
        ],
    )


def _claim_columns() -> list[Any]:
    c = jobs.c
    return [
        c.id,
        c.job_id,
        c.attempts,
        c.max_attempts,
        c.predictor,
        c.params,
        c.target_key,
        c.input,
        c.batch_parent_id,
        c.batch_index,
        c.owner,
    ]


def _claimed(row: Any, job_input: dict[str, Any]) -> ClaimedJob:
    return ClaimedJob(
        job_id=row.job_id,
        attempt=row.attempts + 1,
        max_attempts=row.max_attempts,
        predictor=row.predictor,
        params=row.params,
        target_key=row.target_key,
        input=job_input,
        batch_parent_id=row.batch_parent_id,
        batch_index=row.batch_index,
        owner=row.owner,
    )


# The claim's statements, built once: building a Core statement and its cache key per call cost
# more than running it on SQLite (a claim runs five of them).
_TURN = sa.func.coalesce(jobs.c.last_claimed_at, jobs.c.created_at)
_BATCHES = (
    sa.select(jobs.c.job_id, jobs.c.priority, _TURN.label("turn"), jobs.c.id)
    .where(
        jobs.c.job_type == JobType.BATCH_PARENT.value,
        jobs.c.status.in_(sorted(ACTIVE)),
        jobs.c.n_pending > 0,
        jobs.c.predictor.in_(sa.bindparam("names", expanding=True)),
        sa.or_(jobs.c.max_concurrent.is_(None), jobs.c.n_running < jobs.c.max_concurrent),
    )
    .order_by(jobs.c.priority.desc(), _TURN, jobs.c.id)
    .limit(16)
)
_HEAD = (
    sa.select(jobs.c.id, jobs.c.priority, jobs.c.created_at, jobs.c.predictor, jobs.c.target_key)
    .where(
        jobs.c.batch_parent_id.is_(None),
        jobs.c.status == PENDING,
        jobs.c.job_type == JobType.INDIVIDUAL.value,
        jobs.c.run_after <= sa.bindparam("now"),
        jobs.c.predictor.in_(sa.bindparam("names", expanding=True)),
    )
    .order_by(jobs.c.priority.desc(), jobs.c.id)
    .limit(1)
    .with_for_update(skip_locked=True)
)
_PARENT = (
    sa.select(jobs.c.status, jobs.c.n_running, jobs.c.max_concurrent, jobs.c.input)
    .where(jobs.c.job_id == sa.bindparam("batch_id"))
    .with_for_update()
)
_CHILDREN = (
    sa.select(*_claim_columns())
    .where(
        jobs.c.batch_parent_id == sa.bindparam("batch_id"),
        jobs.c.status == PENDING,
        jobs.c.run_after <= sa.bindparam("now"),
    )
    .order_by(jobs.c.id)
    .limit(sa.bindparam("cap"))
    .with_for_update(skip_locked=True)
)
_PARENT_CLAIMED = (
    sa.update(jobs)
    .where(jobs.c.job_id == sa.bindparam("batch_id"))
    .values(
        n_pending=jobs.c.n_pending - sa.bindparam("n", type_=sa.Integer),
        n_running=jobs.c.n_running + sa.bindparam("n", type_=sa.Integer),
        last_claimed_at=sa.bindparam("now", type_=sa.Float),
        status=RUNNING,
        started_at=sa.func.coalesce(jobs.c.started_at, sa.bindparam("now", type_=sa.Float)),
    )
)
_RUNNING = (
    sa.update(jobs)
    .where(jobs.c.id.in_(sa.bindparam("ids", expanding=True)))
    .values(
        status=RUNNING,
        worker_id=sa.bindparam("worker_id", type_=sa.String),
        attempts=jobs.c.attempts + 1,
        lease_expires_at=sa.bindparam("lease", type_=sa.Float),
        started_at=sa.bindparam("now", type_=sa.Float),
    )
)
