"""The state machine of jobs and batches: one table of allowed moves, and the code every move goes
through.

A job (an individual job or a batch child)::

    (submitted) ──► pending ──► running ──► completed
                     │  ▲          │ │
                     │  └──────────┘ ├──► failed ──┐   retried by the user
                     │  retry, lease │             ├──► pending
                     ▼  lost, release└──► cancelled┘
                 cancelled

A batch parent has no life of its own: it follows its children's counters (``n_pending``,
``n_running``, ``n_completed``, ``n_failed``, ``n_cancelled``), which move in the same transaction
as the children (:func:`shift_parent`). It is running from its first claimed child, finished when no
child is pending or running (completed if any child completed, else failed if any failed, else
cancelled), and reopens when the user retries children.

Every state change writes a ``job_events`` row through :func:`record` or :func:`record_many`, and
both refuse a move the table does not hold, so no code path can invent a transition.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Final

import sqlalchemy as sa

from omtx_hub.db.schema import job_events, jobs
from omtx_hub.domain import ACTIVE, TERMINAL, JobStatus
from omtx_hub.errors import IllegalTransition
from omtx_hub.queue import wakeup
from omtx_hub.queue.types import Finished

__all__ = [
    "BATCH_TRANSITIONS",
    "COUNTER",
    "JOB_TRANSITIONS",
    "check",
    "counter_deltas",
    "move_running",
    "record",
    "record_many",
    "settle",
    "shift_parent",
]

PENDING, RUNNING = JobStatus.PENDING.value, JobStatus.RUNNING.value
COMPLETED, FAILED, CANCELLED = JobStatus.COMPLETED.value, JobStatus.FAILED.value, JobStatus.CANCELLED.value
_CHUNK = 5000

#: (from, to) → when it happens. ``None`` is "not yet in the table".
JOB_TRANSITIONS: Final[Mapping[tuple[str | None, str], str]] = {
    (None, PENDING): "submitted",
    (PENDING, RUNNING): "claimed by a worker (one attempt spent)",
    (PENDING, CANCELLED): "cancelled by the user before it ran",
    (RUNNING, COMPLETED): "the lease holder stored its results",
    (RUNNING, FAILED): "a permanent failure, or a transient one with no attempt left",
    (RUNNING, PENDING): "a transient failure with attempts left, a lost lease, or released by its worker",
    (RUNNING, CANCELLED): "stopped by its worker on a cancel request",
    (FAILED, PENDING): "retried by the user",
    (CANCELLED, PENDING): "retried by the user",
}

#: The same for a batch parent, whose status follows its children (see :func:`settle`).
BATCH_TRANSITIONS: Final[Mapping[tuple[str | None, str], str]] = {
    (None, PENDING): "submitted",
    (PENDING, RUNNING): "its first child was claimed",
    **{(src, dst): "no child left to run" for src in (PENDING, RUNNING) for dst in (COMPLETED, FAILED, CANCELLED)},
    **{(src, dst): "children retried" for src in (COMPLETED, FAILED, CANCELLED) for dst in (PENDING, RUNNING)},
}

#: The parent's counter column for each child status.
COUNTER: Final[Mapping[str, str]] = {
    PENDING: "n_pending",
    RUNNING: "n_running",
    COMPLETED: "n_completed",
    FAILED: "n_failed",
    CANCELLED: "n_cancelled",
}


def check(src: str | None, dst: str, *, batch: bool = False) -> None:
    """Refuse (:class:`IllegalTransition`) a move that the table does not hold."""
    table = BATCH_TRANSITIONS if batch else JOB_TRANSITIONS
    if (src, dst) not in table:
        kind = "batch" if batch else "job"
        raise IllegalTransition(f"a {kind} cannot go from {src or '(new)'} to {dst}", details={"from": src, "to": dst})


def record(
    conn: sa.Connection,
    job_id: str,
    src: str | None,
    dst: str,
    now: float,
    *,
    batch: bool = False,
    worker_id: str | None = None,
    attempt: int | None = None,
    reason: str | None = None,
) -> None:
    """Write the event of one move, after checking it against the table."""
    check(src, dst, batch=batch)
    conn.execute(
        _EVENT,
        {
            "job_id": job_id,
            "from_status": src,
            "to_status": dst,
            "at": now,
            "worker_id": worker_id,
            "attempt": attempt,
            "reason": reason,
        },
    )


def record_many(conn: sa.Connection, events: Sequence[dict[str, Any]]) -> None:
    """Write the events of several job moves (dicts of ``job_events`` columns), each checked."""
    for event in events:
        check(event["from_status"], event["to_status"])
    for start in range(0, len(events), _CHUNK):
        conn.execute(_EVENT, list(events[start : start + _CHUNK]))


def move_running(
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
    """Move a running job out of ``running``, guarded: only the holder of that attempt can. The
    update, its event and the parent's counters are one step of the caller's transaction."""
    check(RUNNING, to)
    row = conn.execute(
        sa.update(jobs)
        .where(
            jobs.c.job_id == job_id, jobs.c.status == RUNNING, jobs.c.worker_id == worker_id, jobs.c.attempts == attempt
        )
        .values(status=to, **values)
        .returning(jobs.c.batch_parent_id)
    ).first()
    if row is None:
        return Finished(applied=False)
    record(conn, job_id, RUNNING, to, now, worker_id=worker_id, attempt=attempt, reason=reason)
    if to == PENDING:  # a retry or a release: claimable again
        wakeup.announce(conn)
    finished = None
    if row.batch_parent_id is not None:
        finished = shift_parent(conn, row.batch_parent_id, Counter({(RUNNING, to): 1}), now)
    return Finished(applied=True, status=to, parent_finished=finished)


def counter_deltas(moves: Mapping[tuple[str, str], int]) -> dict[str, int]:
    """How a parent's counters change when its children make ``moves`` ((from, to) → how many).
    Refuses a move the job table does not hold; leaves out counters that do not change."""
    deltas: Counter[str] = Counter()
    for (src, dst), n in moves.items():
        check(src, dst)
        deltas[COUNTER[src]] -= n
        deltas[COUNTER[dst]] += n
    return {column: d for column, d in deltas.items() if d}


def settle(status: str, *, pending: int, running: int, completed: int, failed: int) -> str | None:
    """The status a batch parent must take given its counters, or None when it keeps ``status``."""
    active = pending + running
    if active == 0 and status in ACTIVE:
        return COMPLETED if completed else FAILED if failed else CANCELLED
    if active and status in TERMINAL:
        return RUNNING if running else PENDING
    return None


def shift_parent(conn: sa.Connection, parent_id: str, moves: Mapping[tuple[str, str], int], now: float) -> str | None:
    """Apply child moves to the parent's counters, then settle its status. Returns the parent's final
    status when this made it finish, else None."""
    deltas = counter_deltas(moves)
    if deltas:  # the counters as moved, in the same statement (one round trip, not two)
        p = conn.execute(_shift(tuple(sorted(deltas))), {"parent_id": parent_id, **deltas}).one()
    else:
        p = conn.execute(sa.select(*_COUNTERS).where(jobs.c.job_id == parent_id)).one()
    new = settle(p.status, pending=p.n_pending, running=p.n_running, completed=p.n_completed, failed=p.n_failed)
    if new is None:
        return None
    if new in TERMINAL:
        conn.execute(sa.update(jobs).where(jobs.c.job_id == parent_id).values(status=new, completed_at=now))
        record(conn, parent_id, p.status, new, now, batch=True, reason="no child left to run")
        return new
    conn.execute(
        sa.update(jobs).where(jobs.c.job_id == parent_id).values(status=new, completed_at=None, aggregated_at=None)
    )
    record(conn, parent_id, p.status, new, now, batch=True, reason="children retried")
    return None


_EVENT = job_events.insert()  # built once, like _shift's statements
_COUNTERS = (jobs.c.status, jobs.c.n_pending, jobs.c.n_running, jobs.c.n_completed, jobs.c.n_failed)


@functools.cache
def _shift(columns: tuple[str, ...]) -> sa.Update:
    """The statement that moves these counters by the amounts bound under their names, and returns
    them all: built once per set of columns (a completion moves the same two every time)."""
    values = {column: jobs.c[column] + sa.bindparam(column, type_=sa.Integer) for column in columns}
    return sa.update(jobs).where(jobs.c.job_id == sa.bindparam("parent_id")).values(**values).returning(*_COUNTERS)
