"""Batch statistics: counts by status, a summary and histogram of every numeric field, the top N,
and the measured cost."""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

import numpy as np

from omtx_hub.analytics.rows import RankingRules, indexed_ranking, number, plan_rows, stream_rows
from omtx_hub.domain import JobStatus, scalar_results
from omtx_hub.ligands import PROPERTY_FIELDS
from omtx_hub.queue import QueueManager
from omtx_hub.settings import Settings

__all__ = ["batch_stats", "histogram"]


def histogram(values: list[float], bins: int = 20) -> dict[str, Any]:
    """``bins`` equal bins from the lowest to the highest value (the last one closed); all values
    equal: bins 1 wide from that value."""
    low, high = min(values), max(values)
    counts, edges = np.histogram(values, bins=bins, range=(low, high) if high > low else (low, low + bins))
    return {"edges": edges.tolist(), "counts": counts.tolist()}


def _costs(manager: QueueManager, batch_id: str, settings: Settings) -> dict[str, Any]:
    costs = manager.batch_costs(batch_id)
    price = settings.price_per_accelerator_hour
    costs["cost"] = round(costs["accelerator_seconds"] / 3600 * price, 6) if price else None
    costs["cost_per_ligand"] = (
        (costs["cost"] / costs["jobs_measured"]) if costs["cost"] is not None and costs["jobs_measured"] else None
    )
    costs["price_per_accelerator_hour"] = price or None
    costs["currency"] = settings.currency
    return costs


def batch_stats(
    manager: QueueManager,
    batch_id: str,
    *,
    primary: str,
    direction: str,
    settings: Settings,
    top: int = 10,
    rules: RankingRules | None = None,
    fields: str = "all",
) -> dict[str, Any]:
    """Counts by status, summary and histogram of every numeric field (``fields="primary"``: of the
    primary score only), the top N, how often each contact occurs among the top N (when poses were
    checked), cost sums.

    With ``fields="primary"`` and the batch's primary score in the ``score`` column, nothing reads
    the children's rows but the top N: the summary is the one the batch's aggregation kept (a
    finished batch), or comes from the score index (one scan of it), and the counts from the batch's
    counters, so a million-ligand batch answers in well under a second; ``cost`` (a sum over every
    child) is left out (None)."""
    parent = manager.get(batch_id)
    numbers: dict[str, list[float]] = {}
    only_primary = fields == "primary"
    indexed = only_primary and manager.score_field(parent["predictor"]) == primary

    def collect(child: dict[str, Any]) -> None:
        if child["status"] != JobStatus.COMPLETED.value:
            return
        found = {
            **scalar_results(child["results"]),
            **{k: v for k, v in (child["input"].get("properties") or {}).items() if k in PROPERTY_FIELDS},
        }
        for name, value in found.items():
            as_number = number(value)
            if as_number is not None and (name == primary or not only_primary):
                numbers.setdefault(name, []).append(as_number)

    ranking = (
        indexed_ranking(
            manager,
            parent,
            sort_key=primary,
            direction=direction,
            top=top,
            rules=rules,
        )
        if indexed
        else None
    )
    if ranking is None:
        ranking = plan_rows(
            manager,
            batch_id,
            sort_key=primary,
            direction=direction,
            top=top,
            observe=None if indexed else collect,
            rules=rules,
        )
    summary = {
        name: {
            "count": len(vals),
            "min": min(vals),
            "median": statistics.median(vals),
            "mean": statistics.fmean(vals),
            "max": max(vals),
            "histogram": histogram(vals),
        }
        for name, vals in sorted(numbers.items())
    }
    if indexed:
        kept = parent["results"] if parent["aggregated_at"] is not None else None
        if isinstance(kept, dict) and "score_summary" in kept:
            from_index = kept["score_summary"]  # a finished batch's, kept by its aggregation
        else:
            from_index = manager.score_summary(batch_id)
        summary = {primary: from_index} if from_index else {}
    contacts: Counter[str] = Counter()
    ranked_rows = 0
    best = []
    for row in stream_rows(manager, batch_id, ranking, settings.price_per_accelerator_hour):
        if row["rank"] is None:
            continue
        ranked_rows += 1
        if row.get("interactions"):
            contacts.update(set(str(row["interactions"]).split(", ")))
        best.append(row)
    best = [
        {
            k: row.get(k)
            for k in (
                "rank",
                "job_id",
                "ligand_name",
                "ligand_smiles",
                primary,
                "heavy_atoms",
                "ligand_efficiency_kcal_mol_per_heavy_atom",
                "qed",
            )
        }
        for row in best
    ]
    costs = None if only_primary else _costs(manager, batch_id, settings)  # a sum over every child
    counts = {s.value: parent[f"n_{s.value}"] for s in JobStatus}
    return {
        "batch_id": batch_id,
        "predictor": parent["predictor"],
        "rank_by": primary,
        "direction": direction,
        "counts": {"total": parent["n_total"], **counts},
        "fields": summary,
        "top": best,
        # the fingerprint frequency table: how many of the top N make each contact, most common first
        "interactions": [
            {"interaction": name, "count": n, "fraction": round(n / ranked_rows, 4)}
            for name, n in sorted(contacts.items(), key=lambda item: (-item[1], item[0]))
        ],
        **(rules or RankingRules()).as_document(),
        "cost": costs,
    }
