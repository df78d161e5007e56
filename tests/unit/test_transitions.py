"""The transition table, driven directly: every allowed and every refused move, the counter arithmetic."""

from __future__ import annotations

import itertools

import pytest

from omtx_hub.domain import JobStatus
from omtx_hub.errors import IllegalTransition
from omtx_hub.queue import transitions as t

STATES = [s.value for s in JobStatus]
EVERY_MOVE = [(src, dst) for src, dst in itertools.product([None, *STATES], STATES) if src != dst]

JOB_ALLOWED = {
    (None, "pending"),
    ("pending", "running"),
    ("pending", "cancelled"),
    ("running", "completed"),
    ("running", "failed"),
    ("running", "pending"),
    ("running", "cancelled"),
    ("failed", "pending"),
    ("cancelled", "pending"),
}
BATCH_ALLOWED = {
    (None, "pending"),
    ("pending", "running"),
    *itertools.product(["pending", "running"], ["completed", "failed", "cancelled"]),
    *itertools.product(["completed", "failed", "cancelled"], ["pending", "running"]),
}


def test_the_tables_hold_exactly_the_documented_moves() -> None:
    assert set(t.JOB_TRANSITIONS) == JOB_ALLOWED
    assert set(t.BATCH_TRANSITIONS) == BATCH_ALLOWED
    assert all(t.JOB_TRANSITIONS.values()) and all(t.BATCH_TRANSITIONS.values())  # each says when it happens


@pytest.mark.parametrize(("src", "dst"), EVERY_MOVE)
def test_every_move_is_allowed_or_refused_by_the_table(src: str | None, dst: str) -> None:
    for batch, allowed in ((False, JOB_ALLOWED), (True, BATCH_ALLOWED)):
        if (src, dst) in allowed:
            t.check(src, dst, batch=batch)
        else:
            with pytest.raises(IllegalTransition) as refused:
                t.check(src, dst, batch=batch)
            assert refused.value.code == "illegal_transition"
            assert refused.value.details == {"from": src, "to": dst}


def test_a_completed_job_never_moves_again() -> None:
    for dst in STATES:
        if dst != "completed":
            with pytest.raises(IllegalTransition):
                t.check("completed", dst)


def test_counter_deltas_move_children_between_the_parents_counters() -> None:
    assert t.counter_deltas({("pending", "running"): 5}) == {"n_pending": -5, "n_running": 5}
    assert t.counter_deltas({("running", "completed"): 3, ("running", "failed"): 1, ("pending", "running"): 4}) == {
        "n_pending": -4,  # n_running: +4 claimed, -3 completed, -1 failed = 0, so it is left out
        "n_completed": 3,
        "n_failed": 1,
    }
    # a retry after failures and a cancel before running
    assert t.counter_deltas({("failed", "pending"): 2, ("pending", "cancelled"): 2}) == {
        "n_failed": -2,
        "n_cancelled": 2,
    }
    assert t.counter_deltas({("pending", "cancelled"): 0}) == {}
    with pytest.raises(IllegalTransition):
        t.counter_deltas({("completed", "pending"): 1})


@pytest.mark.parametrize(
    ("status", "counts", "expected"),
    [
        ("pending", (3, 0, 0, 0), None),
        ("running", (2, 1, 4, 0), None),
        ("running", (0, 0, 4, 1), "completed"),  # any completed child completes the batch
        ("running", (0, 0, 0, 3), "failed"),
        ("pending", (0, 0, 0, 0), "cancelled"),  # every child cancelled before it ran
        ("completed", (0, 0, 5, 0), None),
        ("failed", (2, 0, 0, 0), "pending"),  # children retried: the batch reopens
        ("completed", (1, 1, 3, 0), "running"),
    ],
)
def test_settle_gives_the_batch_status_its_counters_imply(
    status: str, counts: tuple[int, int, int, int], expected: str | None
) -> None:
    pending, running, completed, failed = counts
    assert t.settle(status, pending=pending, running=running, completed=completed, failed=failed) == expected
    if expected is not None:
        t.check(status, expected, batch=True)  # whatever settle decides, the batch table allows
