"""Finishing, by the worker that holds a job's lease: complete, fail (retry or give up), stop on a
cancel request, release. Every call is guarded by (status, worker, attempt): a worker whose lease
was lost finds its late result refused (``Finished.applied`` is False)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from omtx_hub.db.schema import job_scores, jobs
from omtx_hub.domain import ClaimedJob, number, scalar_results
from omtx_hub.queue import score_bins, transitions
from omtx_hub.queue.core import QueueCore
from omtx_hub.queue.types import Finished

__all__ = ["complete_many", "fail", "fail_locked", "release", "stopped"]

PENDING, RUNNING = transitions.PENDING, transitions.RUNNING
COMPLETED, FAILED, CANCELLED = transitions.COMPLETED, transitions.FAILED, transitions.CANCELLED

Completion = tuple[ClaimedJob, dict[str, Any], float | None, float | None]  # job, results, wall s, accelerator s


def _finite(value: Any) -> float | None:
    """A result as the indexes keep it: a finite number, else None. An infinity is stored as null in
    the results (not JSON), so it must rank as no score at all, not as the best or the worst."""
    n = number(value)
    return n if n is not None and math.isfinite(n) else None


def _score(q: QueueCore, predictor: str, results: dict[str, Any]) -> float | None:
    """The job's primary score as a float (None: the predictor's is unknown here, or not a finite number)."""
    name = q.score_fields.get(predictor)
    return _finite(results.get(name)) if name else None


def _other_scores(q: QueueCore, job: ClaimedJob, parent: str, results: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``job_scores`` rows of a completed batch child: its predictor's other scores that are numbers
    (none for a child without a position, which nothing ranks: its row would fail the completion)."""
    rows: list[dict[str, Any]] = []
    if job.batch_index is None:
        return rows
    for name in q.sortable_fields.get(job.predictor, ()):
        value = _finite(results.get(name))
        if value is not None:
            rows.append({"batch_parent_id": parent, "field": name, "value": value, "batch_index": job.batch_index})
    return rows


def _add_result_columns(conn: sa.Connection, parent: str, seen: list[str]) -> frozenset[str] | None:
    """Append the fields a batch's table lacks to its ``result_columns`` (left NULL for a batch from
    before they were kept: its columns are read from its children); returns what it keeps now."""
    known = conn.execute(sa.select(jobs.c.result_columns).where(jobs.c.job_id == parent)).scalar_one_or_none()
    if known is None:
        return None
    new = [name for name in seen if name not in known]
    if new:
        conn.execute(sa.update(jobs).where(jobs.c.job_id == parent).values(result_columns=[*known, *new]))
    return frozenset([*known, *new])


def complete_many(q: QueueCore, items: Sequence[Completion], worker_id: str) -> list[Finished]:
    """Complete several jobs in one transaction.

    Each job keeps its own guard (status, worker, attempt); the parents' counters move once per
    parent. This is what lets a fast predictor's micro-batch cost one commit instead of one per job.
    """
    if not items:
        return []
    now = q.clock()
    out: list[Finished] = []
    moves: dict[str, int] = {}
    columns: dict[str, dict[str, None]] = {}  # parent → the one-cell result fields seen, in order
    events: list[dict[str, Any]] = []
    scores: list[dict[str, Any]] = []  # job_scores rows
    binned: list[tuple[str, float]] = []  # (parent, primary score): score_bins
    with q.write() as conn:
        # The guard, checked for all at once on locked rows; then one executemany (one round trip on
        # PostgreSQL: psycopg pipelines it).
        held = {
            r.job_id: r for r in conn.execute(_HELD, {"ids": [job.job_id for job, *_ in items], "worker_id": worker_id})
        }
        rows = []
        for job, results, wall, accel in items:
            row = held.get(job.job_id)
            if row is None or row.attempts != job.attempt:
                out.append(Finished(applied=False))
                continue
            score = _score(q, job.predictor, results)
            rows.append(
                {
                    "b_job_id": job.job_id,
                    "b_results": results,
                    "b_score": score,
                    "b_wall": wall,
                    "b_accel": accel,
                    "b_now": now,
                }
            )
            events.append(
                {
                    "job_id": job.job_id,
                    "from_status": RUNNING,
                    "to_status": COMPLETED,
                    "at": now,
                    "worker_id": worker_id,
                    "attempt": job.attempt,
                    "reason": "completed",
                }
            )
            if row.batch_parent_id is not None:
                moves[row.batch_parent_id] = moves.get(row.batch_parent_id, 0) + 1
                columns.setdefault(row.batch_parent_id, {}).update(dict.fromkeys(scalar_results(results)))
                scores += _other_scores(q, job, row.batch_parent_id, results)
                if score is not None:
                    binned.append((row.batch_parent_id, score))
            out.append(Finished(applied=True, status=COMPLETED))
        if rows:
            conn.execute(_COMPLETED, rows)
        if scores:
            conn.execute(_OTHER_SCORES, scores)
        transitions.record_many(conn, events)
        finished = {
            parent: transitions.shift_parent(conn, parent, Counter({(RUNNING, COMPLETED): n}), now)
            for parent, n in sorted(moves.items())
        }
        score_bins.count_scores(conn, q.postgres, binned)  # after shift_parent, which locked the parents' rows
        learned: dict[str, frozenset[str] | None] = {}
        for parent, seen in sorted(columns.items()):  # after shift_parent, which locked the parent's row
            if parent in q.kept_columns:
                kept = q.kept_columns[parent]
                if kept is None or kept >= seen.keys():
                    continue  # nothing new (what this process knows is committed; the columns only grow)
            learned[parent] = _add_result_columns(conn, parent, list(seen))
    q.remember_columns(learned)  # after the commit: a rolled-back write teaches nothing
    if any(finished.values()):
        out = [
            Finished(applied=f.applied, status=f.status, parent_finished=finished.get(job.batch_parent_id or ""))
            if f.applied
            else f
            for f, (job, *_rest) in zip(out, items, strict=True)
        ]
    return out


