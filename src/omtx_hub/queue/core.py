"""What every queue operation shares: the engine, the clock, the lease length, the retry policy and
which result of each predictor is its primary score (copied to the indexed ``score`` column) and
which are its other scores (copied to ``job_scores``).

Connections come from here only, so every driver error is translated into
:class:`~omtx_hub.errors.QueueUnavailable` in one place (:mod:`omtx_hub.db.engine`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import sqlalchemy as sa

from omtx_hub.db.engine import read_connection, transaction
from omtx_hub.predictors.catalog import SPECS
from omtx_hub.queue.retry import RetryPolicy

__all__ = ["QueueCore"]


@dataclass
class QueueCore:
    engine: sa.Engine
    lease_seconds: float = 60.0
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Callable[[], float] = time.time
    # predictor -> the result field ranked by default: the shipped predictors' declarations; a
    # worker adds its plugins' own (QueueManager.declare_score) before it completes their jobs
    score_fields: dict[str, str] = field(default_factory=lambda: {name: s.primary for name, s in SPECS.items()})
    # predictor -> its other scores, copied to ``job_scores`` by each completion of a batch child
    sortable_fields: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: {name: s.sortable for name, s in SPECS.items()}
    )
    # parent -> the result columns it is known (committed) to keep; None: it keeps none (before 0007).
    # They only ever grow, so a completion whose fields are all known here skips reading them.
    kept_columns: dict[str, frozenset[str] | None] = field(default_factory=dict)

    def remember_columns(self, learned: dict[str, frozenset[str] | None]) -> None:
        """Note what completions just committed (the most recent 4,096 parents are kept)."""
        for parent, columns in learned.items():
            self.kept_columns.pop(parent, None)
            self.kept_columns[parent] = columns
        while len(self.kept_columns) > 4096:
            del self.kept_columns[next(iter(self.kept_columns))]

    @property
    def postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def write(self) -> AbstractContextManager[sa.Connection]:
        """One write transaction (on SQLite it holds the write lock from its first statement)."""
        return transaction(self.engine)

    def read(self) -> AbstractContextManager[sa.Connection]:
        """A connection for reads (see :func:`omtx_hub.db.engine.read_connection`)."""
        return read_connection(self.engine)

    def snapshot(self) -> AbstractContextManager[sa.Connection]:
        """A connection for reads that must see one state of the database, every statement the same."""
        return read_connection(self.engine, snapshot=True)
