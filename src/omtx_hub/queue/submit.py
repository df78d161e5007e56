"""Submission: a job, or a batch parent with its children, in one transaction; idempotency keys.

An idempotency key is per owner and per request: the first submission with a key stores its
endpoint and a digest of each field (``jobs.idempotency_request``); the same key with the same
request answers the original, with another request :class:`~omtx_hub.errors.Conflict`
(``idempotency_key_reused``) naming the fields that differ.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from omtx_hub.db.engine import dump_json
from omtx_hub.db.schema import jobs
from omtx_hub.domain import JobType, Ligand, target_key_for
from omtx_hub.errors import Conflict
from omtx_hub.queue import transitions, wakeup
from omtx_hub.queue.core import QueueCore
from omtx_hub.queue.reads import get_record
from omtx_hub.queue.types import BatchSubmission, JobSubmission, Record, Submitted, new_id, new_ids

__all__ = ["submit_batch", "submit_job"]

PENDING = transitions.PENDING
_INSERT_CHUNK = 5000


def submit_job(q: QueueCore, sub: JobSubmission) -> Submitted:
    request = (
        None
        if sub.idempotency_key is None
        else _request_of(
            sub.endpoint,
            predictor=sub.predictor,
            protein_sequence=sub.protein_sequence,
            target=sub.target,
            ligand_name=sub.ligand.name,
            ligand_smiles=sub.ligand.smiles,
            params=sub.params,
            priority=sub.priority,
        )
    )
    now = q.clock()
    row: dict[str, Any] = {
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

    def insert(conn: sa.Connection) -> None:
        conn.execute(jobs.insert(), row)
        transitions.record(conn, row["job_id"], None, PENDING, now, reason="submitted")

    return _submit_once(q, sub.owner, sub.idempotency_key, request, row["job_id"], insert)


def submit_batch(q: QueueCore, sub: BatchSubmission) -> Submitted:
    request = (
        None
        if sub.idempotency_key is None
        else _request_of(
            sub.endpoint,
            predictor=sub.predictor,
            protein_sequence=sub.protein_sequence,
            target=sub.target,
            batch_name=sub.batch_name,
            ligands=[[lig.name, lig.smiles] for lig in sub.ligands],
            skipped=sub.skipped,
            filtered=sub.filtered,
            filters=sub.filters,
            params=sub.params,
            max_concurrent=sub.max_concurrent,
            priority=sub.priority,
            source=sub.source,
            ranking=sub.ranking,
        )
    )
    now = q.clock()
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
        "input": {
            "protein_sequence": sub.protein_sequence,
            "target": sub.target,
            "skipped": sub.skipped,
            **({"filters": sub.filters, "filtered": sub.filtered} if sub.filters is not None else {}),
            **({"source": sub.source} if sub.source is not None else {}),
            **({"ranking": sub.ranking} if sub.ranking is not None else {}),
        },
        "n_total": total,
        "n_pending": total,
        "result_columns": [],
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

    # each child as a tuple in the order of ``names``, its JSON already text: the same values the
    # table's types would bind, without SQLAlchemy's per-row parameter processing (half the time of
    # a million-row insert) and with the shared columns (``params``) serialised once
    keyed = sub.properties is not None
    names = [*child_common, "job_id", "name", "batch_index", *(["inchikey"] if keyed else []), "input"]
    shared = tuple(_bound(name, value) for name, value in child_common.items())

    def child(job_id: str, index: int, lig: Ligand) -> tuple[Any, ...]:
        properties = sub.properties[index] if sub.properties is not None else None
        return (
            *shared,
            job_id,
            lig.name,
            index,
            *([properties.get("inchikey") or None] if properties is not None else []),
            dump_json(
                {
                    "ligand_name": lig.name,
                    "ligand_smiles": lig.smiles,
                    **({"properties": properties} if properties is not None else {}),
                }
            ),
        )

    def insert(conn: sa.Connection) -> None:
        conn.execute(jobs.insert(), parent)
        try:
            with _large_cache(q, conn, total):
                for start in range(0, total, _INSERT_CHUNK):
                    chunk = sub.ligands[start : start + _INSERT_CHUNK]
                    ids = new_ids("job", len(chunk))
                    _insert_rows(q, conn, names, [child(ids[i], start + i, lig) for i, lig in enumerate(chunk)])
        except Exception:
            if sub.check is not None:
                sub.check.wait()  # a ligand the checks refuse (a NUL in its name) explains the failure
            raise
        # one event for the batch: a million children get theirs when they are claimed
        transitions.record(conn, batch_id, None, PENDING, now, batch=True, reason=f"submitted with {total} ligands")
        if sub.check is not None and q.postgres:
            sub.check.wait()  # the rows are in; commit only if the checks pass

    try:
        if sub.check is not None and not q.postgres:
            sub.check.wait()  # before the write lock, which would hold every other writer meanwhile
        return _submit_once(q, sub.owner, sub.idempotency_key, request, batch_id, insert)
    finally:
        if sub.check is not None:
            sub.check.cancel()  # an idempotent replay, or an error: the checks are not needed any more


def _submit_once(
    q: QueueCore,
    owner: str,
    key: str | None,
    request: Record | None,
    job_id: str,
    insert: Callable[[sa.Connection], None],
) -> Submitted:
    """Run ``insert`` in one transaction unless this owner's idempotency key already names a
    submission of the same request (answered instead; another request is a Conflict). Two
    submissions racing with one key: the unique index lets one insert, the other answers with it."""
    existing = _by_idempotency_key(q, owner, key, request)
    if existing is not None:
        return Submitted(existing, created=False)
    try:
        with q.write() as conn:
            insert(conn)
            wakeup.announce(conn)
    except sa.exc.IntegrityError:
        existing = _by_idempotency_key(q, owner, key, request)
        if existing is None:
            raise
        return Submitted(existing, created=False)
    record = get_record(q, job_id)
    assert record is not None, job_id  # committed just now by this process
    return Submitted(record, created=True)


def _request_of(endpoint: str, **fields: Any) -> Record:
    """What an idempotent submission asked for: its endpoint and a digest of each field (compact, and
    enough to name the fields in which a later request with the same key differs)."""

    def digest(value: Any) -> str:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    return {"endpoint": endpoint, "fields": {name: digest(value) for name, value in fields.items()}}


def _by_idempotency_key(q: QueueCore, owner: str, key: str | None, request: Record | None) -> Record | None:
    """The submission this owner made with ``key``, if it asked for the same as ``request``;
    Conflict (``idempotency_key_reused``) naming what differs if it asked for something else."""
    if key is None or request is None:
        return None
    with q.read() as conn:
        row = conn.execute(sa.select(jobs).where(jobs.c.owner == owner, jobs.c.idempotency_key == key)).first()
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
            details={
                "idempotency_key": key,
                "job_id": existing["job_id"],
                "endpoint": before["endpoint"],
                "differs": differs,
            },
        )
    return existing


@contextmanager
def _large_cache(q: QueueCore, conn: sa.Connection, rows: int) -> Iterator[None]:
    """On SQLite, a page cache of up to 64 MiB (default 2 MiB) while a large batch is inserted: its
    random job ids touch index pages all over the file (1,000,000 children: 15.6 / 16.0 → 12.2 /
    12.4 s). Only then: a connection with a large cache pays to drop it whenever another connection
    has written since its last read (each read of the API's pool, beside busy workers)."""
    if q.postgres or rows <= _INSERT_CHUNK:
        yield
        return
    before = conn.exec_driver_sql("PRAGMA cache_size").scalar_one()
    conn.exec_driver_sql("PRAGMA cache_size=-65536")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size={int(before)}")


def _bound(name: str, value: Any) -> Any:
    """A value as the column ``name`` stores it: JSON as text."""
    return dump_json(value) if isinstance(jobs.c[name].type, sa.JSON) else value


def _insert_rows(q: QueueCore, conn: sa.Connection, names: list[str], rows: list[tuple[Any, ...]]) -> None:
    """Insert job rows (tuples of the ``names`` columns, JSON as text) inside the transaction: COPY
    on PostgreSQL (2.3× faster than the multi-row INSERTs SQLAlchemy sends: 1.7 s vs 3.8 s for
    100,000 children), the driver's executemany on SQLite (through SQLAlchemy, whose errors
    :func:`~omtx_hub.db.engine.driver_errors_translated` knows)."""
    if q.postgres:
        raw: Any = conn.connection.dbapi_connection
        with raw.cursor() as cursor, cursor.copy(f"COPY jobs ({', '.join(names)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    conn.exec_driver_sql(f"INSERT INTO jobs ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})", rows)
