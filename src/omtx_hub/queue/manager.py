"""The queue manager: one method per job operation, each one database transaction.

The jobs table is both the record and the queue. Every state change of a child updates its
parent's counters in the same transaction, and is written to ``job_events``.

Lock order on PostgreSQL (to stay free of deadlocks): child rows before the parent row. The one
exception, ``claim``, locks the parent first but then only takes children with SKIP LOCKED, so it
never waits on a child.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from omtx_hub.db.engine import read_connection
from omtx_hub.db.schema import job_events, jobs, workers
from omtx_hub.domain import ACTIVE, TERMINAL, ClaimedJob, JobStatus, JobType, Ligand, target_key_for
from omtx_hub.errors import Conflict, NotFound
from omtx_hub.queue.retry import RetryPolicy

__all__ = ["BatchSubmission", "Finished", "JobSubmission", "QueueManager", "Submitted"]

Record = dict[str, Any]

PENDING, RUNNING = JobStatus.PENDING.value, JobStatus.RUNNING.value
COMPLETED, FAILED, CANCELLED = JobStatus.COMPLETED.value, JobStatus.FAILED.value, JobStatus.CANCELLED.value
_COUNTER = {PENDING: "n_pending", RUNNING: "n_running", COMPLETED: "n_completed", FAILED: "n_failed",
            CANCELLED: "n_cancelled"}  # fmt: skip
_INSERT_CHUNK = 5000


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(15)}"


@dataclass(frozen=True)
class JobSubmission:
    owner: str
    predictor: str
    protein_sequence: str
    ligand: Ligand
    max_attempts: int
    params: dict[str, Any] = field(default_factory=dict)
    target: dict[str, Any] = field(default_factory=dict)
    priority: int = 0
    idempotency_key: str | None = None
    properties: dict[str, Any] | None = None  # of the ligand (omtx_hub.ligands)
    endpoint: str = "POST /api/v1/jobs/predict"  # where it was asked for: an idempotency key is per endpoint


@dataclass(frozen=True)
class BatchSubmission:
    owner: str
    predictor: str
    protein_sequence: str
    batch_name: str
    ligands: Sequence[Ligand]
    max_attempts: int
    params: dict[str, Any] = field(default_factory=dict)
    target: dict[str, Any] = field(default_factory=dict)
    max_concurrent: int | None = None
    priority: int = 0
    idempotency_key: str | None = None
    skipped: list[dict[str, Any]] = field(default_factory=list)
    filtered: list[dict[str, Any]] = field(default_factory=list)
    filters: dict[str, Any] | None = None
    properties: Sequence[dict[str, Any]] | None = None  # per ligand, when computed at submission
    source: dict[str, Any] | None = None  # a rescoring funnel: the batch (and ranking) these ligands came from
    endpoint: str = "POST /api/v1/jobs/predict/batch"


@dataclass(frozen=True)
class Submitted:
    record: Record
    created: bool


@dataclass(frozen=True)
class Finished:
    """What a worker's finishing call did: ``applied`` is False when the worker no longer held the lease."""

    applied: bool
    status: str | None = None
    parent_finished: str | None = None


def _request_of(endpoint: str, **fields: Any) -> Record:
    """What an idempotent submission asked for: its endpoint and a digest of each field (compact, and
    enough to name the fields in which a later request with the same key differs)."""
    def digest(value: Any) -> str:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    return {"endpoint": endpoint, "fields": {name: digest(value) for name, value in fields.items()}}


