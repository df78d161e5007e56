"""The queue's façade: one method per job operation, each one database transaction.

The jobs table is both the record and the queue. The operations live in cohesive modules, and this
class only holds what they share (:class:`~omtx_hub.queue.core.QueueCore`) and names them:

==================  ==========================================================================
``submit``          a job, or a batch with its children; idempotency keys
``claim``           a worker's micro-batch of one target, fair between batches
``finish``          complete / fail / stopped / release, guarded by the lease holder's attempt
``control``         the user's cancel and retry
``leases``          heartbeats, the worker registry, the reaper of expired leases, pruning
``batches``         aggregation bookkeeping, late ligand properties, measured costs
``reads``           jobs, children, events, live workers
``score_bins``      a batch's primary scores counted in fine bins: its summary without a scan
``metrics``         queue depth, accelerator seconds, run-time histogram
``transitions``     the state machine every change goes through
==================  ==========================================================================

Errors: :class:`~omtx_hub.errors.QueueUnavailable` when the database cannot be reached (never a
driver exception), ``NotFound`` / ``Conflict`` for the user's operations.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from omtx_hub.domain import ClaimedJob
from omtx_hub.queue import batches, claim, control, finish, leases, metrics, reads, score_bins, submit, wakeup
from omtx_hub.queue.core import QueueCore
from omtx_hub.queue.retry import RetryPolicy
from omtx_hub.queue.types import BatchSubmission, Finished, JobSubmission, Record, Submitted

__all__ = ["QueueManager"]


class QueueManager:
    def __init__(
        self,
        engine: sa.Engine,
        *,
        lease_seconds: float = 60.0,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.core = QueueCore(engine, lease_seconds, retry or RetryPolicy(), clock)

    # the primary score of each predictor (the indexed ``score`` column)
    def declare_score(self, predictor: str, result_field: str, others: Sequence[str] = ()) -> None:
        """Copy ``result_field`` of this predictor's completed jobs into the ranked ``score`` column,
        and the ``others`` (other scores) of its completed batch children into ``job_scores``."""
        self.core.score_fields[predictor] = result_field
        self.core.sortable_fields[predictor] = tuple(others)

    def sortable_fields(self, predictor: str) -> tuple[str, ...]:
        """The other scores this predictor's batches keep indexed (none: not known here)."""
        return self.core.sortable_fields.get(predictor, ())

    def score_field(self, predictor: str) -> str | None:
        """The result field the ``score`` column holds for this predictor (None: not known here)."""
        return self.core.score_fields.get(predictor)

    # submission
    def submit_job(self, sub: JobSubmission) -> Submitted:
        return submit.submit_job(self.core, sub)

    def submit_batch(self, sub: BatchSubmission) -> Submitted:
        return submit.submit_batch(self.core, sub)

    # claiming
    def claim(self, worker_id: str, predictors: Iterable[str], limit: int = 1) -> list[ClaimedJob]:
        return claim.claim(self.core, worker_id, predictors, limit)

    def has_runnable(self, predictors: Iterable[str]) -> bool:
        return claim.has_runnable(self.core, predictors)

    def listener(self) -> wakeup.Listener | None:
        """A connection that hears of new jobs (PostgreSQL); None on SQLite, where idle workers probe."""
        return wakeup.Listener(self.core.engine) if self.core.postgres else None

    # leases and workers
    def heartbeat(self, worker_id: str, job_ids: Sequence[str]) -> set[str]:
        return leases.heartbeat(self.core, worker_id, job_ids)

    def register_worker(self, worker_id: str, hostname: str, pid: int, predictors: Sequence[str]) -> None:
        leases.register_worker(self.core, worker_id, hostname, pid, predictors)

    def set_worker_paused(self, worker_id: str, reason: str | None) -> None:
        leases.set_worker_paused(self.core, worker_id, reason)

    def unregister_worker(self, worker_id: str) -> None:
        leases.unregister_worker(self.core, worker_id)

    def reap_expired(self, limit: int = 500) -> int:
        return leases.reap_expired(self.core, limit)

    def prune(self, older_than: float, *, dry_run: bool = False) -> list[tuple[str, str | None]]:
        return leases.prune(self.core, older_than, dry_run=dry_run)

    # finishing, by the lease holder
    def complete(
        self,
        job: ClaimedJob,
        worker_id: str,
        results: dict[str, Any],
        *,
        wall_seconds: float | None = None,
        accelerator_seconds: float | None = None,
    ) -> Finished:
        return finish.complete_many(self.core, [(job, results, wall_seconds, accelerator_seconds)], worker_id)[0]

    def complete_many(self, items: Sequence[finish.Completion], worker_id: str) -> list[Finished]:
        return finish.complete_many(self.core, items, worker_id)

    def fail(self, job: ClaimedJob, worker_id: str, *, code: str, message: str, transient: bool) -> Finished:
        return finish.fail(self.core, job, worker_id, code=code, message=message, transient=transient)

    def stopped(self, job: ClaimedJob, worker_id: str) -> Finished:
        return finish.stopped(self.core, job, worker_id)

    def release(self, job: ClaimedJob, worker_id: str, *, error: dict[str, str] | None = None) -> Finished:
        return finish.release(self.core, job, worker_id, error=error)

    # the user's operations
    def cancel(self, job_id: str, owner: str | None = None) -> Record:
        return control.cancel(self.core, job_id, owner)

    def retry(self, job_id: str, owner: str | None = None) -> Record:
        return control.retry(self.core, job_id, owner)

    # batches
    def batches_to_aggregate(self, predictors: Iterable[str], limit: int = 20) -> list[str]:
        return batches.batches_to_aggregate(self.core, predictors, limit)

    def mark_aggregated(self, batch_id: str, summary: dict[str, Any]) -> None:
        batches.mark_aggregated(self.core, batch_id, summary)

    def index_properties(self, batch_id: str, fields: Sequence[str], ends: int) -> None:
        batches.index_properties(self.core, batch_id, fields, ends)

    def set_inputs(self, inputs: Sequence[tuple[str, dict[str, Any]]]) -> None:
        batches.set_inputs(self.core, inputs)

    def children_by_index(self, batch_id: str, indices: Sequence[int]) -> list[Record]:
        return batches.children_by_index(self.core, batch_id, indices)

    def batch_costs(self, batch_id: str) -> dict[str, Any]:
        return batches.batch_costs(self.core, batch_id)

    def observed_seconds_per_job(self, predictor: str, target_key: str, limit: int = 200) -> tuple[float, int] | None:
        return batches.observed_seconds_per_job(self.core, predictor, target_key, limit)

    # reads
    def get(self, job_id: str, owner: str | None = None) -> Record:
        return reads.get(self.core, job_id, owner)

    def unfinished_count(self, owner: str) -> int:
        return reads.unfinished_count(self.core, owner)

    def list_jobs(
        self,
        *,
        owner: str | None = None,
        job_type: str | None = None,
        status: str | None = None,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[Record]:
        return reads.list_jobs(
            self.core, owner=owner, job_type=job_type, status=status, limit=limit, before_id=before_id
        )

    def list_children(
        self,
        batch_id: str,
        *,
        status: str | None = None,
        limit: int = 100,
        after_index: int = -1,
        columns: Sequence[str] | None = None,
    ) -> list[Record]:
        return reads.list_children(
            self.core, batch_id, status=status, limit=limit, after_index=after_index, columns=columns
        )

    def ranked_children(
        self,
        batch_id: str,
        *,
        direction: str,
        limit: int,
        after: tuple[float, int] | None = None,
        columns: Sequence[str] | None = None,
    ) -> list[Record]:
        return reads.ranked_children(
            self.core, batch_id, direction=direction, limit=limit, after=after, columns=columns
        )

    def best_by_field(
        self,
        batch_id: str,
        *,
        field: str,
        with_property: bool,
        direction: str,
        limit: int,
        columns: Sequence[str] | None = None,
    ) -> list[Record]:
        return reads.best_by_field(
            self.core,
            batch_id,
            field=field,
            with_property=with_property,
            direction=direction,
            limit=limit,
            columns=columns,
        )

    def best_by_score(
        self, batch_id: str, *, field: str, direction: str, limit: int, columns: Sequence[str] | None = None
    ) -> list[Record]:
        return reads.best_by_score(self.core, batch_id, field=field, direction=direction, limit=limit, columns=columns)

    def unranked_by_field(
        self,
        batch_id: str,
        *,
        field: str,
        with_property: bool,
        status: str | None,
        limit: int,
        columns: Sequence[str] | None = None,
    ) -> list[Record]:
        return reads.unranked_by_field(
            self.core,
            batch_id,
            field=field,
            with_property=with_property,
            status=status,
            limit=limit,
            columns=columns,
        )

    def unscored_children(
        self,
        batch_id: str,
        *,
        status: str | None = None,
        limit: int = 100,
        after_index: int = -1,
        columns: Sequence[str] | None = None,
    ) -> list[Record]:
        return reads.list_children(
            self.core, batch_id, status=status, limit=limit, after_index=after_index, columns=columns, unscored=True
        )

    def first_by_inchikey(self, batch_id: str, keys: Sequence[str] | None) -> dict[str, tuple[int, str]]:
        return reads.first_by_inchikey(self.core, batch_id, keys)

    def recount_score_bins(self, batch_id: str) -> bool:
        """Count a batch's score bins again; True when they had to be rewritten."""
        return score_bins.recount(self.core, batch_id)

    def score_summary(self, batch_id: str, bins: int = 20) -> dict[str, Any] | None:
        """The summary of a batch's primary scores, from its fine bins (:mod:`~omtx_hub.queue.score_bins`)."""
        return score_bins.summary(self.core, batch_id, bins)

    def iter_children(self, batch_id: str, page: int = 2000, columns: Sequence[str] | None = None) -> Iterator[Record]:
        return reads.iter_children(self.core, batch_id, page, columns)

    def events(self, job_id: str) -> list[Record]:
        return reads.events(self.core, job_id)

    def live_workers(self, within_seconds: float) -> list[Record]:
        return reads.live_workers(self.core, within_seconds)

    def ping(self) -> None:
        reads.ping(self.core)

    # metrics
    def status_counts(self) -> dict[tuple[str, str, str], int]:
        return metrics.status_counts(self.core)

    def accelerator_seconds(self) -> dict[str, float]:
        return metrics.accelerator_seconds(self.core)

    def duration_histogram(self, bounds: Sequence[float]) -> tuple[list[int], float, int]:
        return metrics.duration_histogram(self.core, bounds)
