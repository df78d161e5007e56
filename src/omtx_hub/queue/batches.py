"""Batch bookkeeping after submission: which finished batches still need their aggregate, storing
it, late ligand properties, and the measured costs of a batch's children."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from omtx_hub.db.schema import job_scores, jobs
from omtx_hub.domain import TERMINAL, JobType
from omtx_hub.queue import reads, transitions
from omtx_hub.queue.core import QueueCore
from omtx_hub.queue.types import Record

__all__ = [
    "batch_costs",
    "batches_to_aggregate",
    "children_by_index",
    "index_properties",
    "mark_aggregated",
    "observed_seconds_per_job",
    "set_inputs",
]


def batches_to_aggregate(q: QueueCore, predictors: Iterable[str], limit: int = 20) -> list[str]:
    with q.read() as conn:
        return list(
            conn.execute(
                sa.select(jobs.c.job_id)
                .where(
                    jobs.c.job_type == JobType.BATCH_PARENT.value,
                    jobs.c.status.in_(TERMINAL),
                    jobs.c.aggregated_at.is_(None),
                    jobs.c.predictor.in_(sorted(set(predictors))),
                )
                .limit(limit)
            ).scalars()
        )


def mark_aggregated(q: QueueCore, batch_id: str, summary: dict[str, Any]) -> None:
    with q.write() as conn:
        conn.execute(
            sa.update(jobs)
            .where(jobs.c.job_id == batch_id, jobs.c.status.in_(TERMINAL))
            .values(results=summary, aggregated_at=q.clock())
        )


def set_inputs(q: QueueCore, inputs: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """Replace the ``input`` of children (job id, input): ligand properties added after submission,
    with the InChIKey among them copied to its indexed column."""
    if not inputs:
        return
    with q.write() as conn:
        conn.execute(
            sa.update(jobs)
            .where(jobs.c.job_id == sa.bindparam("jid"))
            .values(input=sa.bindparam("new_input"), inchikey=sa.bindparam("key")),
            [
                {"jid": job_id, "new_input": value, "key": (value.get("properties") or {}).get("inchikey") or None}
                for job_id, value in inputs
            ],
        )


def index_properties(q: QueueCore, batch_id: str, fields: Sequence[str], ends: int) -> None:
    """Keep in ``job_scores`` the ``ends`` best completed children of a finished batch by each ligand
    property of ``fields`` in either direction (the lowest and the highest values, ties in submission
    order), where :func:`omtx_hub.queue.reads.best_by_score` ranks them as it ranks the other scores:
    the best N ≤ ``ends`` by a property, either way, are among them. The value is the one
    :func:`omtx_hub.queue.reads.best_by_field` ranks by (a result of that name first).

    Both ends, not every child: nine properties of every child would make the table larger than
    the batch's own rows. Per field, one pass of the database over the batch's JSON (read, no lock)
    gives both ends; a short transaction replaces the field's rows (a batch aggregated again after a
    retry may have new ends). Two workers may aggregate one batch at once: the rows one wrote while
    the other replaced them are kept (the same children, the same values)."""
    for field in fields:
        value = reads.field_value(q, field, with_property=True)
        valued = (
            sa.select(jobs.c.batch_index.label("index"), value.label("value"))
            .where(jobs.c.batch_parent_id == batch_id, jobs.c.status == transitions.COMPLETED)
            .cte("valued")
            .prefix_with("MATERIALIZED")  # one pass for both ends
        )
        numbered = sa.select(valued).where(valued.c.value.is_not(None))
        lowest = numbered.order_by(valued.c.value, valued.c.index).limit(ends).subquery()
        highest = numbered.order_by(valued.c.value.desc(), valued.c.index).limit(ends).subquery()
        with q.read() as conn:
            found = {i: v for i, v in conn.execute(sa.union(sa.select(lowest), sa.select(highest)))}
        with q.write() as conn:
            conn.execute(
                sa.delete(job_scores).where(job_scores.c.batch_parent_id == batch_id, job_scores.c.field == field)
            )
            if found:  # two workers may aggregate one batch at once: the rows the other wrote are kept
                insert = postgresql.insert if q.postgres else sqlite.insert
                conn.execute(
                    insert(job_scores).on_conflict_do_nothing(),
                    [
                        {"batch_parent_id": batch_id, "field": field, "value": v, "batch_index": i}
                        for i, v in found.items()
                    ],
                )


def children_by_index(q: QueueCore, batch_id: str, indices: Sequence[int]) -> list[Record]:
    """Children of a batch at the given positions (any order; missing ones are left out)."""
    with q.read() as conn:
        rows = conn.execute(
            sa.select(jobs).where(jobs.c.batch_parent_id == batch_id, jobs.c.batch_index.in_(list(indices)))
        )
        return [dict(r._mapping) for r in rows]


def batch_costs(q: QueueCore, batch_id: str) -> dict[str, Any]:
    """Sums of the children's measured seconds (completed and failed attempts that reported them)."""
    with q.read() as conn:
        row = conn.execute(
            sa.select(
                sa.func.count(jobs.c.accelerator_seconds),
                sa.func.sum(jobs.c.wall_seconds),
                sa.func.sum(jobs.c.accelerator_seconds),
            ).where(jobs.c.batch_parent_id == batch_id)
        ).one()
    return {
        "jobs_measured": int(row[0] or 0),
        "wall_seconds": float(row[1] or 0.0),
        "accelerator_seconds": float(row[2] or 0.0),
    }


def observed_seconds_per_job(
    q: QueueCore, predictor: str, target_key: str, limit: int = 200
) -> tuple[float, int] | None:
    """Median accelerator seconds of the latest completed jobs of this predictor and target."""
    with q.read() as conn:
        values = list(
            conn.execute(
                sa.select(jobs.c.accelerator_seconds)
                .where(
                    jobs.c.predictor == predictor,
                    jobs.c.target_key == target_key,
                    jobs.c.status == transitions.COMPLETED,
                    jobs.c.accelerator_seconds.is_not(None),
                )
                .order_by(jobs.c.id.desc())
                .limit(limit)
            ).scalars()
        )
    if not values:
        return None
    values.sort()
    return float(values[len(values) // 2]), len(values)
