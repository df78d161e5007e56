"""Maintenance of who holds what: heartbeats (lease renewal), the worker registry, the reaper of
expired leases, and pruning of old finished jobs."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from omtx_hub.db.schema import job_events, job_scores, jobs, score_bins, workers
from omtx_hub.domain import TERMINAL, JobType
from omtx_hub.queue import transitions
from omtx_hub.queue.core import QueueCore
from omtx_hub.queue.finish import fail_locked

__all__ = ["heartbeat", "prune", "reap_expired", "register_worker", "set_worker_paused", "unregister_worker"]

RUNNING = transitions.RUNNING
_DELETE_CHUNK = 500


def heartbeat(q: QueueCore, worker_id: str, job_ids: Sequence[str]) -> set[str]:
    """Extend the leases ``worker_id`` holds; return the jobs it must stop (cancelled or lost)."""
    now = q.clock()
    with q.write() as conn:
        conn.execute(sa.update(workers).where(workers.c.worker_id == worker_id).values(last_seen_at=now))
        if not job_ids:
            return set()
        conn.execute(
            sa.update(jobs)
            .where(jobs.c.job_id.in_(job_ids), jobs.c.status == RUNNING, jobs.c.worker_id == worker_id)
            .values(lease_expires_at=now + q.lease_seconds)
        )
        rows = conn.execute(
            sa.select(jobs.c.job_id, jobs.c.status, jobs.c.worker_id, jobs.c.cancel_requested).where(
                jobs.c.job_id.in_(job_ids)
            )
        ).all()
    return {r.job_id for r in rows if r.cancel_requested or r.status != RUNNING or r.worker_id != worker_id}


def register_worker(q: QueueCore, worker_id: str, hostname: str, pid: int, predictors: Sequence[str]) -> None:
    now = q.clock()
    with q.write() as conn:
        conn.execute(sa.delete(workers).where(workers.c.worker_id == worker_id))
        conn.execute(
            workers.insert(),
            {
                "worker_id": worker_id,
                "hostname": hostname,
                "pid": pid,
                "predictors": sorted(predictors),
                "started_at": now,
                "last_seen_at": now,
            },
        )


def set_worker_paused(q: QueueCore, worker_id: str, reason: str | None) -> None:
    """Record why a live worker claims nothing (None: it works again); status and /readyz say so."""
    with q.write() as conn:
        conn.execute(
            sa.update(workers)
            .where(workers.c.worker_id == worker_id)
            .values(paused_reason=reason[:500] if reason else None)
        )


def unregister_worker(q: QueueCore, worker_id: str) -> None:
    with q.write() as conn:
        conn.execute(sa.update(workers).where(workers.c.worker_id == worker_id).values(stopped_at=q.clock()))


def reap_expired(q: QueueCore, limit: int = 500) -> int:
    """Give every job whose lease expired back to the queue (or fail it when out of attempts)."""
    now = q.clock()
    with q.write() as conn:
        rows = conn.execute(
            sa.select(jobs.c.job_id, jobs.c.worker_id, jobs.c.attempts)
            .where(jobs.c.status == RUNNING, jobs.c.lease_expires_at < now)
            .order_by(jobs.c.lease_expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        for row in rows:
            fail_locked(
                q,
                conn,
                row.job_id,
                row.worker_id,
                row.attempts,
                now,
                error={"code": "worker_lost", "message": f"worker {row.worker_id} stopped renewing its lease"},
                transient=True,
            )
    return len(rows)


def prune(q: QueueCore, older_than: float, *, dry_run: bool = False) -> list[tuple[str, str | None]]:
    """Delete finished individual jobs and finished batches (with their children and events)
    that completed before ``older_than`` (UNIX time). Returns (job_id, batch_id) of what went,
    children excluded, so the caller can delete their folders."""
    finished = sa.and_(jobs.c.status.in_(TERMINAL), jobs.c.completed_at < older_than)
    with q.write() as conn:
        rows = conn.execute(
            sa.select(jobs.c.job_id, jobs.c.job_type)
            .where(finished, jobs.c.job_type.in_([JobType.INDIVIDUAL.value, JobType.BATCH_PARENT.value]))
            .order_by(jobs.c.id)
        ).all()
        if dry_run or not rows:
            return [(r.job_id, None) for r in rows]
        batches = [r.job_id for r in rows if r.job_type == JobType.BATCH_PARENT.value]
        singles = [r.job_id for r in rows if r.job_type == JobType.INDIVIDUAL.value]
        for start in range(0, len(batches), _DELETE_CHUNK):
            chunk = batches[start : start + _DELETE_CHUNK]
            children = sa.select(jobs.c.job_id).where(jobs.c.batch_parent_id.in_(chunk))
            conn.execute(sa.delete(job_events).where(job_events.c.job_id.in_(children)))
            conn.execute(sa.delete(job_scores).where(job_scores.c.batch_parent_id.in_(chunk)))
            conn.execute(sa.delete(score_bins).where(score_bins.c.batch_parent_id.in_(chunk)))
            conn.execute(sa.delete(jobs).where(jobs.c.batch_parent_id.in_(chunk)))
        for ids in (batches, singles):
            for start in range(0, len(ids), _DELETE_CHUNK):
                chunk = ids[start : start + _DELETE_CHUNK]
                conn.execute(sa.delete(job_events).where(job_events.c.job_id.in_(chunk)))
                conn.execute(sa.delete(jobs).where(jobs.c.job_id.in_(chunk)))
    return [(r.job_id, r.job_id if r.job_type == JobType.BATCH_PARENT.value else None) for r in rows]
