"""What every queue operation shares: the engine, the clock, the lease length and the retry policy.

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
from omtx_hub.queue.retry import RetryPolicy

__all__ = ["QueueCore"]


@dataclass
class QueueCore:
    engine: sa.Engine
    lease_seconds: float = 60.0
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Callable[[], float] = time.time

    @property
    def postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def write(self) -> AbstractContextManager[sa.Connection]:
        """One write transaction (on SQLite it holds the write lock from its first statement)."""
        return transaction(self.engine)

    def read(self) -> AbstractContextManager[sa.Connection]:
        """A connection for reads (see :func:`omtx_hub.db.engine.read_connection`)."""
        return read_connection(self.engine)
