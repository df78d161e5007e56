"""The score and InChIKey indexes answer exactly what reading every child's JSON answers: the best N
(either direction, ties in submission order, then the unscored), duplicates, keyset pages in rank
order and the primary score's summary. On SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from hub_testing import ApiClient, scored_screen
from omtx_hub.analytics import RankingRules, batch_stats, indexed_ranking, plan_rows, stream_rows
from omtx_hub.analytics.stats import histogram
from omtx_hub.db.schema import job_scores, jobs, score_bins
from omtx_hub.hub import Hub


@pytest.fixture
def screen(hub: Hub) -> str:
    return scored_screen(hub)


def _rows(hub: Hub, batch_id: str, ranking: object) -> list[dict]:
    return list(stream_rows(hub.manager, batch_id, ranking, 1.0))  # type: ignore[arg-type]


@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_the_index_ranks_as_the_json_does(hub: Hub, screen: str, direction: str) -> None:
    parent = hub.manager.get(screen)
    before_0007 = {**parent, "result_columns": None}  # its best N are read at once, not walked
    for status in (None, "completed"):
        for top in (1, 7, 40, 43, 55, 100):
            args = {"sort_key": "test_score", "direction": direction, "status": status, "top": top}
            planned = plan_rows(hub.manager, screen, **args)
            walked = indexed_ranking(hub.manager, parent, rules=RankingRules(), **args)
            assert walked is not None and walked.walk
            assert walked.columns == planned.columns
            assert _rows(hub, screen, walked) == _rows(hub, screen, planned), (status, top)
            read = indexed_ranking(hub.manager, before_0007, rules=RankingRules(), **args)
            assert read is not None and not read.walk
            assert read.order == planned.order
            assert read.ranks == {i: planned.ranks[i] for i in planned.order if i in planned.ranks}
            assert {i: planned.duplicates[i] for i in planned.order if i in planned.duplicates} == read.duplicates
            # its columns are those of its rows: the same cells, without the planned columns no row fills
            cells = [{c: row.get(c) for c in planned.columns} for row in _rows(hub, screen, read)]
            assert cells == _rows(hub, screen, planned)
    assert read.duplicates  # the fixture has duplicates among the rows compared


@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_the_best_by_any_field_are_read_as_the_plan_ranks_them(hub: Hub, screen: str, direction: str) -> None:
    """By another score (read from ``job_scores``), by a result field, by a property (and a result
    of that name where it is a number), by a field no child has (the database's pass over the JSON):
    each ranks as the plan does, ties by submission order."""
    parent = hub.manager.get(screen)
    for sort_key in ("other", "rare", "heavy_atoms", "qed", "missing"):
        for status in (None, "completed", "failed", "pending"):
            for top in (1, 7, 45, 100):
                args = {"sort_key": sort_key, "direction": direction, "status": status, "top": top}
                planned = plan_rows(hub.manager, screen, **args)
                read = indexed_ranking(hub.manager, parent, **args)
                assert read is not None and not read.walk
                assert read.order == planned.order, args
                assert read.ranks == {i: planned.ranks[i] for i in planned.order if i in planned.ranks}
                assert read.duplicates == {i: planned.duplicates[i] for i in planned.order if i in planned.duplicates}
                cells = [{c: row.get(c) for c in planned.columns} for row in _rows(hub, screen, read)]
                assert cells == _rows(hub, screen, planned), args
    by_heavy = indexed_ranking(hub.manager, parent, sort_key="heavy_atoms", direction="desc", top=3)
    assert by_heavy is not None and by_heavy.order == [42, 39, 36]  # results of 142, 139, 136 over the property


def test_other_scores_are_kept_by_completions_and_read_from_their_index(hub: Hub, screen: str) -> None:
    """Every completed child's other scores are in ``job_scores``; the best by one are read from
    there (a row taken out of it is no longer ranked); pruning the batch deletes them, and its
    score bins."""
    with hub.manager.core.read() as conn:
        kept = conn.execute(sa.select(job_scores).where(job_scores.c.batch_parent_id == screen)).all()
    assert sorted((r.field, r.batch_index, r.value) for r in kept) == sorted(
        [("other", i, float(i % 9 - 4)) for i in range(44)] + [("rare", 3, 1.0)]
    )
    parent = hub.manager.get(screen)
    best = indexed_ranking(hub.manager, parent, sort_key="other", direction="desc", top=3)
    assert best is not None and best.order == [8, 17, 26]  # 4, ties in submission order
    with hub.manager.core.write() as conn:
        conn.execute(sa.delete(job_scores).where(job_scores.c.field == "other", job_scores.c.batch_index == 8))
    best = indexed_ranking(hub.manager, parent, sort_key="other", direction="desc", top=3)
    assert best is not None and best.order == [17, 26, 35]
    with hub.manager.core.read() as conn:
        assert conn.execute(sa.select(sa.func.sum(score_bins.c.n))).scalar_one() == 40  # the scored children
    with hub.manager.core.write() as conn:
        conn.execute(sa.update(jobs).where(jobs.c.job_id == screen).values(completed_at=1.0, status="completed"))
    assert (screen, screen) in hub.manager.prune(older_than=2.0)
    with hub.manager.core.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(job_scores)).scalar_one() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(score_bins)).scalar_one() == 0


@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_the_ends_of_each_property_kept_at_aggregation_rank_as_the_plan_does(
    hub: Hub, screen: str, direction: str
) -> None:
    """A batch's aggregation keeps in ``job_scores`` the best few completed children by each property,
    either way (a result of the property's name first). An aggregated batch that lists them ranks its
    best N from there, as the plan ranks them, while N is within what was kept; beyond it, or for a
    batch that does not list them or is not aggregated, by the JSON pass."""
    fields, ends = ["heavy_atoms", "qed", "clogp"], 7  # no child has a clogp
    hub.manager.index_properties(screen, fields, ends)
    hub.manager.index_properties(screen, fields, ends)  # again (aggregated after a retry): replaced
    with hub.manager.core.read() as conn:
        kept = conn.execute(
            sa.select(job_scores.c.field, job_scores.c.batch_index).where(job_scores.c.field.in_(fields))
        ).all()
    for field in fields:
        ends_planned = set()
        for order in ("asc", "desc"):
            planned = plan_rows(hub.manager, screen, sort_key=field, direction=order, top=ends)
            ends_planned |= {i for i in planned.order if i in planned.ranks}
        assert {i for f, i in kept if f == field} == ends_planned
    assert len({i for f, i in kept if f == "qed"}) == 14  # not child 4's results' list, but its property
    parent = hub.manager.get(screen)
    aggregated = {**parent, "aggregated_at": 1.0, "results": {"property_index": {"fields": fields, "ends": ends}}}
    for sort_key in fields:
        for status in (None, "completed", "failed", "pending"):
            for top in (1, ends, ends + 1, 100):
                args = {"sort_key": sort_key, "direction": direction, "status": status, "top": top}
                planned = plan_rows(hub.manager, screen, **args)
                read = indexed_ranking(hub.manager, aggregated, **args)
                assert read is not None and read.order == planned.order, args
                assert read.ranks == {i: planned.ranks[i] for i in planned.order if i in planned.ranks}
                cells = [{c: row.get(c) for c in planned.columns} for row in _rows(hub, screen, read)]
                assert cells == _rows(hub, screen, planned), args
    best = plan_rows(hub.manager, screen, sort_key="qed", direction=direction, top=ends + 1).order
    with hub.manager.core.write() as conn:
        conn.execute(sa.delete(job_scores).where(job_scores.c.field == "qed", job_scores.c.batch_index == best[0]))
    from_index = indexed_ranking(hub.manager, aggregated, sort_key="qed", direction=direction, top=ends - 1)
    assert from_index is not None and from_index.order == best[1:ends]  # the index kept is what was read
    unlisted = ({**aggregated, "results": {}}, {**aggregated, "aggregated_at": None}, parent)
    for by_json in ((aggregated, ends + 1), *((p, ends) for p in unlisted)):
        read = indexed_ranking(hub.manager, by_json[0], sort_key="qed", direction=direction, top=by_json[1])
        assert read is not None and read.order == best[: by_json[1]]


def test_two_aggregations_of_a_batch_at_once_keep_its_ends(hub: Hub, screen: str) -> None:
    """Two workers may aggregate one batch at once: one's index_properties runs while the other's
    has written the same rows and not yet committed (its insert waits on those rows on PostgreSQL,
    on the write lock on SQLite). Neither fails (it did, with a unique violation that stopped the
    worker), and the ends are kept once."""
    hub.manager.index_properties(screen, ["qed"], 3)
    qed = sa.and_(job_scores.c.batch_parent_id == screen, job_scores.c.field == "qed")
    with hub.manager.core.read() as conn:
        ends = sorted(conn.execute(sa.select(job_scores).where(qed)).all())
    errors: list[BaseException] = []

    def aggregate() -> None:
        try:
            hub.manager.index_properties(screen, ["qed"], 3)
        except BaseException as exc:
            errors.append(exc)

    with hub.manager.core.write() as conn:  # the other worker, between its insert and its commit
        conn.execute(sa.delete(job_scores).where(qed))
        conn.execute(sa.insert(job_scores), [r._asdict() for r in ends])
        other = threading.Thread(target=aggregate)
        other.start()
        time.sleep(0.5)
    other.join(30)
    assert not errors, errors
    with hub.manager.core.read() as conn:
        assert sorted(conn.execute(sa.select(job_scores).where(qed)).all()) == ends


def test_the_index_declines_what_it_cannot_answer(hub: Hub, screen: str) -> None:
    parent = hub.manager.get(screen)
    common = {"direction": "asc", "top": 5}
    assert indexed_ranking(hub.manager, parent, sort_key="odd-name", **common) is None
    needs_pose = RankingRules(pose_checks="require")
    assert indexed_ranking(hub.manager, parent, sort_key="test_score", rules=needs_pose, **common) is None
    before_0007 = {**parent, "result_columns": None}  # a whole batch whose columns were never kept
    assert indexed_ranking(hub.manager, before_0007, sort_key="test_score", direction="asc", top=None) is None
    assert indexed_ranking(hub.manager, before_0007, sort_key="test_score", direction="asc", top=3) is not None
    assert indexed_ranking(hub.manager, parent, sort_key="other", direction="asc", top=None) is None


def test_a_batch_keeps_its_result_columns_as_children_complete(hub: Hub, screen: str) -> None:
    assert hub.manager.get(screen)["result_columns"] == ["test_score", "other", "heavy_atoms", "rare"]


@pytest.mark.parametrize("page", [7, 2000])
@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_a_whole_batch_walks_the_index_as_the_plan_reads_it(
    hub: Hub, screen: str, direction: str, page: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("omtx_hub.analytics.rows._WALK_PAGE", page)  # 7: ties and duplicates split by pages
    parent = hub.manager.get(screen)
    for status in (None, "completed"):
        args = {"sort_key": "test_score", "direction": direction, "status": status, "top": None}
        planned = plan_rows(hub.manager, screen, **args)
        walked = indexed_ranking(hub.manager, parent, **args)
        assert walked is not None and walked.walk and not walked.order
        assert walked.columns == planned.columns
        assert _rows(hub, screen, walked) == _rows(hub, screen, planned)
        assert len(_rows(hub, screen, walked)) == (60 if status is None else 44)
    # a one-cell result named as a property fills its cell; the property shows where none does
    heavy = {row["batch_index"]: row["heavy_atoms"] for row in _rows(hub, screen, walked)}
    assert heavy[0] == 100 and heavy[3] == 103 and heavy[4] == 3 + 4 and heavy[5] == 3 + 5


@pytest.mark.parametrize("limit", [1, 6])
@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_keyset_pages_walk_the_ranking(hub: Hub, screen: str, direction: str, limit: int) -> None:
    """Pages of one row split every run of ties; pages of six split some."""
    planned = plan_rows(hub.manager, screen, sort_key="test_score", direction=direction, status="completed")
    walked: list[int] = []
    after = None
    while page := hub.manager.ranked_children(screen, direction=direction, limit=limit, after=after):
        walked += [r["batch_index"] for r in page]
        after = (page[-1]["score"], page[-1]["batch_index"])
    assert walked == [i for i in planned.order if i in planned.ranks]
    assert len(walked) == 40


def test_score_summary_matches_the_values(hub: Hub, screen: str) -> None:
    with hub.manager.core.read() as conn:
        values = [
            v
            for v in conn.execute(sa.select(jobs.c.score).where(jobs.c.batch_parent_id == screen)).scalars()
            if v is not None
        ]
    summary = hub.manager.score_summary(screen)
    assert summary is not None
    assert summary["count"] == len(values) == 40
    assert (summary["min"], summary["max"]) == (min(values), max(values))
    assert summary["mean"] == pytest.approx(sum(values) / len(values))
    assert summary["median"] == pytest.approx(sorted(values)[19] / 2 + sorted(values)[20] / 2)
    expected = histogram(values)
    assert summary["histogram"]["counts"] == expected["counts"]
    assert summary["histogram"]["edges"] == pytest.approx(expected["edges"])


def test_primary_stats_come_from_the_index(hub: Hub, screen: str) -> None:
    common = {"primary": "test_score", "direction": "asc", "settings": hub.settings, "top": 5}
    every = batch_stats(hub.manager, screen, **common)
    primary = batch_stats(hub.manager, screen, fields="primary", **common)
    assert set(every["fields"]) >= {"test_score", "other", "rare", "heavy_atoms"}
    assert set(primary["fields"]) == {"test_score"}
    for key in ("count", "min", "max", "mean", "median"):
        assert primary["fields"]["test_score"][key] == pytest.approx(every["fields"]["test_score"][key])
    assert (
        primary["fields"]["test_score"]["histogram"]["counts"] == every["fields"]["test_score"]["histogram"]["counts"]
    )
    assert primary["top"] == every["top"]
    assert primary["counts"] == every["counts"]
    assert primary["cost"] is None and every["cost"]["jobs_measured"] == 44


def test_a_batch_retry_keeps_the_completed_scores(hub: Hub, screen: str) -> None:
    """Completed children keep their scores; a retried failed one has none until it completes."""
    hub.manager.retry(screen)
    with hub.manager.core.read() as conn:
        rows = conn.execute(sa.select(jobs.c.status, jobs.c.score).where(jobs.c.batch_parent_id == screen)).all()
    assert sum(1 for r in rows if r.score is not None) == 40
    assert all(r.score is None for r in rows if r.status != "completed")


@pytest.mark.parametrize("status", [None, "completed"])
def test_pages_of_the_ranking_follow_each_others_cursor(api: ApiClient, hub: Hub, status: str | None) -> None:
    """Pages of 7 (ties and duplicates split by page ends, the last ranked page running into the
    unscored rows) put together are the whole export, ranks and all; the last ends with a null cursor."""
    screen = scored_screen(hub, owner="local")
    export = f"/api/v1/jobs/{screen}/export"
    ranked = {"format": "json", "sort": "test_score", "order": "asc", **({"status": status} if status else {})}
    whole = api.get(export, params=ranked).json()
    assert "next_cursor" not in whole  # not a page
    rows: list[dict] = []
    after = None
    while True:
        params = {**ranked, "top": 7, **({"after": after} if after else {})}
        page = api.get(export, params=params).json()
        assert "results" in page, page
        rows += page["results"]
        after = page["next_cursor"]
        if after is None:
            break
        assert len(page["results"]) == 7
    assert rows == whole["results"] and len(rows) == (60 if status is None else 44)
    assert [r["rank"] for r in rows[:40]] == list(range(1, 41)) and rows[40]["rank"] is None


def test_a_cursor_is_refused_where_the_index_does_not_rank(api: ApiClient, hub: Hub) -> None:
    screen = scored_screen(hub, owner="local")
    export = f"/api/v1/jobs/{screen}/export"
    ranked = {"format": "json", "sort": "test_score", "order": "asc"}
    first = api.get(export, params={**ranked, "top": 5}).json()["next_cursor"]
    for params in (
        {"top": 5, "after": "bm90IGEgY3Vyc29y"},  # base64 of "not a cursor"
        {"top": 5, "after": "!!"},
        {"after": first},  # no top
        {"top": 5, "after": first, "sort": "other"},
        {"top": 5, "after": first, "status": "failed"},
        {"top": 5, "after": first, "pose_checks": "require"},
    ):
        r = api.get(export, params={**ranked, **params})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_cursor", (params, r.text)


def test_result_columns_grow_when_several_processes_complete_a_batch(hub: Hub) -> None:
    """Each process remembers what it committed and skips reading the parent when a completion has
    nothing new; a field another process added, or a new one, still lands."""
    from omtx_hub.domain import Ligand
    from omtx_hub.hub import open_hub
    from omtx_hub.queue import BatchSubmission

    sub = BatchSubmission(
        owner="o",
        predictor="test",
        protein_sequence="MKTAYIAKQR",
        batch_name="two workers",
        ligands=[Ligand(f"l{i}", "CCO") for i in range(4)],
        max_attempts=1,
    )
    batch_id = hub.manager.submit_batch(sub).record["job_id"]
    other = open_hub(hub.settings)  # another worker process: its own queue core
    try:
        first, second, third, fourth = hub.manager.claim("a", ["test"], limit=4)
        hub.manager.complete(first, "a", {"s": 1.0})
        other.manager.complete(second, "a", {"s": 2.0, "extra": 1.0})
        hub.manager.complete(third, "a", {"s": 3.0})  # nothing new to this process: not read
        assert hub.manager.get(batch_id)["result_columns"] == ["s", "extra"]
        hub.manager.complete(fourth, "a", {"s": 4.0, "extra": 2.0, "newest": "x"})
        assert hub.manager.get(batch_id)["result_columns"] == ["s", "extra", "newest"]
    finally:
        other.close()


def test_a_small_batch_is_walked_in_two_statements(hub: Hub, screen: str) -> None:
    """All 60 children fit in the first pages: their duplicates are found among them (the rows are
    the plan's, above), so the export is the scored page and the unscored page, no InChIKey scan."""
    parent = hub.manager.get(screen)
    walked = indexed_ranking(hub.manager, parent, sort_key="test_score", direction="asc", top=None)
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    sa.event.listen(hub.engine, "before_cursor_execute", seen)
    try:
        rows = _rows(hub, screen, walked)
    finally:
        sa.event.remove(hub.engine, "before_cursor_execute", seen)
    assert len(rows) == 60 and sum(1 for row in rows if row["duplicate_of"]) > 0
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 2 and not any("GROUP BY" in s for s in selects), selects
