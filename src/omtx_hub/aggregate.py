"""Batch aggregation, once a batch has finished: ligand properties, ranking, and the batch's files.

1. Children whose ligand properties were not computed at submission (no filters were asked for)
   get them now, once, written back to their records in chunks (``ligands.ligand_properties``).
   The best 2,000 completed children by each numeric property, either way, are then kept in
   ``job_scores``, so the best N ≤ 2,000 by a property are one range of an index (the summary's
   ``property_index`` says which properties, and how many each way).
2. The children are ranked by the predictor's primary score and written, best first, as
   ``batch_results.csv``, ``batch_results.json``, ``batch_results.parquet`` and ``best_poses.sdf``
   (the same writers as the export endpoints, see ``analytics.py``).
3. The parent's ``results`` get a summary: counts, the top 10, the file names, and the primary
   score's summary and histogram (``score_summary``: what ``/stats?fields=primary`` then returns
   as it is; the children of a finished batch do not change). The batch's score bins are counted
   again from its scores first, and rewritten where they differ (with a warning).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from omtx_hub.analytics import RankingRules, export_stream, rank_batch, stream_rows
from omtx_hub.ligands import PROPERTY_FIELDS, TEXT_PROPERTIES, properties_of_all
from omtx_hub.queue import QueueManager
from omtx_hub.settings import Settings
from omtx_hub.storage import ResultStore

__all__ = ["BATCH_FILES", "PROPERTY_ENDS", "aggregate_batch", "fill_properties", "indexed_properties"]

BATCH_FILES = {
    "csv": "batch_results.csv",
    "json": "batch_results.json",
    "parquet": "batch_results.parquet",
    "sdf": "best_poses.sdf",
}
_CHUNK = 500
PROPERTY_ENDS = 2000  # children kept each way by each property: the batch page's table shows 2,000
_WINDOW = 20_000  # children held at once while their properties are computed
logger = logging.getLogger(__name__)


def fill_properties(manager: QueueManager, batch_id: str) -> int:
    """Compute and store the properties of children that lack them; return how many were computed."""
    done = 0
    window: list[dict[str, Any]] = []

    def flush() -> None:
        nonlocal done, window
        computed = properties_of_all([child["input"]["ligand_smiles"] for child in window])
        updates = [
            (child["job_id"], {**child["input"], "properties": props})
            for child, props in zip(window, computed, strict=True)
        ]
        for start in range(0, len(updates), _CHUNK):
            manager.set_inputs(updates[start : start + _CHUNK])
        done += len(window)
        window = []

    for child in manager.iter_children(batch_id):
        if "properties" not in child["input"]:
            window.append({"job_id": child["job_id"], "input": child["input"]})
            if len(window) >= _WINDOW:
                flush()
    if window:
        flush()
    return done


def indexed_properties(manager: QueueManager, predictor: str) -> list[str]:
    """The ligand properties a batch of this predictor has indexed at aggregation: the numbers, but
    one that is also a score of the predictor's (ranked by its own index)."""
    scores = {manager.score_field(predictor), *manager.sortable_fields(predictor)}
    return [f for f in PROPERTY_FIELDS if f not in TEXT_PROPERTIES and f not in scores]


def _score_summary(manager: QueueManager, batch_id: str) -> dict[str, Any] | None:
    """The primary score's summary, kept with the batch, after its bins are counted again."""
    if manager.recount_score_bins(batch_id):
        logger.warning(
            "a batch's score bins did not match its scores and were counted again (completed in part by a "
            "worker from before migration 0009?)",
            extra={"action": "aggregate", "job": batch_id},
        )
    return manager.score_summary(batch_id)


def aggregate_batch(
    manager: QueueManager,
    store: ResultStore,
    batch_id: str,
    *,
    rank_by: str,
    direction: str,
    settings: Settings | None = None,
) -> dict[str, Any]:
    settings = settings or Settings()
    fill_properties(manager, batch_id)
    parent = manager.get(batch_id)
    indexed = indexed_properties(manager, parent["predictor"])
    manager.index_properties(batch_id, indexed, PROPERTY_ENDS)
    rules = RankingRules.of_batch(parent)
    ranking = rank_batch(manager, parent, sort_key=rank_by, direction=direction, rules=rules)
    directory = store.batch_dir(batch_id)
    for fmt, name in BATCH_FILES.items():
        store.write_bytes(
            f"{directory}/{name}", b"".join(export_stream(fmt, manager, store, batch_id, ranking, settings))
        )
    top = (
        rank_batch(manager, parent, sort_key=rank_by, direction=direction, rules=rules, top=10)
        if ranking.walk
        else dataclasses.replace(ranking, order=ranking.order[:10])
    )
    counts = {s: parent[f"n_{s}"] for s in ("pending", "running", "completed", "failed", "cancelled")}
    summary = {
        "rank_by": rank_by,
        "direction": direction,
        "counts": counts,
        "top": [
            {k: r.get(k) for k in ("rank", "job_id", "ligand_name", "ligand_smiles", rank_by)}
            for r in stream_rows(manager, batch_id, top, settings.price_per_accelerator_hour)
            if r["rank"] is not None
        ],
        "files": list(BATCH_FILES.values()),
        "property_index": {"fields": indexed, "ends": PROPERTY_ENDS},
        "score_summary": _score_summary(manager, batch_id),
    }
    manager.mark_aggregated(batch_id, summary)
    return summary
