"""The transition functions on a real SQLite file and the real PostgreSQL server: the guarded move of
a running job, the parent's counter arithmetic, and refused moves that leave nothing written."""

from __future__ import annotations

from collections import Counter

import pytest
import sqlalchemy as sa

from omtx_hub.db.schema import job_events, jobs
from omtx_hub.domain import Ligand
from omtx_hub.errors import IllegalTransition
from omtx_hub.hub import Hub
from omtx_hub.queue import BatchSubmission
from omtx_hub.queue import transitions as t


def _batch(hub: Hub, n: int) -> str:
    ligands = [Ligand(f"lig{i}", "C" * (1 + i)) for i in range(n)]
    sub = BatchSubmission(
        owner="me", predictor="test", protein_sequence="MKTAYIAKQR", batch_name="b", ligands=ligands, max_attempts=1
    )
    return str(hub.manager.submit_batch(sub).record["job_id"])


def _parent(hub: Hub, batch_id: str) -> tuple[str, int, int, int, int, int]:
    with hub.engine.connect() as conn:
        p = conn.execute(
            sa.select(
                jobs.c.status,
                jobs.c.n_pending,
                jobs.c.n_running,
                jobs.c.n_completed,
                jobs.c.n_failed,
                jobs.c.n_cancelled,
            ).where(jobs.c.job_id == batch_id)
        ).one()
    return tuple(p)  # type: ignore[return-value]


def test_move_running_is_guarded_and_shifts_the_parent(hub: Hub) -> None:
    batch_id = _batch(hub, 3)
    claimed = hub.manager.claim("w1", ["test"], limit=3)
    assert _parent(hub, batch_id) == ("running", 0, 3, 0, 0, 0)
    first, second, third = claimed
    with hub.engine.begin() as conn:
        done = t.move_running(conn, first.job_id, "w1", first.attempt, "completed", 1.0, reason="r", values={})
        stolen = t.move_running(conn, second.job_id, "w2", second.attempt, "failed", 1.0, reason="r", values={})
        stale = t.move_running(conn, second.job_id, "w1", second.attempt + 1, "failed", 1.0, reason="r", values={})
    assert done.applied and done.status == "completed" and done.parent_finished is None
    assert not stolen.applied and not stale.applied  # another worker, another attempt: refused
    assert _parent(hub, batch_id) == ("running", 0, 2, 1, 0, 0)
    with hub.engine.begin() as conn:
        t.move_running(conn, second.job_id, "w1", second.attempt, "failed", 2.0, reason="r", values={})
        last = t.move_running(conn, third.job_id, "w1", third.attempt, "cancelled", 2.0, reason="r", values={})
    assert last.parent_finished == "completed"
    assert _parent(hub, batch_id) == ("completed", 0, 0, 1, 1, 1)
    moves = [(e["from_status"], e["to_status"]) for e in hub.manager.events(batch_id)]
    assert moves == [(None, "pending"), ("pending", "running"), ("running", "completed")]


def test_shift_parent_counts_and_reopens(hub: Hub) -> None:
    batch_id = _batch(hub, 4)
    with hub.engine.begin() as conn:
        assert t.shift_parent(conn, batch_id, Counter({("pending", "cancelled"): 4}), 1.0) == "cancelled"
    assert _parent(hub, batch_id) == ("cancelled", 0, 0, 0, 0, 4)
    with hub.engine.begin() as conn:
        assert t.shift_parent(conn, batch_id, Counter({("cancelled", "pending"): 2}), 2.0) is None
    assert _parent(hub, batch_id) == ("pending", 2, 0, 0, 0, 2)
    assert [e["reason"] for e in hub.manager.events(batch_id)][-2:] == ["no child left to run", "children retried"]


@pytest.mark.parametrize("to", ["running", "completed"])
def test_a_refused_move_writes_nothing(hub: Hub, to: str) -> None:
    batch_id = _batch(hub, 2)
    (child,) = hub.manager.list_children(batch_id, limit=1)
    with hub.engine.connect() as conn:
        before = conn.execute(sa.select(sa.func.count()).select_from(job_events)).scalar_one()
    with pytest.raises(IllegalTransition), hub.engine.begin() as conn:
        if to == "running":  # a running → running "move" is not a transition
            t.move_running(conn, child["job_id"], "w1", 1, "running", 1.0, reason="r", values={})
        else:  # pending → completed skips running: refused before its parent's counters move
            t.shift_parent(conn, batch_id, Counter({("pending", "completed"): 1}), 1.0)
    with hub.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(job_events)).scalar_one() == before
    assert _parent(hub, batch_id) == ("pending", 2, 0, 0, 0, 0)
