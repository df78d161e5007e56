"""A batch's primary scores counted in fine bins by its completions: the summary read from them (and a
few ranges of the score index) is exactly what the values give, for scores that sit on the
histogram's edges, share one fine bin, span many powers of two or are all equal. On SQLite and
PostgreSQL, and through migration 0009's back-fill."""

from __future__ import annotations

import json
import math
import random
import statistics
from collections import Counter

import pytest
import sqlalchemy as sa

from omtx_hub.aggregate import aggregate_batch
from omtx_hub.db import create_db_engine, migrate
from omtx_hub.db.schema import score_bins
from omtx_hub.domain import Ligand
from omtx_hub.hub import Hub
from omtx_hub.queue import BatchSubmission
from omtx_hub.queue.score_bins import MANTISSA_BITS, bin_of, bin_range


def _completed(hub: Hub, scores: list[float | None], *, pending: int = 0) -> str:
    """A batch of the test predictor whose first children completed with these scores (None: without
    one), through the queue's own claim and completion, a few at a time as a worker's micro-batches."""
    n = len(scores) + pending
    batch_id = hub.manager.submit_batch(
        BatchSubmission(
            owner="o",
            predictor="test",
            protein_sequence="MKTAYIAKQR",
            batch_name="bins",
            ligands=[Ligand(f"l{i}", "CCO") for i in range(n)],
            max_attempts=1,
        )
    ).record["job_id"]
    hub.manager.declare_score("test", "test_score")
    done = 0
    while done < len(scores):
        claimed = hub.manager.claim("w", ["test"], limit=min(16, len(scores) - done))
        hub.manager.complete_many(
            [
                (
                    job,
                    {"test_score": scores[job.batch_index or 0]} if scores[job.batch_index or 0] is not None else {},
                    1.0,
                    1.0,
                )
                for job in claimed
            ],
            "w",
        )
        for job in claimed:
            assert job.batch_index is not None and job.batch_index < len(scores)
        done += len(claimed)
    return batch_id


def _expected(values: list[float], bins: int = 20) -> dict[str, object]:
    """What a scan of every value gives: the histogram buckets each value as the database does,
    ``floor((value - min) / width)``, the maximum in the last bin."""
    low, high = min(values), max(values)
    width = (high - low) / bins if high > low else 1.0
    counts = Counter(min(int((v - low) / width), bins - 1) for v in values)
    return {
        "count": len(values),
        "min": low,
        "median": statistics.median(values),
        "max": high,
        "counts": [counts.get(b, 0) for b in range(bins)],
        "edges": [low + i * width for i in range(bins)] + [high if high > low else low + bins],
    }


def _check(hub: Hub, batch_id: str, values: list[float]) -> None:
    summary = hub.manager.score_summary(batch_id)
    assert summary is not None
    expected = _expected(values)
    assert {k: summary[k] for k in ("count", "min", "median", "max")} == {
        k: expected[k] for k in ("count", "min", "median", "max")
    }
    assert summary["mean"] == pytest.approx(math.fsum(values) / len(values), rel=1e-12, abs=1e-12)
    assert summary["histogram"] == {"counts": expected["counts"], "edges": expected["edges"]}


def test_fine_bins_order_as_their_scores_and_cover_them() -> None:
    """Bins are ordered as the scores are; each score lies in its bin's closed range; a power of two
    holds 2**MANTISSA_BITS bins; -0.0 and 0.0 share one."""
    rng = random.Random(3)
    values = sorted(
        [0.0, -0.0, 1e-300, -1e-300, 5e-324, math.inf, -math.inf, 1.0, -1.0]
        + [rng.uniform(-20, 20) for _ in range(2000)]
        + [rng.choice([-1, 1]) * 10 ** rng.uniform(-8, 8) for _ in range(2000)]
    )
    bins = [bin_of(v) for v in values]
    assert bins == sorted(bins)
    for value, fine in zip(values, bins, strict=True):
        low, high = bin_range(fine)
        assert low <= value <= high, (value, fine, low, high)
    assert bin_of(-0.0) == bin_of(0.0)
    assert bin_of(2.0) - bin_of(1.0) == 2**MANTISSA_BITS == bin_of(-1.0) - bin_of(-2.0)
    assert bin_range(bin_of(1.0)) == (1.0, 1.0 + 2**-MANTISSA_BITS - 2**-52)


@pytest.mark.parametrize(
    "case",
    ["vina-like", "on the edges", "one fine bin", "many octaves", "all equal", "one", "two", "even ties"],
)
def test_the_summary_from_the_bins_is_what_the_values_give(hub: Hub, case: str) -> None:
    rng = random.Random(case)
    if case == "vina-like":
        values = [round(rng.gauss(-7.5, 1.3), 3) for _ in range(300)]
    elif case == "on the edges":  # many values exactly on the histogram's edges (and their neighbours)
        values = [-10.0 + 0.5 * (i % 21) for i in range(200)]
        values += [math.nextafter(v, math.inf) for v in values[:40]] + [
            math.nextafter(v, -math.inf) for v in values[40:80]
        ]
    elif case == "one fine bin":  # every value in the bin of 5.0, so every edge cuts it
        low, high = bin_range(bin_of(5.0))
        values = [low + (high - low) * rng.random() for _ in range(150)] + [low, high]
    elif case == "many octaves":
        values = [rng.choice([-1, 1]) * 10 ** rng.uniform(-6, 6) for _ in range(250)] + [0.0, -0.0]
    elif case == "all equal":
        values = [-8.25] * 30
    elif case == "one":
        values = [0.75]
    elif case == "two":
        values = [0.25, 0.75]
    else:  # an even count whose two middle values are ties, across a fine bin's boundary
        values = [1.0] * 10 + [math.nextafter(1.0, 0.0)] * 10
    batch_id = _completed(hub, [*values, None, None], pending=3)  # and a few unscored, a few pending
    _check(hub, batch_id, values)


