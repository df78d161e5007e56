"""Helpers for the shutdown tests that spawned processes must import (spawn pickles functions by name)."""

from __future__ import annotations

import time


def slow_identity(items: list[int]) -> list[int]:
    """What ``parallel.map_chunks`` expects (one result per item), a quarter of a second per item."""
    time.sleep(0.25 * len(items))
    return items
