"""Sums for ``/metrics`` and the autoscaler: queue depth by status, accelerator seconds, run times.
Each is one aggregate query whose cost grows with batches and individual jobs, not with children."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from omtx_hub.db.schema import jobs
from omtx_hub.domain import JobType
from omtx_hub.queue import transitions
from omtx_hub.queue.core import QueueCore

__all__ = ["accelerator_seconds", "duration_histogram", "status_counts"]


def status_counts(q: QueueCore) -> dict[tuple[str, str, str], int]:
    """Job counts by (job_type, status, predictor).

    A batch's children are counted from its parent's counters, which change in the same
    transaction as the children: this is the queue-depth gauge an autoscaler reads on every scrape."""
    statuses = list(transitions.COUNTER)
    query = (
        sa.select(
            jobs.c.job_type,
            jobs.c.status,
            jobs.c.predictor,
            sa.func.count(),
            *(sa.func.sum(jobs.c[transitions.COUNTER[s]]) for s in statuses),
        )
        .where(jobs.c.job_type.in_([JobType.INDIVIDUAL.value, JobType.BATCH_PARENT.value]))
        .group_by(jobs.c.job_type, jobs.c.status, jobs.c.predictor)
    )
    counts: dict[tuple[str, str, str], int] = {}
    with q.read() as conn:
        for row in conn.execute(query):
            job_type, status, predictor, n = row[0], row[1], row[2], row[3]
            counts[(job_type, status, predictor)] = n
            if job_type == JobType.BATCH_PARENT.value:
                for child_status, children in zip(statuses, row[4:], strict=True):
                    if children:
                        key = (JobType.BATCH_CHILD.value, child_status, predictor)
                        counts[key] = counts.get(key, 0) + int(children)
    return counts


def accelerator_seconds(q: QueueCore) -> dict[str, float]:
    """Accelerator (GPU or CPU) seconds of the predict step, summed per predictor over finished jobs."""
    with q.read() as conn:
        rows = conn.execute(
            sa.select(jobs.c.predictor, sa.func.coalesce(sa.func.sum(jobs.c.accelerator_seconds), 0.0))
            .where(jobs.c.job_type != JobType.BATCH_PARENT.value)
            .group_by(jobs.c.predictor)
        )
        return {r[0]: float(r[1]) for r in rows}


def duration_histogram(q: QueueCore, bounds: Sequence[float]) -> tuple[list[int], float, int]:
    """Cumulative counts of completed jobs' run time (started → completed) per upper bound, their sum
    and their count (a Prometheus histogram, computed in the database)."""
    duration = jobs.c.completed_at - jobs.c.started_at
    done = sa.and_(jobs.c.status == transitions.COMPLETED, jobs.c.job_type != JobType.BATCH_PARENT.value)
    columns: list[Any] = [sa.func.sum(sa.case((duration <= b, 1), else_=0)) for b in bounds]
    columns += [sa.func.coalesce(sa.func.sum(duration), 0.0), sa.func.count()]
    with q.read() as conn:
        row = conn.execute(sa.select(*columns).where(done)).one()
    return [int(v or 0) for v in row[: len(bounds)]], float(row[-2]), int(row[-1])
