"""Retry policy: a pure function from (attempt, kind of failure) to a decision."""

from __future__ import annotations

from dataclasses import dataclass

from omtx_hub.backoff import Backoff

__all__ = ["RetryDecision", "RetryPolicy"]


@dataclass(frozen=True)
class RetryDecision:
    retry: bool
    delay_seconds: float = 0.0


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff for transient failures; permanent failures never retry.

    ``attempt`` is the attempt that just failed, counting from 1. The delay before attempt n+1 is
    ``base * 2**(n-1)``, capped at ``max_delay``.
    """

    base_seconds: float = 5.0
    max_delay_seconds: float = 300.0

    def decide(self, *, attempt: int, max_attempts: int, transient: bool) -> RetryDecision:
        if not transient or attempt >= max_attempts:
            return RetryDecision(retry=False)
        delay = Backoff(self.base_seconds, self.max_delay_seconds).delay(attempt)
        return RetryDecision(retry=True, delay_seconds=delay)
