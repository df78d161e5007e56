"""Batch aggregation: rank a finished batch's children and write batch_results.json / .csv."""

from __future__ import annotations

import csv
import io
import math
from typing import Any

from omtx_hub.domain import JobStatus
from omtx_hub.queue.manager import QueueManager
from omtx_hub.storage import ResultStore

__all__ = ["aggregate_batch", "rank_rows"]

_BASE_COLUMNS = ["rank", "job_id", "batch_index", "ligand_name", "ligand_smiles", "status"]


def _scalar_fields(results: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (results or {}).items() if isinstance(v, (int, float, str, bool)) or v is None}


def _score(row: dict[str, Any], key: str) -> float | None:
    value = row.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return float(value)


def rank_rows(rows: list[dict[str, Any]], rank_by: str, direction: str) -> list[dict[str, Any]]:
    """Completed rows with a score first, best first; then the rest in submission order. Adds ``rank``."""
    scored: list[dict[str, Any]] = []
    rest: list[dict[str, Any]] = []
    for r in rows:
        ok = r["status"] == JobStatus.COMPLETED.value and _score(r, rank_by) is not None
        (scored if ok else rest).append(r)
    scored.sort(key=lambda r: (_score(r, rank_by) or 0.0) * (1 if direction == "asc" else -1))
    for i, r in enumerate(scored, start=1):
        r["rank"] = i
    for r in rest:
        r["rank"] = None
    return scored + sorted(rest, key=lambda r: r["batch_index"])


def aggregate_batch(
    manager: QueueManager, store: ResultStore, batch_id: str, *, rank_by: str, direction: str
) -> dict[str, Any]:
    parent = manager.get(batch_id)
    rows: list[dict[str, Any]] = []
    score_columns: dict[str, None] = {rank_by: None}
    for child in manager.iter_children(batch_id):
        fields = _scalar_fields(child["results"])
        score_columns.update(dict.fromkeys(sorted(fields)))
        error = child["error"] or {}
        rows.append(
            {
                "job_id": child["job_id"],
                "batch_index": child["batch_index"],
                "ligand_name": child["input"]["ligand_name"],
                "ligand_smiles": child["input"]["ligand_smiles"],
                "status": child["status"],
                **fields,
                "error_code": error.get("code"),
                "error_message": error.get("message"),
            }
        )
    ranked = rank_rows(rows, rank_by, direction)
    counts = {s.value: sum(1 for r in rows if r["status"] == s.value) for s in JobStatus}
    columns = _BASE_COLUMNS + [c for c in score_columns if c not in _BASE_COLUMNS] + ["error_code", "error_message"]
    directory = store.batch_dir(batch_id)
    document = {
        "batch_id": batch_id,
        "batch_name": parent["name"],
        "predictor": parent["predictor"],
        "status": parent["status"],
        "rank_by": rank_by,
        "direction": direction,
        "counts": counts,
        "columns": columns,
        "results": ranked,
    }
    store.write_json(f"{directory}/batch_results.json", document)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(ranked)
    store.write_bytes(f"{directory}/batch_results.csv", buffer.getvalue().encode())
    summary = {
        "rank_by": rank_by,
        "direction": direction,
        "counts": counts,
        "top": [
            {k: r.get(k) for k in ("rank", "job_id", "ligand_name", "ligand_smiles", rank_by)}
            for r in ranked[:10]
            if r["rank"] is not None
        ],
        "files": ["batch_results.json", "batch_results.csv"],
    }
    manager.mark_aggregated(batch_id, summary)
    return summary
