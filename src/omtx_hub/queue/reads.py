"""Read models: a job, lists of jobs and children, events, live workers. No write lock is taken."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import sqlalchemy as sa

from omtx_hub.db.schema import job_events, jobs, workers
from omtx_hub.domain import JobType
from omtx_hub.errors import NotFound
from omtx_hub.queue import transitions
from omtx_hub.queue.core import QueueCore
from omtx_hub.queue.types import Record

__all__ = [
    "events",
    "get",
    "get_record",
    "iter_children",
    "list_children",
    "list_jobs",
    "live_workers",
    "ping",
    "unfinished_count",
]


def get(q: QueueCore, job_id: str, owner: str | None = None) -> Record:
    """A job or batch of ``owner`` (any owner when None); NotFound otherwise."""
    record = get_record(q, job_id)
    if record is None or (owner is not None and record["owner"] != owner):
        raise NotFound(f"no job or batch with id {job_id!r}", code="job_not_found")
    return record


def get_record(q: QueueCore, job_id: str) -> Record | None:
    with q.read() as conn:
        row = conn.execute(sa.select(jobs).where(jobs.c.job_id == job_id)).first()
    return dict(row._mapping) if row else None


def unfinished_count(q: QueueCore, owner: str) -> int:
    """Pending and running jobs of one owner (a batch's from its counters: no scan of children)."""
    active = [transitions.PENDING, transitions.RUNNING]
    with q.read() as conn:
        in_batches = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(jobs.c.n_pending + jobs.c.n_running), 0)).where(
                jobs.c.owner == owner, jobs.c.job_type == JobType.BATCH_PARENT.value, jobs.c.status.in_(active)
            )
        ).scalar_one()
        single = conn.execute(
            sa.select(sa.func.count()).where(
                jobs.c.owner == owner, jobs.c.job_type == JobType.INDIVIDUAL.value, jobs.c.status.in_(active)
            )
        ).scalar_one()
    return int(in_batches) + int(single)


def list_jobs(
    q: QueueCore,
    *,
    owner: str | None = None,
    job_type: str | None = None,
    status: str | None = None,
    limit: int = 50,
    before_id: int | None = None,
) -> list[Record]:
    """Newest first. Without ``job_type``, lists individual jobs and batches (not children)."""
    query = sa.select(jobs).order_by(jobs.c.id.desc()).limit(limit)
    if owner is not None:
        query = query.where(jobs.c.owner == owner)
    if job_type is not None:
        query = query.where(jobs.c.job_type == job_type)
    else:
        query = query.where(jobs.c.job_type != JobType.BATCH_CHILD.value)
    if status is not None:
        query = query.where(jobs.c.status == status)
    if before_id is not None:
        query = query.where(jobs.c.id < before_id)
    with q.read() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def list_children(
    q: QueueCore,
    batch_id: str,
    *,
    status: str | None = None,
    limit: int = 100,
    after_index: int = -1,
    columns: Sequence[str] | None = None,
) -> list[Record]:
    """A page of a batch's children in index order; ``columns``: only these (fewer to decode)."""
    query = (
        (sa.select(*(jobs.c[name] for name in columns)) if columns else sa.select(jobs))
        .where(jobs.c.batch_parent_id == batch_id, jobs.c.batch_index > after_index)
        .order_by(jobs.c.batch_index)
        .limit(limit)
    )
    if status is not None:
        query = query.where(jobs.c.status == status)
    with q.read() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def iter_children(
    q: QueueCore, batch_id: str, page: int = 2000, columns: Sequence[str] | None = None
) -> Iterator[Record]:
    """Every child of a batch in index order, read a page at a time (keyset on ``batch_index``)."""
    after = -1
    if columns and "batch_index" not in columns:
        columns = [*columns, "batch_index"]  # the cursor
    while True:
        rows = list_children(q, batch_id, limit=page, after_index=after, columns=columns)
        yield from rows
        if len(rows) < page:
            return
        after = rows[-1]["batch_index"]


def events(q: QueueCore, job_id: str) -> list[Record]:
    with q.read() as conn:
        rows = conn.execute(sa.select(job_events).where(job_events.c.job_id == job_id).order_by(job_events.c.id))
        return [dict(r._mapping) for r in rows]


def live_workers(q: QueueCore, within_seconds: float) -> list[Record]:
    since = q.clock() - within_seconds
    with q.read() as conn:
        rows = conn.execute(sa.select(workers).where(workers.c.last_seen_at >= since, workers.c.stopped_at.is_(None)))
        return [dict(r._mapping) for r in rows]


def ping(q: QueueCore) -> None:
    """Reach the database (QueueUnavailable when it cannot be reached)."""
    with q.read() as conn:
        conn.execute(sa.text("SELECT 1"))
