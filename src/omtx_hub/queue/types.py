"""The queue's value objects: what a submission asks for and what a state change did."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from omtx_hub.domain import Ligand

__all__ = ["BatchSubmission", "DeferredCheck", "Finished", "JobSubmission", "Record", "Submitted", "new_id", "new_ids"]

Record = dict[str, Any]  # a row of ``jobs`` (or ``job_events``, ``workers``) as a dict


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(15)}"


def new_ids(prefix: str, n: int) -> list[str]:
    """``n`` ids as :func:`new_id` makes them (15 random bytes: 20 URL-safe characters, no padding),
    from one read of the system's randomness (a million-child batch spent 3 s making them one by one)."""
    text = base64.urlsafe_b64encode(secrets.token_bytes(15 * n)).decode()
    return [f"{prefix}_{text[i : i + 20]}" for i in range(0, 20 * n, 20)]


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


class DeferredCheck(Protocol):
    """Checks of a batch's ligands that are still running while it is submitted. The queue waits for
    them before the batch is committed: on PostgreSQL after its rows are written in the open
    transaction (the insert and the checks overlap), on SQLite before its write transaction begins
    (that holds the only write lock). ``wait`` raises to refuse the batch (nothing is committed);
    ``cancel`` stops them when the submission ends otherwise."""

    def wait(self) -> None: ...

    def cancel(self) -> None: ...


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
    ranking: dict[str, Any] | None = None  # what a pose must show to be ranked (analytics.RankingRules)
    endpoint: str = "POST /api/v1/jobs/predict/batch"
    check: DeferredCheck | None = None  # the ligands' checks, still running: see DeferredCheck


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