class QueueManager:
    def __init__(
        self,
        engine: sa.Engine,
        *,
        lease_seconds: float = 60.0,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.lease_seconds = lease_seconds
        self.retry_policy = retry or RetryPolicy()
        self.clock = clock
        self._pg = engine.dialect.name == "postgresql"

    # ------------------------------------------------------------------ connections

    def _write(self) -> Any:
        return self.engine.begin()

    def read(self) -> Any:
        """A connection for reads (see :func:`omtx_hub.db.engine.read_connection`)."""
        return read_connection(self.engine)

    # ------------------------------------------------------------------ submission

    def submit_job(self, sub: JobSubmission) -> Submitted:
        request = None if sub.idempotency_key is None else _request_of(
            sub.endpoint, predictor=sub.predictor, protein_sequence=sub.protein_sequence, target=sub.target,
            ligand_name=sub.ligand.name, ligand_smiles=sub.ligand.smiles, params=sub.params, priority=sub.priority)  # fmt: skip
        existing = self._by_idempotency_key(sub.owner, sub.idempotency_key, request)
        if existing is not None:
            return Submitted(existing, created=False)
        now = self.clock()
        row = {
            "job_id": new_id("job"),
            "job_type": JobType.INDIVIDUAL.value,
            "status": PENDING,
            "owner": sub.owner,
            "name": sub.ligand.name,
            "predictor": sub.predictor,
            "params": sub.params,
            "target_key": target_key_for(sub.predictor, sub.protein_sequence, sub.target),
            "input": {
                "protein_sequence": sub.protein_sequence,
                "target": sub.target,
                "ligand_name": sub.ligand.name,
                "ligand_smiles": sub.ligand.smiles,
                **({"properties": sub.properties} if sub.properties is not None else {}),
            },
            "priority": sub.priority,
            "max_attempts": sub.max_attempts,
            "run_after": now,
            "idempotency_key": sub.idempotency_key,
            "idempotency_request": request,
            "created_at": now,
        }
        try:
            with self._write() as conn:
                conn.execute(jobs.insert(), row)
                self._event(conn, row["job_id"], None, PENDING, now, reason="submitted")
        except sa.exc.IntegrityError:
            existing = self._by_idempotency_key(sub.owner, sub.idempotency_key, request)
            if existing is None:
                raise
            return Submitted(existing, created=False)
        return Submitted(self._get(row["job_id"]), created=True)

    def submit_batch(self, sub: BatchSubmission) -> Submitted:
        request = None if sub.idempotency_key is None else _request_of(
            sub.endpoint, predictor=sub.predictor, protein_sequence=sub.protein_sequence, target=sub.target,
            batch_name=sub.batch_name, ligands=[[lig.name, lig.smiles] for lig in sub.ligands], skipped=sub.skipped,
            filtered=sub.filtered, filters=sub.filters, params=sub.params, max_concurrent=sub.max_concurrent,
            priority=sub.priority, source=sub.source)  # fmt: skip
        existing = self._by_idempotency_key(sub.owner, sub.idempotency_key, request)
        if existing is not None:
            return Submitted(existing, created=False)
        now = self.clock()
        batch_id = new_id("batch")
        key = target_key_for(sub.predictor, sub.protein_sequence, sub.target)
        total = len(sub.ligands)
        parent = {
            "job_id": batch_id,
            "job_type": JobType.BATCH_PARENT.value,
            "status": PENDING,
            "owner": sub.owner,
            "name": sub.batch_name,
            "predictor": sub.predictor,
            "params": sub.params,
            "target_key": key,
            "input": {"protein_sequence": sub.protein_sequence, "target": sub.target, "skipped": sub.skipped,
                      **({"filters": sub.filters, "filtered": sub.filtered} if sub.filters is not None else {}),
                      **({"source": sub.source} if sub.source is not None else {})},
            "n_total": total,
            "n_pending": total,
            "max_concurrent": sub.max_concurrent,
            "priority": sub.priority,
            "max_attempts": sub.max_attempts,
            "run_after": now,
            "idempotency_key": sub.idempotency_key,
            "idempotency_request": request,
            "created_at": now,
        }
        child_common = {
            "job_type": JobType.BATCH_CHILD.value,
            "status": PENDING,
            "owner": sub.owner,
            "predictor": sub.predictor,
            "params": sub.params,
            "target_key": key,
            "batch_parent_id": batch_id,
            "priority": sub.priority,
            "max_attempts": sub.max_attempts,
            "run_after": now,
            "created_at": now,
        }
        try:
            with self._write() as conn:
                conn.execute(jobs.insert(), parent)
                for start in range(0, total, _INSERT_CHUNK):
                    chunk = sub.ligands[start : start + _INSERT_CHUNK]
                    self._insert_rows(conn, [
                        {
                            **child_common,
                            "job_id": new_id("job"),
                            "name": lig.name,
                            "batch_index": start + i,
                            "input": {"ligand_name": lig.name, "ligand_smiles": lig.smiles,
                                      **({"properties": sub.properties[start + i]} if sub.properties else {})},
                        }
                        for i, lig in enumerate(chunk)
                    ])  # fmt: skip
                self._event(conn, batch_id, None, PENDING, now, reason=f"submitted with {total} ligands")
        except sa.exc.IntegrityError:
            existing = self._by_idempotency_key(sub.owner, sub.idempotency_key, request)
            if existing is None:
                raise
            return Submitted(existing, created=False)
        return Submitted(self._get(batch_id), created=True)

    def _by_idempotency_key(self, owner: str, key: str | None, request: Record | None) -> Record | None:
        """The submission this owner made with ``key``, if it asked for the same as ``request``;
        Conflict (``idempotency_key_reused``) naming what differs if it asked for something else."""
        if key is None or request is None:
            return None
        with self.read() as conn:
            row = conn.execute(
                sa.select(jobs).where(jobs.c.owner == owner, jobs.c.idempotency_key == key)
            ).first()
        if row is None:
            return None
        existing = dict(row._mapping)
        before = existing["idempotency_request"]
        if before is None:  # submitted before requests were recorded: the key alone decides, as it did then
            return existing
        if before["endpoint"] != request["endpoint"]:
            differs = ["endpoint"]
        else:
            names = sorted(set(before["fields"]) | set(request["fields"]))
            differs = [n for n in names if before["fields"].get(n) != request["fields"].get(n)]
        if differs:
            raise Conflict(
                f"idempotency key {key!r} was used for a different request ({before['endpoint']}, "
                f"{existing['job_id']}); it differs in: {', '.join(differs)}. Use a new key for a new request.",
                code="idempotency_key_reused",
                details={"idempotency_key": key, "job_id": existing["job_id"], "endpoint": before["endpoint"],
                         "differs": differs},
            )  # fmt: skip
        return existing

    def _insert_rows(self, conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
        """Insert job rows that all have the same keys: COPY on PostgreSQL (2.3× faster than the
        multi-row INSERTs SQLAlchemy sends: 1.7 s vs 3.8 s for 100,000 children), executemany on SQLite."""
        if not self._pg:
            conn.execute(jobs.insert(), rows)
            return
        names = list(rows[0])
        as_json = [isinstance(jobs.c[name].type, sa.JSON) for name in names]
        raw: Any = conn.connection.dbapi_connection  # psycopg's, inside this transaction
        with raw.cursor() as cursor, cursor.copy(f"COPY jobs ({', '.join(names)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([json.dumps(row[n]) if j else row[n] for n, j in zip(names, as_json, strict=True)])

    # ------------------------------------------------------------------ claiming

    def claim(self, worker_id: str, predictors: Iterable[str], limit: int = 1) -> list[ClaimedJob]:
        """Claim up to ``limit`` pending jobs of one target for ``worker_id`` (a micro-batch).

        Order: priority, then fair share (the batch served longest ago, an individual job counting
        as a group of its own that was last served when it was submitted), then age.
        """
        names = sorted(set(predictors))
        if not names:
            return []
        now = self.clock()
        with self._write() as conn:
            for kind, ident in self._claim_candidates(conn, names, now):
                if kind == "batch":
                    claimed = self._claim_children(conn, ident, worker_id, limit, now)
                else:
                    claimed = self._claim_individuals(conn, ident, worker_id, limit, now)
                if claimed:
                    return claimed
        return []

    def _claim_candidates(self, conn: sa.Connection, names: list[str], now: float) -> list[tuple[str, Any]]:
        turn = sa.func.coalesce(jobs.c.last_claimed_at, jobs.c.created_at)
        batches = conn.execute(
            sa.select(jobs.c.job_id, jobs.c.priority, turn.label("turn"), jobs.c.id)
            .where(
                jobs.c.job_type == JobType.BATCH_PARENT.value,
                jobs.c.status.in_(ACTIVE),
                jobs.c.n_pending > 0,
                jobs.c.predictor.in_(names),
                sa.or_(jobs.c.max_concurrent.is_(None), jobs.c.n_running < jobs.c.max_concurrent),
            )
            .order_by(jobs.c.priority.desc(), turn, jobs.c.id)
            .limit(16)
        ).all()
        head = conn.execute(
            sa.select(jobs.c.id, jobs.c.priority, jobs.c.created_at, jobs.c.predictor, jobs.c.target_key)
            .where(
                jobs.c.batch_parent_id.is_(None),
                jobs.c.status == PENDING,
                jobs.c.job_type == JobType.INDIVIDUAL.value,
                jobs.c.run_after <= now,
                jobs.c.predictor.in_(names),
            )
            .order_by(jobs.c.priority.desc(), jobs.c.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        ).first()
        ranked: list[tuple[tuple[float, float, int], str, Any]] = [
            ((-b.priority, b.turn, b.id), "batch", b.job_id) for b in batches
        ]
        if head is not None:
            ranked.append(((-head.priority, head.created_at, head.id), "individual", head))
        ranked.sort(key=lambda item: item[0])
        return [(kind, ident) for _, kind, ident in ranked]

    def _claim_children(
        self, conn: sa.Connection, batch_id: str, worker_id: str, limit: int, now: float
    ) -> list[ClaimedJob]:
        parent = conn.execute(
            sa.select(jobs.c.status, jobs.c.n_running, jobs.c.max_concurrent, jobs.c.input)
            .where(jobs.c.job_id == batch_id)
            .with_for_update()
        ).one()
        if parent.status not in ACTIVE:
            return []
        cap = limit if parent.max_concurrent is None else min(limit, parent.max_concurrent - parent.n_running)
        if cap <= 0:
            return []
        rows = conn.execute(
            sa.select(*_claim_columns())
            .where(jobs.c.batch_parent_id == batch_id, jobs.c.status == PENDING, jobs.c.run_after <= now)
            .order_by(jobs.c.id)
            .limit(cap)
            .with_for_update(skip_locked=True)
        ).all()
        if not rows:
            return []
        self._mark_running(conn, rows, worker_id, now)
        conn.execute(
            sa.update(jobs)
            .where(jobs.c.job_id == batch_id)
            .values(
                n_pending=jobs.c.n_pending - len(rows),
                n_running=jobs.c.n_running + len(rows),
                last_claimed_at=now,
                status=RUNNING,
                started_at=sa.func.coalesce(jobs.c.started_at, now),
            )
        )
        if parent.status == PENDING:
            self._event(conn, batch_id, PENDING, RUNNING, now, worker_id=worker_id, reason="first child claimed")
        shared = {"protein_sequence": parent.input["protein_sequence"], "target": parent.input.get("target", {})}
        return [_claimed(row, {**shared, **row.input}) for row in rows]

    def _claim_individuals(
        self, conn: sa.Connection, head: Any, worker_id: str, limit: int, now: float
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
        self._mark_running(conn, rows, worker_id, now)
        return [_claimed(row, row.input) for row in rows]

    def _mark_running(self, conn: sa.Connection, rows: Sequence[Any], worker_id: str, now: float) -> None:
        conn.execute(
            sa.update(jobs)
            .where(jobs.c.id.in_([r.id for r in rows]))
            .values(
                status=RUNNING,
                worker_id=worker_id,
                attempts=jobs.c.attempts + 1,
                lease_expires_at=now + self.lease_seconds,
                started_at=now,
            )
        )
        conn.execute(
            job_events.insert(),
            [
                {"job_id": r.job_id, "from_status": PENDING, "to_status": RUNNING, "at": now,
                 "worker_id": worker_id, "attempt": r.attempts + 1, "reason": "claimed"}
                for r in rows
            ],
        )  # fmt: skip

    def has_runnable(self, predictors: Iterable[str]) -> bool:
        """A cheap read (no write lock): is any job of these predictors pending and due?"""
        with self.read() as conn:
            row = conn.execute(
                sa.select(jobs.c.id)
                .where(jobs.c.status == PENDING, jobs.c.run_after <= self.clock(),
                       jobs.c.job_type != JobType.BATCH_PARENT.value, jobs.c.predictor.in_(sorted(set(predictors))))
                .limit(1)
            ).first()  # fmt: skip
        return row is not None

    # ------------------------------------------------------------------ leases

    def heartbeat(self, worker_id: str, job_ids: Sequence[str]) -> set[str]:
        """Extend the leases ``worker_id`` holds; return the jobs it must stop (cancelled or lost)."""
        now = self.clock()
        with self._write() as conn:
            conn.execute(sa.update(workers).where(workers.c.worker_id == worker_id).values(last_seen_at=now))
            if not job_ids:
                return set()
            conn.execute(
                sa.update(jobs)
                .where(jobs.c.job_id.in_(job_ids), jobs.c.status == RUNNING, jobs.c.worker_id == worker_id)
                .values(lease_expires_at=now + self.lease_seconds)
            )
            rows = conn.execute(
                sa.select(jobs.c.job_id, jobs.c.status, jobs.c.worker_id, jobs.c.cancel_requested).where(
                    jobs.c.job_id.in_(job_ids)
                )
            ).all()
        return {
            r.job_id for r in rows if r.cancel_requested or r.status != RUNNING or r.worker_id != worker_id
        }

    def register_worker(self, worker_id: str, hostname: str, pid: int, predictors: Sequence[str]) -> None:
        now = self.clock()
        with self._write() as conn:
            conn.execute(sa.delete(workers).where(workers.c.worker_id == worker_id))
            conn.execute(
                workers.insert(),
                {"worker_id": worker_id, "hostname": hostname, "pid": pid, "predictors": sorted(predictors),
                 "started_at": now, "last_seen_at": now},
            )  # fmt: skip

    def set_worker_paused(self, worker_id: str, reason: str | None) -> None:
        """Record why a live worker claims nothing (None: it works again); status and /readyz say so."""
        with self._write() as conn:
            conn.execute(sa.update(workers).where(workers.c.worker_id == worker_id)
                         .values(paused_reason=reason[:500] if reason else None))  # fmt: skip

    def unregister_worker(self, worker_id: str) -> None:
        with self._write() as conn:
            conn.execute(
                sa.update(workers).where(workers.c.worker_id == worker_id).values(stopped_at=self.clock())
            )

    def reap_expired(self, limit: int = 500) -> int:
        """Give every job whose lease expired back to the queue (or fail it when out of attempts)."""
        now = self.clock()
        with self._write() as conn:
            rows = conn.execute(
                sa.select(jobs.c.job_id, jobs.c.worker_id, jobs.c.attempts)
                .where(jobs.c.status == RUNNING, jobs.c.lease_expires_at < now)
                .order_by(jobs.c.lease_expires_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            for row in rows:
                self._fail_locked(
                    conn, row.job_id, row.worker_id, row.attempts, now,
                    error={"code": "worker_lost", "message": f"worker {row.worker_id} stopped renewing its lease"},
                    transient=True,
                )  # fmt: skip
        return len(rows)

    # ------------------------------------------------------------------ finishing (by the lease holder)

    def complete(
        self,
        job: ClaimedJob,
        worker_id: str,
        results: dict[str, Any],
        *,
        wall_seconds: float | None = None,
        accelerator_seconds: float | None = None,
    ) -> Finished:
        """Complete one job (guarded: only the holder of that attempt can)."""
        return self.complete_many([(job, results, wall_seconds, accelerator_seconds)], worker_id)[0]

    def complete_many(
        self, items: Sequence[tuple[ClaimedJob, dict[str, Any], float | None, float | None]], worker_id: str
    ) -> list[Finished]:
        """Complete several jobs in one transaction: (job, results, wall_seconds, accelerator_seconds).

        Each job keeps its own guard (status, worker, attempt); the parents' counters move once per
        parent. This is what lets a fast predictor's micro-batch cost one commit instead of one per job.
        """
        if not items:
            return []
        now = self.clock()
        out: list[Finished] = []
        moves: dict[str, int] = {}
        events: list[dict[str, Any]] = []
        with self._write() as conn:
            # The guard (still running, held by this worker, same attempt), checked for all at once on
            # locked rows; then one executemany (one round trip on PostgreSQL: psycopg pipelines it).
            held = {
                r.job_id: r
                for r in conn.execute(
                    sa.select(jobs.c.job_id, jobs.c.attempts, jobs.c.batch_parent_id)
                    .where(jobs.c.job_id.in_([job.job_id for job, *_ in items]), jobs.c.status == RUNNING,
                           jobs.c.worker_id == worker_id)
                    .with_for_update()
                )
            }  # fmt: skip
            rows = []
            for job, results, wall, accel in items:
                row = held.get(job.job_id)
                if row is None or row.attempts != job.attempt:
                    out.append(Finished(applied=False))
                    continue
                rows.append({"b_job_id": job.job_id, "b_results": results, "b_wall": wall, "b_accel": accel})
                events.append({"job_id": job.job_id, "from_status": RUNNING, "to_status": COMPLETED, "at": now,
                               "worker_id": worker_id, "attempt": job.attempt, "reason": "completed"})  # fmt: skip
                if row.batch_parent_id is not None:
                    moves[row.batch_parent_id] = moves.get(row.batch_parent_id, 0) + 1
                out.append(Finished(applied=True, status=COMPLETED))
            if rows:
                conn.execute(
                    sa.update(jobs)
                    .where(jobs.c.job_id == sa.bindparam("b_job_id"))
                    .values(status=COMPLETED, results=sa.bindparam("b_results", type_=jobs.c.results.type),
                            error=None, completed_at=now, lease_expires_at=None,
                            wall_seconds=sa.bindparam("b_wall"), accelerator_seconds=sa.bindparam("b_accel")),
                    rows,
                )  # fmt: skip
            if events:
                conn.execute(job_events.insert(), events)
            finished = {
                parent: self._shift_parent(conn, parent, Counter({(RUNNING, COMPLETED): n}), now)
                for parent, n in sorted(moves.items())
            }
        if any(finished.values()):
            out = [
                Finished(applied=f.applied, status=f.status, parent_finished=finished.get(job.batch_parent_id or ""))
                if f.applied else f
                for f, (job, *_rest) in zip(out, items, strict=True)
            ]  # fmt: skip
        return out

    def fail(self, job: ClaimedJob, worker_id: str, *, code: str, message: str, transient: bool) -> Finished:
        now = self.clock()
        with self._write() as conn:
            return self._fail_locked(
                conn, job.job_id, worker_id, job.attempt, now,
                error={"code": code, "message": message}, transient=transient,
            )  # fmt: skip

    def stopped(self, job: ClaimedJob, worker_id: str) -> Finished:
        """The worker stopped ``job`` because it was asked to cancel it."""
        now = self.clock()
        with self._write() as conn:
            return self._transition(
                conn, job.job_id, worker_id, job.attempt, CANCELLED, now, reason="stopped on cancel request",
                values={"completed_at": now, "lease_expires_at": None},
            )  # fmt: skip

    def release(self, job: ClaimedJob, worker_id: str, *, error: dict[str, str] | None = None) -> Finished:
        """Give a claimed job back (graceful shutdown, a store that refuses writes); the attempt is not
        counted. ``error`` says why, on the job, until it runs again."""
        now = self.clock()
        values: dict[str, Any] = {"worker_id": None, "lease_expires_at": None, "run_after": now,
                                  "attempts": jobs.c.attempts - 1}  # fmt: skip
        if error is not None:
            values["error"] = error
        with self._write() as conn:
            return self._transition(
                conn, job.job_id, worker_id, job.attempt, PENDING, now,
                reason=f"released by worker: {error['code']}" if error else "released by worker", values=values,
            )  # fmt: skip

    def _fail_locked(
        self,
        conn: sa.Connection,
        job_id: str,
        worker_id: str,
        attempt: int,
        now: float,
        *,
        error: dict[str, str],
        transient: bool,
    ) -> Finished:
        row = conn.execute(
            sa.select(jobs.c.max_attempts, jobs.c.cancel_requested).where(jobs.c.job_id == job_id)
        ).first()
        if row is None:
            return Finished(applied=False)
        if row.cancel_requested:
            return self._transition(
                conn, job_id, worker_id, attempt, CANCELLED, now, reason=f"cancelled ({error['code']})",
                values={"completed_at": now, "lease_expires_at": None},
            )  # fmt: skip
        decision = self.retry_policy.decide(attempt=attempt, max_attempts=row.max_attempts, transient=transient)
        if decision.retry:
            return self._transition(
                conn, job_id, worker_id, attempt, PENDING, now,
                reason=f"retry in {decision.delay_seconds:g}s after {error['code']}: {error['message']}"[:500],
                values={"error": error, "worker_id": None, "lease_expires_at": None,
                        "run_after": now + decision.delay_seconds},
            )  # fmt: skip
        return self._transition(
            conn, job_id, worker_id, attempt, FAILED, now, reason=f"{error['code']}: {error['message']}"[:500],
            values={"error": error, "completed_at": now, "lease_expires_at": None},
        )  # fmt: skip

    def _transition(
        self,
        conn: sa.Connection,
        job_id: str,
        worker_id: str,
        attempt: int,
        to: str,
        now: float,
        *,
        reason: str,
        values: dict[str, Any],
    ) -> Finished:
        """Move a running job out of ``running``, guarded: only the holder of that attempt can."""
        result = conn.execute(
            sa.update(jobs)
            .where(
                jobs.c.job_id == job_id,
                jobs.c.status == RUNNING,
                jobs.c.worker_id == worker_id,
                jobs.c.attempts == attempt,
            )
            .values(status=to, **values)
            .returning(jobs.c.batch_parent_id)
        ).first()
        if result is None:
            return Finished(applied=False)
        self._event(conn, job_id, RUNNING, to, now, worker_id=worker_id, attempt=attempt, reason=reason)
        finished = None
        if result.batch_parent_id is not None:
            finished = self._shift_parent(conn, result.batch_parent_id, Counter({(RUNNING, to): 1}), now)
        return Finished(applied=True, status=to, parent_finished=finished)

    # ------------------------------------------------------------------ user operations

    def cancel(self, job_id: str, owner: str | None = None) -> Record:
        record = self.get(job_id, owner)
        now = self.clock()
        if record["status"] in TERMINAL:
            raise Conflict(f"job {job_id} is already {record['status']}; nothing to cancel", code="job_finished")
        with self._write() as conn:
            if record["job_type"] == JobType.BATCH_PARENT.value:
                cancelled = conn.execute(
                    sa.update(jobs)
                    .where(jobs.c.batch_parent_id == job_id, jobs.c.status == PENDING)
                    .values(status=CANCELLED, completed_at=now)
                    .returning(jobs.c.job_id)
                ).scalars().all()
                conn.execute(
                    sa.update(jobs)
                    .where(jobs.c.batch_parent_id == job_id, jobs.c.status == RUNNING)
                    .values(cancel_requested=True)
                )
                self._events(conn, cancelled, PENDING, CANCELLED, now, reason="batch cancelled")
                conn.execute(sa.update(jobs).where(jobs.c.job_id == job_id).values(cancel_requested=True))
                self._shift_parent(conn, job_id, Counter({(PENDING, CANCELLED): len(cancelled)}), now)
            else:
                row = conn.execute(
                    sa.update(jobs)
                    .where(jobs.c.job_id == job_id, jobs.c.status == PENDING)
                    .values(status=CANCELLED, completed_at=now)
                    .returning(jobs.c.batch_parent_id)
                ).first()
                if row is not None:
                    self._event(conn, job_id, PENDING, CANCELLED, now, reason="cancelled by user")
                    if row.batch_parent_id:
                        self._shift_parent(conn, row.batch_parent_id, Counter({(PENDING, CANCELLED): 1}), now)
                else:
                    conn.execute(
                        sa.update(jobs)
                        .where(jobs.c.job_id == job_id, jobs.c.status == RUNNING)
                        .values(cancel_requested=True)
                    )
        return self.get(job_id, owner)

    def retry(self, job_id: str, owner: str | None = None) -> Record:
        record = self.get(job_id, owner)
        now = self.clock()
        reset = {"status": PENDING, "attempts": 0, "error": None, "results": None, "run_after": now,
                 "completed_at": None, "worker_id": None, "lease_expires_at": None, "cancel_requested": False}  # fmt: skip
        with self._write() as conn:
            if record["job_type"] == JobType.BATCH_PARENT.value:
                ids = conn.execute(
                    sa.update(jobs)
                    .where(jobs.c.batch_parent_id == job_id, jobs.c.status == FAILED)
                    .values(**reset)
                    .returning(jobs.c.job_id)
                ).scalars().all()
                if not ids:
                    raise Conflict(f"batch {job_id} has no failed children to retry", code="nothing_to_retry")
                self._events(conn, ids, FAILED, PENDING, now, reason="retried by user")
                conn.execute(sa.update(jobs).where(jobs.c.job_id == job_id).values(cancel_requested=False))
                self._shift_parent(conn, job_id, Counter({(FAILED, PENDING): len(ids)}), now)
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
                self._event(conn, job_id, record["status"], PENDING, now, reason="retried by user")
                if row.batch_parent_id:
                    conn.execute(
                        sa.update(jobs).where(jobs.c.job_id == row.batch_parent_id).values(cancel_requested=False)
                    )
                    self._shift_parent(conn, row.batch_parent_id, Counter({(record["status"], PENDING): 1}), now)
        return self.get(job_id, owner)

    # ------------------------------------------------------------------ parents

    def _shift_parent(
        self, conn: sa.Connection, parent_id: str, moves: Counter[tuple[str, str]], now: float
    ) -> str | None:
        """Apply child moves to the parent's counters, then settle its status. Returns a final status."""
        deltas: Counter[str] = Counter()
        for (src, dst), n in moves.items():
            deltas[_COUNTER[src]] -= n
            deltas[_COUNTER[dst]] += n
        values = {col: jobs.c[col] + d for col, d in deltas.items() if d}
        if values:
            conn.execute(sa.update(jobs).where(jobs.c.job_id == parent_id).values(**values))
        p = conn.execute(
            sa.select(jobs.c.status, jobs.c.n_pending, jobs.c.n_running, jobs.c.n_completed, jobs.c.n_failed)
            .where(jobs.c.job_id == parent_id)
        ).one()
        active = p.n_pending + p.n_running
        if active == 0 and p.status in ACTIVE:
            final = COMPLETED if p.n_completed else FAILED if p.n_failed else CANCELLED
            conn.execute(sa.update(jobs).where(jobs.c.job_id == parent_id).values(status=final, completed_at=now))
            self._event(conn, parent_id, p.status, final, now, reason="no child left to run")
            return final
        if active and p.status in TERMINAL:
            reopened = RUNNING if p.n_running else PENDING
            conn.execute(
                sa.update(jobs)
                .where(jobs.c.job_id == parent_id)
                .values(status=reopened, completed_at=None, aggregated_at=None)
            )
            self._event(conn, parent_id, p.status, reopened, now, reason="children retried")
        return None

    def batches_to_aggregate(self, predictors: Iterable[str], limit: int = 20) -> list[str]:
        with self.read() as conn:
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

    def mark_aggregated(self, batch_id: str, summary: dict[str, Any]) -> None:
        with self._write() as conn:
            conn.execute(
                sa.update(jobs)
                .where(jobs.c.job_id == batch_id, jobs.c.status.in_(TERMINAL))
                .values(results=summary, aggregated_at=self.clock())
            )

    def set_inputs(self, inputs: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Replace the ``input`` of children (job id, input): ligand properties added after submission."""
        if not inputs:
            return
        with self._write() as conn:
            conn.execute(
                sa.update(jobs).where(jobs.c.job_id == sa.bindparam("jid")).values(input=sa.bindparam("new_input")),
                [{"jid": job_id, "new_input": value} for job_id, value in inputs],
            )

    def children_by_index(self, batch_id: str, indices: Sequence[int]) -> list[Record]:
        """Children of a batch at the given positions (any order; missing ones are left out)."""
        with self.read() as conn:
            rows = conn.execute(
                sa.select(jobs).where(jobs.c.batch_parent_id == batch_id, jobs.c.batch_index.in_(list(indices)))
            )
            return [dict(r._mapping) for r in rows]

    def batch_costs(self, batch_id: str) -> dict[str, Any]:
        """Sums of the children's measured seconds (completed and failed attempts that reported them)."""
        with self.read() as conn:
            row = conn.execute(
                sa.select(sa.func.count(jobs.c.accelerator_seconds), sa.func.sum(jobs.c.wall_seconds),
                          sa.func.sum(jobs.c.accelerator_seconds))
                .where(jobs.c.batch_parent_id == batch_id)
            ).one()  # fmt: skip
        return {"jobs_measured": int(row[0] or 0), "wall_seconds": float(row[1] or 0.0),
                "accelerator_seconds": float(row[2] or 0.0)}  # fmt: skip

    def observed_seconds_per_job(self, predictor: str, target_key: str, limit: int = 200) -> tuple[float, int] | None:
        """Median accelerator seconds of the latest completed jobs of this predictor and target."""
        with self.read() as conn:
            values = list(
                conn.execute(
                    sa.select(jobs.c.accelerator_seconds)
                    .where(jobs.c.predictor == predictor, jobs.c.target_key == target_key,
                           jobs.c.status == COMPLETED, jobs.c.accelerator_seconds.is_not(None))
                    .order_by(jobs.c.id.desc())
                    .limit(limit)
                ).scalars()
            )  # fmt: skip
        if not values:
            return None
        values.sort()
        return float(values[len(values) // 2]), len(values)

    # ------------------------------------------------------------------ reads

    def get(self, job_id: str, owner: str | None = None) -> Record:
        record = self._get(job_id)
        if record is None or (owner is not None and record["owner"] != owner):
            raise NotFound(f"no job or batch with id {job_id!r}", code="job_not_found")
        return record

    def _get(self, job_id: str) -> Record | None:
        with self.read() as conn:
            row = conn.execute(sa.select(jobs).where(jobs.c.job_id == job_id)).first()
        return dict(row._mapping) if row else None

    def unfinished_count(self, owner: str) -> int:
        """Pending and running jobs of one owner (a batch's from its counters: no scan of children)."""
        active = [PENDING, RUNNING]
        with self.read() as conn:
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
        self,
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
        with self.read() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def list_children(
        self, batch_id: str, *, status: str | None = None, limit: int = 100, after_index: int = -1,
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
        with self.read() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def iter_children(self, batch_id: str, page: int = 2000, columns: Sequence[str] | None = None) -> Iterator[Record]:
        after = -1
        if columns and "batch_index" not in columns:
            columns = [*columns, "batch_index"]  # the cursor
        while True:
            rows = self.list_children(batch_id, limit=page, after_index=after, columns=columns)
            yield from rows
            if len(rows) < page:
                return
            after = rows[-1]["batch_index"]

    def events(self, job_id: str) -> list[Record]:
        with self.read() as conn:
            rows = conn.execute(
                sa.select(job_events).where(job_events.c.job_id == job_id).order_by(job_events.c.id)
            )
            return [dict(r._mapping) for r in rows]

    def live_workers(self, within_seconds: float) -> list[Record]:
        since = self.clock() - within_seconds
        with self.read() as conn:
            rows = conn.execute(
                sa.select(workers).where(workers.c.last_seen_at >= since, workers.c.stopped_at.is_(None))
            )
            return [dict(r._mapping) for r in rows]

    def status_counts(self) -> dict[tuple[str, str, str], int]:
        """Job counts by (job_type, status, predictor).

        A batch's children are counted from its parent's counters, which change in the same
        transaction as the children, so the cost grows with batches and individual jobs, not with
        children: it is the queue-depth gauge an autoscaler reads on every scrape."""
        statuses = list(_COUNTER)
        query = (
            sa.select(jobs.c.job_type, jobs.c.status, jobs.c.predictor, sa.func.count(),
                      *(sa.func.sum(jobs.c[_COUNTER[s]]) for s in statuses))  # fmt: skip
            .where(jobs.c.job_type.in_([JobType.INDIVIDUAL.value, JobType.BATCH_PARENT.value]))
            .group_by(jobs.c.job_type, jobs.c.status, jobs.c.predictor)
        )
        counts: dict[tuple[str, str, str], int] = {}
        with self.read() as conn:
            for row in conn.execute(query):
                job_type, status, predictor, n = row[0], row[1], row[2], row[3]
                counts[(job_type, status, predictor)] = n
                if job_type == JobType.BATCH_PARENT.value:
                    for child_status, children in zip(statuses, row[4:], strict=True):
                        if children:
                            key = (JobType.BATCH_CHILD.value, child_status, predictor)
                            counts[key] = counts.get(key, 0) + int(children)
        return counts

    def accelerator_seconds(self) -> dict[str, float]:
        """Accelerator (GPU or CPU) seconds of the predict step, summed per predictor over finished jobs."""
        with self.read() as conn:
            rows = conn.execute(
                sa.select(jobs.c.predictor, sa.func.coalesce(sa.func.sum(jobs.c.accelerator_seconds), 0.0))
                .where(jobs.c.job_type != JobType.BATCH_PARENT.value)
                .group_by(jobs.c.predictor)
            )
            return {r[0]: float(r[1]) for r in rows}

    def prune(self, older_than: float, *, dry_run: bool = False) -> list[tuple[str, str | None]]:
        """Delete finished individual jobs and finished batches (with their children and events)
        that completed before ``older_than`` (UNIX time). Returns (job_id, batch_id) of what went,
        children excluded, so the caller can delete their folders."""
        finished = sa.and_(jobs.c.status.in_(TERMINAL), jobs.c.completed_at < older_than)
        with self._write() as conn:
            rows = conn.execute(
                sa.select(jobs.c.job_id, jobs.c.job_type)
                .where(finished, jobs.c.job_type.in_([JobType.INDIVIDUAL.value, JobType.BATCH_PARENT.value]))
                .order_by(jobs.c.id)
            ).all()
            if dry_run or not rows:
                return [(r.job_id, None) for r in rows]
            batches = [r.job_id for r in rows if r.job_type == JobType.BATCH_PARENT.value]
            singles = [r.job_id for r in rows if r.job_type == JobType.INDIVIDUAL.value]
            for start in range(0, len(batches), 500):
                chunk = batches[start : start + 500]
                children = sa.select(jobs.c.job_id).where(jobs.c.batch_parent_id.in_(chunk))
                conn.execute(sa.delete(job_events).where(job_events.c.job_id.in_(children)))
                conn.execute(sa.delete(jobs).where(jobs.c.batch_parent_id.in_(chunk)))
            for ids in (batches, singles):
                for start in range(0, len(ids), 500):
                    chunk = ids[start : start + 500]
                    conn.execute(sa.delete(job_events).where(job_events.c.job_id.in_(chunk)))
                    conn.execute(sa.delete(jobs).where(jobs.c.job_id.in_(chunk)))
        return [(r.job_id, r.job_id if r.job_type == JobType.BATCH_PARENT.value else None) for r in rows]

    def duration_histogram(self, bounds: Sequence[float]) -> tuple[list[int], float, int]:
        """Cumulative counts of completed jobs' run time (started → completed) per upper bound."""
        duration = jobs.c.completed_at - jobs.c.started_at
        done = sa.and_(jobs.c.status == COMPLETED, jobs.c.job_type != JobType.BATCH_PARENT.value)
        columns = [sa.func.sum(sa.case((duration <= b, 1), else_=0)) for b in bounds]
        columns += [sa.func.coalesce(sa.func.sum(duration), 0.0), sa.func.count()]
        with self.read() as conn:
            row = conn.execute(sa.select(*columns).where(done)).one()
        return [int(v or 0) for v in row[: len(bounds)]], float(row[-2]), int(row[-1])

    def ping(self) -> None:
        with self.read() as conn:
            conn.execute(sa.text("SELECT 1"))

    # ------------------------------------------------------------------ events

    def _event(
        self,
        conn: sa.Connection,
        job_id: str,
        src: str | None,
        dst: str,
        now: float,
        *,
        worker_id: str | None = None,
        attempt: int | None = None,
        reason: str | None = None,
    ) -> None:
        conn.execute(
            job_events.insert(),
            {"job_id": job_id, "from_status": src, "to_status": dst, "at": now, "worker_id": worker_id,
             "attempt": attempt, "reason": reason},
        )  # fmt: skip

    def _events(self, conn: sa.Connection, ids: Sequence[str], src: str, dst: str, now: float, reason: str) -> None:
        for start in range(0, len(ids), _INSERT_CHUNK):
            conn.execute(
                job_events.insert(),
                [{"job_id": i, "from_status": src, "to_status": dst, "at": now, "reason": reason}
                 for i in ids[start : start + _INSERT_CHUNK]],
            )  # fmt: skip


def _claim_columns() -> list[Any]:
    c = jobs.c
    return [c.id, c.job_id, c.attempts, c.max_attempts, c.predictor, c.params, c.target_key, c.input,
            c.batch_parent_id, c.batch_index, c.owner]  # fmt: skip


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
