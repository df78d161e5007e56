"""A large batch's whole export made by pool processes (analytics.fanout) is the export one process
makes: the same CSV bytes and the same Parquet table, ranked and unranked rows, duplicates, either
status, on SQLite and PostgreSQL. Leaving the stream early stops the pool; a pool that breaks leaves
the rest to this process."""

from __future__ import annotations

import io
import logging
import multiprocessing
import os

import pyarrow.parquet as pq
import pytest

from hub_testing import dying_pool_process, scored_screen
from omtx_hub.analytics import export_stream, fanout, indexed_ranking
from omtx_hub.hub import Hub

pytestmark = pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="a pool of processes needs two cores")


def _export(hub: Hub, batch_id: str, fmt: str, status: str | None) -> bytes:
    parent = hub.manager.get(batch_id)
    ranking = indexed_ranking(hub.manager, parent, sort_key="test_score", direction="asc", top=None, status=status)
    assert ranking is not None and ranking.walk
    return b"".join(export_stream(fmt, hub.manager, hub.store, batch_id, ranking, hub.settings))


@pytest.mark.parametrize("status", [None, "completed"])
def test_a_fanned_out_export_is_the_export_of_one_process(
    hub: Hub, status: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch_id = scored_screen(hub)  # 40 scored, 4 completed unscored, 6 failed, 10 pending; duplicates
    in_one = {fmt: _export(hub, batch_id, fmt, status) for fmt in ("csv", "parquet")}
    monkeypatch.setattr(fanout, "MIN_ROWS", 60)
    monkeypatch.setattr(fanout, "CHUNK", 7)  # chunks across the scored rows' end, ties among them
    parent = hub.manager.get(batch_id)
    ranking = indexed_ranking(hub.manager, parent, sort_key="test_score", direction="asc", top=None, status=status)
    assert ranking is not None and fanout.processes_for(hub.manager, ranking) >= 2
    assert _export(hub, batch_id, "csv", status) == in_one["csv"]
    fanned = pq.read_table(io.BytesIO(_export(hub, batch_id, "parquet", status)))
    assert fanned.equals(pq.read_table(io.BytesIO(in_one["parquet"])))
    assert "," in in_one["csv"].decode().splitlines()[1] and fanned.num_rows == (60 if status is None else 44)
    monkeypatch.setattr(fanout, "MIN_ROWS", 61)  # one child more than the batch has: one process
    assert fanout.processes_for(hub.manager, ranking) == 0


def test_leaving_a_fanned_out_export_early_stops_its_pool(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    batch_id = scored_screen(hub)
    others = set(multiprocessing.active_children())  # what earlier tests may have left running
    monkeypatch.setattr(fanout, "MIN_ROWS", 1)
    monkeypatch.setattr(fanout, "CHUNK", 3)
    parent = hub.manager.get(batch_id)
    ranking = indexed_ranking(hub.manager, parent, sort_key="test_score", direction="asc", top=None)
    assert ranking is not None
    stream = iter(export_stream("csv", hub.manager, hub.store, batch_id, ranking, hub.settings))
    header, first, second = next(stream), next(stream), next(stream)  # the second came from the pool
    assert header.startswith(b"rank,") and first.count(b"\n") == second.count(b"\n") == 3
    assert set(multiprocessing.active_children()) - others
    stream.close()  # type: ignore[attr-defined]  # what the server does when the client goes away
    assert not set(multiprocessing.active_children()) - others


def test_an_export_whose_pool_breaks_is_finished_by_this_process(
    hub: Hub, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    batch_id = scored_screen(hub)
    in_one = _export(hub, batch_id, "csv", None)
    monkeypatch.setattr(fanout, "MIN_ROWS", 1)
    monkeypatch.setattr(fanout, "CHUNK", 7)
    monkeypatch.setattr(fanout, "_start", dying_pool_process)  # every pool process dies as it starts
    with caplog.at_level(logging.WARNING, logger="omtx_hub.analytics"):
        assert _export(hub, batch_id, "csv", None) == in_one
    assert "the pool broke" in caplog.text
