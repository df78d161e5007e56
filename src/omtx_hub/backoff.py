"""Exponential backoff, the one rule behind every wait-and-try-again in the hub: job retries (the
queue's :class:`~omtx_hub.queue.retry.RetryPolicy`), a worker waiting out the database or a full
result store, and webhook deliveries."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Backoff"]


@dataclass(frozen=True)
class Backoff:
    """``first`` seconds before the first retry, multiplied by ``factor`` each time, at most ``cap``."""

    first: float
    cap: float
    factor: float = 2.0

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first)."""
        return min(self.cap, self.first * self.factor ** max(0, retry - 1))