def test_the_bins_are_what_the_summary_reads(hub: Hub) -> None:
    """Counts and sums come from the bins: a bin counted twice shows in the count and the mean."""
    values = [-9.0, -8.0, -7.0, -6.0]
    batch_id = _completed(hub, values)
    with hub.manager.core.write() as conn:
        conn.execute(
            sa.update(score_bins)
            .where(score_bins.c.batch_parent_id == batch_id, score_bins.c.bin == bin_of(-9.0))
            .values(n=score_bins.c.n * 2, total=score_bins.c.total * 2)
        )
    summary = hub.manager.score_summary(batch_id)
    assert summary is not None and summary["count"] == 5 and summary["mean"] == pytest.approx(-39 / 5)
    empty = _completed(hub, [None, None], pending=2)
    assert hub.manager.score_summary(empty) is None


def test_a_running_batchs_summary_follows_its_completions(hub: Hub) -> None:
    """Completions made after a summary are in the next one (nothing is cached between them)."""
    rng = random.Random(11)
    first = [round(rng.uniform(-12, -4), 2) for _ in range(40)]
    batch_id = _completed(hub, first, pending=30)
    _check(hub, batch_id, first)
    more = [round(rng.uniform(-14, -2), 2) for _ in range(30)]
    claimed = sorted(hub.manager.claim("w", ["test"], limit=30), key=lambda j: j.batch_index or 0)
    hub.manager.complete_many(
        [(job, {"test_score": score}, 1.0, 1.0) for job, score in zip(claimed, more, strict=True)], "w"
    )
    _check(hub, batch_id, first + more)


def test_0009_back_fills_the_bins_of_scored_children(database_url: str) -> None:
    """Batches scored before 0009 get their bins: per batch, the count and sum of its scores in each."""
    engine = create_db_engine(database_url)
    migrate(engine, "0008")
    rng = random.Random(5)
    scores = {"batch-a": [rng.uniform(-12, -3) for _ in range(120)] + [-8.0] * 5, "batch-b": [0.5, 0.25, 0.5]}
    insert = sa.text(
        "INSERT INTO jobs (job_id, job_type, status, owner, predictor, params, target_key, input, results, score, "
        "batch_parent_id, batch_index, max_attempts, run_after, created_at) VALUES (:job_id, 'BATCH_CHILD', "
        "'completed', 'o', 'vina', '{}', 'k', '{}', :results, :score, :parent, :index, 1, 0, 0)"
    )
    with engine.begin() as conn:
        for parent, values in scores.items():
            for index, value in enumerate([*values, None]):
                conn.execute(
                    insert,
                    {
                        "job_id": f"{parent}-{index}",
                        "results": json.dumps({"vina_score_kcal_mol": value}),
                        "score": value,
                        "parent": parent,
                        "index": index,
                    },
                )
    migrate(engine)
    with engine.connect() as conn:
        kept = {(r.batch_parent_id, r.bin): (r.n, r.total) for r in conn.execute(sa.select(score_bins))}
    expected: dict[tuple[str, int], tuple[int, float]] = {}
    for parent, values in scores.items():
        for value in values:
            n, total = expected.get((parent, bin_of(value)), (0, 0.0))
            expected[(parent, bin_of(value))] = (n + 1, total + value)
    assert kept.keys() == expected.keys()
    for key, (n, total) in expected.items():
        assert kept[key][0] == n and kept[key][1] == pytest.approx(total)
    engine.dispose()


def test_the_aggregation_counts_the_bins_again(hub: Hub, caplog: pytest.LogCaptureFixture) -> None:
    """Bins that do not match the scores (completed in part by a worker from before 0009) are counted
    again when the batch is aggregated, with a warning, and its kept summary is the true one; bins
    that match are left alone."""
    rng = random.Random(2)
    values = [round(rng.uniform(-11, -5), 2) for _ in range(60)]
    batch_id = _completed(hub, values)
    assert not hub.manager.recount_score_bins(batch_id)
    with hub.manager.core.write() as conn:
        conn.execute(sa.delete(score_bins).where(score_bins.c.bin == bin_of(values[0])))
        conn.execute(sa.update(score_bins).where(score_bins.c.bin == bin_of(values[1])).values(n=score_bins.c.n + 3))
    assert hub.manager.score_summary(batch_id)["count"] != len(values)  # type: ignore[index]
    with caplog.at_level("WARNING", logger="omtx_hub.aggregate"):
        aggregate_batch(hub.manager, hub.store, batch_id, rank_by="test_score", direction="asc", settings=hub.settings)
    assert any("counted again" in r.getMessage() for r in caplog.records)
    _check(hub, batch_id, values)
    assert hub.manager.get(batch_id)["results"]["score_summary"] == hub.manager.score_summary(batch_id)
    assert not hub.manager.recount_score_bins(batch_id)


def test_an_infinite_score_is_no_score(hub: Hub) -> None:
    """A predictor's infinite estimate is stored as null in the results (not JSON): the score index
    and the bins leave it out too, so the summary is that of the finite scores (before, the index
    held the infinity, ranked it first or last, and the summary failed on it)."""
    batch_id = _completed(hub, [-8.0, math.inf, -6.5, -math.inf, -7.25])
    children = {c["batch_index"]: c for c in hub.manager.iter_children(batch_id)}
    assert [children[i]["score"] for i in range(5)] == [-8.0, None, -6.5, None, -7.25]
    assert children[1]["results"] == {"test_score": None}
    _check(hub, batch_id, [-8.0, -6.5, -7.25])
