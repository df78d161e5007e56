"""Waking idle workers when work is queued: LISTEN/NOTIFY on PostgreSQL.

Every transaction that makes a job pending (a submission, a user's retry, a retry or release after
a failed attempt, the reaper's requeue) calls :func:`announce`; PostgreSQL delivers the notification
to every listening session when, and only if, that transaction commits. An idle worker waits on a
:class:`Listener` (one autocommit connection of its own, outside the pool) instead of probing: no
query at all while nothing happens, and a new job is claimed within milliseconds.

Notifications are a hint, never the truth: a worker still looks on its own every
``wake_poll_seconds`` (a delayed retry becomes due without any notification), and a listener whose
connection broke (PostgreSQL restarted) says so; the worker then probes as on SQLite and the
listener reconnects, with backoff, on a later wait. On SQLite there is nothing to listen to: no
listener is made and announcing does nothing.
"""

from __future__ import annotations

import logging
import select
import time
from collections.abc import Callable
from typing import Any

import psycopg
import sqlalchemy as sa

from omtx_hub.backoff import Backoff

__all__ = ["CHANNEL", "Listener", "announce"]

CHANNEL = "omtx_jobs"
_RECONNECT = Backoff(first=0.5, cap=15.0)

logger = logging.getLogger(__name__)


def announce(conn: sa.Connection) -> None:
    """Tell listening workers, when this transaction commits, that a job may be claimable."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})


class Listener:
    """One worker's LISTEN connection. ``wait`` returns True when a notification came, False when
    the time ran out or the connection is down (the caller then probes instead)."""

    def __init__(self, engine: sa.Engine, clock: Callable[[], float] = time.monotonic) -> None:
        self._engine = engine
        self._clock = clock
        self._conn: Any = None  # psycopg.Connection, autocommit, detached from the pool
        self._failures = 0
        self._retry_at = 0.0

    @property
    def connected(self) -> bool:
        return self._conn is not None

    def connect(self) -> bool:
        """(Re)open the connection and LISTEN; False (and a later retry, with backoff) when it cannot."""
        if self._conn is not None:
            return True
        if self._clock() < self._retry_at:
            return False
        try:
            pooled = self._engine.raw_connection()
            conn: Any = pooled.driver_connection  # psycopg.Connection
            pooled.detach()  # this session is the worker's own for as long as it lives
            conn.autocommit = True
            conn.execute(f"LISTEN {CHANNEL}")
        except (sa.exc.SQLAlchemyError, psycopg.Error, OSError) as exc:  # down or restarting: probe meanwhile
            self._failures += 1
            delay = _RECONNECT.delay(self._failures)
            self._retry_at = self._clock() + delay
            logger.warning(
                "cannot listen for new jobs; probing instead",
                extra={"action": "listen_failed", "retry_in": f"{delay:.1f}s", "error": str(exc)[:200]},
            )
            return False
        self._conn, self._failures = conn, 0
        return True

    def wait(self, seconds: float) -> bool:
        """Block up to ``seconds`` for announcements; True when any came (all of them are read, so
        none is left buffered). Waiting is a ``select`` on the socket: psycopg's own timed wait
        costs about a millisecond of CPU per call, ten times the budget of a worker that wakes
        twenty times a second to notice ``stop()``."""
        if self._conn is None:
            return False
        try:
            readable, _, _ = select.select([self._conn.fileno()], [], [], seconds)
            return bool(readable) and any(True for _ in self._conn.notifies(timeout=0))
        except (psycopg.Error, OSError, ValueError) as exc:  # ValueError: the socket is already closed
            logger.warning(
                "lost the connection that listens for new jobs; probing until it is back",
                extra={"action": "listen_lost", "error": str(exc)[:200]},
            )
            self.close()
            return False

    def drain(self) -> None:
        """Forget announcements already received (the claim that follows sees their jobs anyway)."""
        self.wait(0.0)

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except (psycopg.Error, OSError):  # already broken
                pass