# A completion's statements, built once (building a Core statement and its
# cache key per call cost about as much as running it on SQLite).
_HELD = (
    sa.select(jobs.c.job_id, jobs.c.attempts, jobs.c.batch_parent_id)
    .where(
        jobs.c.job_id.in_(sa.bindparam("ids", expanding=True)),
        jobs.c.status == RUNNING,
        jobs.c.worker_id == sa.bindparam("worker_id"),
    )
    .with_for_update()
)
_OTHER_SCORES = sa.insert(job_scores)
_COMPLETED = (
    sa.update(jobs)
    .where(jobs.c.job_id == sa.bindparam("b_job_id"))
    .values(
        status=COMPLETED,
        results=sa.bindparam("b_results", type_=jobs.c.results.type),
        score=sa.bindparam("b_score", type_=sa.Float),
        error=None,
        completed_at=sa.bindparam("b_now", type_=sa.Float),
        lease_expires_at=None,
        wall_seconds=sa.bindparam("b_wall", type_=sa.Float),
        accelerator_seconds=sa.bindparam("b_accel", type_=sa.Float),
    )
)


def fail(q: QueueCore, job: ClaimedJob, worker_id: str, *, code: str, message: str, transient: bool) -> Finished:
    with q.write() as conn:
        return fail_locked(
            q,
            conn,
            job.job_id,
            worker_id,
            job.attempt,
            q.clock(),
            error={"code": code, "message": message},
            transient=transient,
        )


def stopped(q: QueueCore, job: ClaimedJob, worker_id: str) -> Finished:
    """The worker stopped ``job`` because it was asked to cancel it."""
    now = q.clock()
    with q.write() as conn:
        return transitions.move_running(
            conn,
            job.job_id,
            worker_id,
            job.attempt,
            CANCELLED,
            now,
            reason="stopped on cancel request",
            values={"completed_at": now, "lease_expires_at": None},
        )


def release(q: QueueCore, job: ClaimedJob, worker_id: str, *, error: dict[str, str] | None = None) -> Finished:
    """Give a claimed job back (graceful shutdown, a store that refuses writes); the attempt is not
    counted. ``error`` says why, on the job, until it runs again."""
    now = q.clock()
    values: dict[str, Any] = {
        "worker_id": None,
        "lease_expires_at": None,
        "run_after": now,
        "attempts": jobs.c.attempts - 1,
    }
    if error is not None:
        values["error"] = error
    with q.write() as conn:
        return transitions.move_running(
            conn,
            job.job_id,
            worker_id,
            job.attempt,
            PENDING,
            now,
            reason=f"released by worker: {error['code']}" if error else "released by worker",
            values=values,
        )


def fail_locked(
    q: QueueCore,
    conn: sa.Connection,
    job_id: str,
    worker_id: str,
    attempt: int,
    now: float,
    *,
    error: dict[str, str],
    transient: bool,
) -> Finished:
    """A failed attempt inside the caller's transaction: cancelled if a cancel was asked for, back to
    pending when the retry policy allows another attempt, else failed."""
    row = conn.execute(sa.select(jobs.c.max_attempts, jobs.c.cancel_requested).where(jobs.c.job_id == job_id)).first()
    if row is None:
        return Finished(applied=False)
    if row.cancel_requested:
        return transitions.move_running(
            conn,
            job_id,
            worker_id,
            attempt,
            CANCELLED,
            now,
            reason=f"cancelled ({error['code']})",
            values={"completed_at": now, "lease_expires_at": None},
        )
    decision = q.retry_policy.decide(attempt=attempt, max_attempts=row.max_attempts, transient=transient)
    if decision.retry:
        return transitions.move_running(
            conn,
            job_id,
            worker_id,
            attempt,
            PENDING,
            now,
            reason=f"retry in {decision.delay_seconds:g}s after {error['code']}: {error['message']}"[:500],
            values={
                "error": error,
                "worker_id": None,
                "lease_expires_at": None,
                "run_after": now + decision.delay_seconds,
            },
        )
    return transitions.move_running(
        conn,
        job_id,
        worker_id,
        attempt,
        FAILED,
        now,
        reason=f"{error['code']}: {error['message']}"[:500],
        values={"error": error, "completed_at": now, "lease_expires_at": None},
    )
