"""Read models: a job, lists of jobs and children, events, live workers. No write lock is taken."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from omtx_hub.db.schema import job_events, job_scores, jobs, workers
from omtx_hub.domain import JobType
from omtx_hub.errors import NotFound
from omtx_hub.queue import transitions
from omtx_hub.queue.core import QueueCore
from omtx_hub.queue.types import Record

__all__ = [
    "best_by_field",
    "best_by_score",
    "events",
    "first_by_inchikey",
    "get",
    "get_record",
    "iter_children",
    "list_children",
    "list_jobs",
    "live_workers",
    "ping",
    "ranked_children",
    "unfinished_count",
    "unranked_by_field",
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
        return _records(conn.execute(query))


def list_children(
    q: QueueCore,
    batch_id: str,
    *,
    status: str | None = None,
    limit: int = 100,
    after_index: int = -1,
    columns: Sequence[str] | None = None,
    unscored: bool = False,
) -> list[Record]:
    """A page of a batch's children in index order; ``columns``: only these (fewer to decode);
    ``unscored``: only those without a score (unfinished, failed, or completed without one: what a
    ranked listing shows after the ranked ones)."""
    query = (
        _columns(columns)
        .where(jobs.c.batch_parent_id == batch_id, jobs.c.batch_index > after_index)
        .order_by(jobs.c.batch_index)
        .limit(limit)
    )
    if status is not None:
        query = query.where(jobs.c.status == status)
    if unscored:
        query = query.where(jobs.c.score.is_(None))
    with q.read() as conn:
        return _records(conn.execute(query))


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


def _records(result: sa.CursorResult[Any]) -> list[Record]:
    """The rows as dicts (zip with the keys once fetched: ``row._mapping`` per row costs as much as
    decoding its JSON, which tells on a million-row export)."""
    keys = list(result.keys())
    return [dict(zip(keys, row, strict=True)) for row in result.all()]


def _columns(columns: Sequence[str] | None) -> sa.Select[Any]:
    return sa.select(*(jobs.c[name] for name in columns)) if columns else sa.select(jobs)


def ranked_children(
    q: QueueCore,
    batch_id: str,
    *,
    direction: str,
    limit: int,
    after: tuple[float, int] | None = None,
    columns: Sequence[str] | None = None,
) -> list[Record]:
    """A page of a batch's scored children (``score`` set: completed with a primary score), best
    first: lowest score first for ``asc``, highest for ``desc``, ties in submission order. ``after``
    is the (score, batch_index) of the previous page's last row: a keyset scan of
    ``ix_jobs_parent_score``, as fast on the ten-thousandth page as on the first."""
    score, index = jobs.c.score, jobs.c.batch_index
    better = score.desc() if direction == "desc" else score.asc()
    scored = sa.and_(jobs.c.batch_parent_id == batch_id, score.is_not(None))
    with q.read() as conn:
        if after is None:
            query = _columns(columns).where(scored).order_by(better, index).limit(limit)
            return _records(conn.execute(query))
        # Two index ranges rather than one OR (which SQLite cannot scan as a range: every page would
        # start again from the best row): the rest of the last score's ties, then the scores beyond.
        value, last = after
        ties = _columns(columns).where(scored, score == value, index > last).order_by(index).limit(limit)
        rows = _records(conn.execute(ties))
        if len(rows) < limit:
            beyond = score < value if direction == "desc" else score > value
            rest = _columns(columns).where(scored, beyond).order_by(better, index).limit(limit - len(rows))
            rows += _records(conn.execute(rest))
        return rows


def _json_number(q: QueueCore, column: sa.Column[Any], *path: str) -> sa.ColumnElement[Any]:
    """The number at ``path`` in a JSON column, NULL where there is none (text, a boolean, null,
    missing): computed by the database, which reads the JSON in C. ``path`` is plain names (the caller
    checks), bound as parameters."""
    if q.postgres:
        # ``#>`` / ``#>>`` with the whole path: each parses the (json, not jsonb) document once, where
        # ``->`` per level parsed it again for every level (a property's best 100: 1.4 → 0.95 s at 200,000)
        keys = sa.bindparam(None, list(path), type_=postgresql.ARRAY(sa.Text))
        is_number = sa.func.json_typeof(column.op("#>")(keys)) == "number"
        return sa.case((is_number, sa.cast(column.op("#>>")(keys), sa.Float)), else_=None)
    where = "$" + "".join(f'."{name}"' for name in path)
    is_number = sa.func.json_type(column, where).in_(["integer", "real"])
    return sa.case((is_number, sa.func.json_extract(column, where)), else_=None)


def field_value(q: QueueCore, field: str, with_property: bool) -> sa.ColumnElement[Any]:
    """A child's number for ``field``: its result of that name, or (``with_property``, where the
    results hold no number) its ligand property of that name; NULL where neither is a number."""
    value = _json_number(q, jobs.c.results, field)
    if with_property:
        value = sa.func.coalesce(value, _json_number(q, jobs.c.input, "properties", field))
    return value


def best_by_field(
    q: QueueCore,
    batch_id: str,
    *,
    field: str,
    with_property: bool,
    direction: str,
    limit: int,
    columns: Sequence[str] | None = None,
) -> list[Record]:
    """The best ``limit`` completed children of a batch by a numeric result ``field`` (``with_property``:
    or, where the results hold no number, the ligand property of that name), ties in submission order.
    One pass over the batch in the database, which reads each child's JSON in C and keeps the best
    ``limit`` (no index: any field). The value is computed once per child, for the order (children
    without one sort last, and are dropped here): a filter on it too computed it twice."""
    value = field_value(q, field, with_property).label("field_value")
    better = value.desc() if direction == "desc" else value.asc()
    query = (
        _columns(columns)
        .add_columns(value)
        .where(jobs.c.batch_parent_id == batch_id, jobs.c.status == "completed")
        .order_by(better.nulls_last(), jobs.c.batch_index)
        .limit(limit)
    )
    with q.read() as conn:
        rows = _records(conn.execute(query))
    return [{k: v for k, v in row.items() if k != "field_value"} for row in rows if row["field_value"] is not None]


def best_by_score(
    q: QueueCore,
    batch_id: str,
    *,
    field: str,
    direction: str,
    limit: int,
    columns: Sequence[str] | None = None,
) -> list[Record]:
    """What :func:`best_by_field` answers (without properties) for one of the other scores the
    batch's predictor keeps in ``job_scores``: the best ``limit`` are one range of its key, then one
    lookup of each child."""
    s = job_scores.c

    def best(value: sa.ColumnElement[Any]) -> sa.UnaryExpression[Any]:
        return value.desc() if direction == "desc" else value.asc()

    picked = (
        sa.select(s.batch_index, s.value)
        .where(s.batch_parent_id == batch_id, s.field == field)
        .order_by(best(s.value), s.batch_index)
        .limit(limit)
        .subquery()
    )
    query = (
        _columns(columns)
        .join_from(
            picked, jobs, sa.and_(jobs.c.batch_parent_id == batch_id, jobs.c.batch_index == picked.c.batch_index)
        )
        .order_by(best(picked.c.value), picked.c.batch_index)
    )
    with q.read() as conn:
        return _records(conn.execute(query))


def unranked_by_field(
    q: QueueCore,
    batch_id: str,
    *,
    field: str,
    with_property: bool,
    status: str | None,
    limit: int,
    columns: Sequence[str] | None = None,
) -> list[Record]:
    """The first ``limit`` children (of ``status``) in submission order that :func:`best_by_field`
    does not rank: unfinished, failed, or completed without a number for ``field``."""
    ranked = sa.and_(jobs.c.status == "completed", field_value(q, field, with_property).is_not(None))
    query = (
        _columns(columns)
        .where(jobs.c.batch_parent_id == batch_id, sa.not_(ranked))
        .order_by(jobs.c.batch_index)
        .limit(limit)
    )
    if status is not None:
        query = query.where(jobs.c.status == status)
    with q.read() as conn:
        return _records(conn.execute(query))


def first_by_inchikey(q: QueueCore, batch_id: str, keys: Sequence[str] | None) -> dict[str, tuple[int, str]]:
    """For each InChIKey, the first child of the batch that has it: (batch_index, ligand name).
    ``keys`` None: every InChIKey that more than one child of the batch has (one scan of
    ``ix_jobs_parent_inchikey``, about 0.3 s at a million children)."""
    if keys is not None and not keys:
        return {}
    first = sa.select(jobs.c.inchikey, sa.func.min(jobs.c.batch_index).label("first")).group_by(jobs.c.inchikey)
    if keys is None:
        first = first.where(jobs.c.batch_parent_id == batch_id, jobs.c.inchikey.is_not(None))
        first = first.having(sa.func.count() > 1)
    else:
        first = first.where(jobs.c.batch_parent_id == batch_id, jobs.c.inchikey.in_(sorted(set(keys))))
    firsts = first.subquery()
    query = sa.select(firsts.c.inchikey, firsts.c.first, jobs.c.name).join(
        jobs, sa.and_(jobs.c.batch_parent_id == batch_id, jobs.c.batch_index == firsts.c.first)
    )
    with q.read() as conn:
        return {r.inchikey: (r.first, r.name) for r in conn.execute(query)}


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
