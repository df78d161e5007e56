"""Rows and ranking: one flat row per ligand, ranked in two passes.

A row holds the ligand (name, SMILES, properties), its status and error, every scalar result of
the predictor under the predictor's own field names, and its measured cost. Pass 1
(:func:`plan_rows`) reads the children once and keeps only what ordering needs (index, sort value,
which columns exist); pass 2 (:func:`stream_rows`) reads them again in that order, a few hundred at
a time, so a 100,000-ligand export never holds every row.

A request for the best N by the predictor's primary score (the batch page, ``top=N`` exports, the
top of the statistics, a rescoring funnel) skips pass 1: :func:`indexed_ranking` reads those N from
the ``score`` column's index, and their duplicates from the ``inchikey`` index, so it costs the same
at a million children as at a hundred.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from omtx_hub.domain import JobStatus
from omtx_hub.interactions import Requirement, parse_requirements
from omtx_hub.ligands import PROPERTY_FIELDS
from omtx_hub.queue import QueueManager

__all__ = [
    "BASE_COLUMNS",
    "COST_COLUMNS",
    "TAIL_COLUMNS",
    "Ranking",
    "RankingRules",
    "indexed_ranking",
    "number",
    "plan_rows",
    "row_of",
    "scalars",
    "stream_rows",
]


BASE_COLUMNS = ["rank", "job_id", "batch_index", "ligand_name", "ligand_smiles", "status"]
COST_COLUMNS = ["wall_seconds", "accelerator_seconds", "cost"]
TAIL_COLUMNS = ["duplicate_of", "error_code", "error_message"]
_PAGE = 500


def number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return float(value)


def scalars(results: dict[str, Any] | None) -> dict[str, Any]:
    """The results that are one cell each: numbers, text, booleans, and lists of names (joined with
    ``; ``, as the PoseBusters checks a pose failed); lists of numbers (every pose's score) are not."""
    cells: dict[str, Any] = {}
    for key, value in (results or {}).items():
        if isinstance(value, (int, float, str, bool)) or value is None:
            cells[key] = value
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            cells[key] = "; ".join(value)
    return cells


def _property_cells(props: dict[str, Any] | None) -> dict[str, Any]:
    cells: dict[str, Any] = {}
    for name in PROPERTY_FIELDS:
        value = (props or {}).get(name)
        cells[name] = "; ".join(value) if isinstance(value, list) else value
    return cells


def row_of(child: dict[str, Any], price_per_hour: float) -> dict[str, Any]:
    """The flat row of one child (no rank)."""
    error = child["error"] or {}
    accel = child["accelerator_seconds"]
    return {
        "job_id": child["job_id"],
        "batch_index": child["batch_index"],
        "ligand_name": child["input"]["ligand_name"],
        "ligand_smiles": child["input"]["ligand_smiles"],
        "status": child["status"],
        **_property_cells(child["input"].get("properties")),
        **scalars(child["results"]),
        "wall_seconds": child["wall_seconds"],
        "accelerator_seconds": accel,
        "cost": round(accel / 3600 * price_per_hour, 6) if accel is not None and price_per_hour else None,
        "error_code": error.get("code"),
        "error_message": error.get("message"),
    }


@dataclass
class Ranking:
    """Pass 1: the order of the rows, their ranks, the columns that exist, duplicates by InChIKey."""

    order: list[int]
    ranks: dict[int, int]
    columns: list[str]
    duplicates: dict[int, str] = field(default_factory=dict)
    sort_key: str = ""
    direction: str = "asc"
    result_columns: list[str] = field(default_factory=list)  # the predictor's own fields among ``columns``
    rules: RankingRules = field(default_factory=lambda: RankingRules())


@dataclass(frozen=True)
class RankingRules:
    """What a pose must show to be ranked: every required interaction, and with ``pose_checks``
    ``"require"``, passed PoseBusters checks. A completed ligand that does not is listed after the
    ranked ones, without a rank."""

    required_interactions: tuple[Requirement, ...] = ()
    pose_checks: str = "any"  # or "require"

    def admit(self, results: dict[str, Any]) -> bool:
        if self.pose_checks == "require" and results.get("pose_checks_passed") is not True:
            return False
        if not self.required_interactions:
            return True
        contacts = set(str(results.get("interactions") or "").split(", "))
        return all(req.met_by(contacts) for req in self.required_interactions)

    @classmethod
    def of_batch(cls, parent: dict[str, Any]) -> RankingRules:
        """The rules the batch was submitted with (none: every scored ligand is ranked)."""
        stored = (parent.get("input") or {}).get("ranking") or {}
        required = tuple(parse_requirements(stored.get("required_interactions") or []))
        return cls(required, stored.get("pose_checks") or "any")

    def as_document(self) -> dict[str, Any]:
        return {"required_interactions": [str(r) for r in self.required_interactions], "pose_checks": self.pose_checks}


def plan_rows(
    manager: QueueManager,
    batch_id: str,
    *,
    sort_key: str,
    direction: str,
    status: str | None = None,
    top: int | None = None,
    observe: Callable[[dict[str, Any]], None] | None = None,
    rules: RankingRules | None = None,
) -> Ranking:
    """Read the children once; rank completed ones with a value of ``sort_key`` (best first), then the rest.

    ``observe`` is shown every child as it is read (its batch_index, status, input and results), so
    a caller that needs more than the ranking (statistics) does not read the batch a second time."""
    scored: list[tuple[float, int]] = []
    rest: list[int] = []
    result_columns: dict[str, None] = {sort_key: None}
    first_by_key: dict[str, str] = {}
    duplicates: dict[int, str] = {}
    for child in manager.iter_children(batch_id, columns=("batch_index", "status", "input", "results")):
        if observe is not None:
            observe(child)
        index = child["batch_index"]
        props = child["input"].get("properties") or {}
        key = props.get("inchikey")
        if key:
            if key in first_by_key:
                duplicates[index] = first_by_key[key]
            else:
                first_by_key[key] = child["input"]["ligand_name"]
        if status is not None and child["status"] != status:
            continue
        results = child["results"] or {}
        result_columns.update(dict.fromkeys(k for k, v in scalars(results).items()))
        value = number(results.get(sort_key))
        if value is None and sort_key in PROPERTY_FIELDS:
            value = number(props.get(sort_key))
        admitted = rules is None or rules.admit(results)
        if child["status"] == JobStatus.COMPLETED.value and value is not None and admitted:
            scored.append((value if direction == "asc" else -value, index))
        else:
            rest.append(index)
    scored.sort()
    ranks = {index: position for position, (_, index) in enumerate(scored, start=1)}
    order = [index for _, index in scored] + rest
    if top is not None:
        order = order[:top]
    results_only = [c for c in result_columns if c not in PROPERTY_FIELDS and c not in BASE_COLUMNS]
    columns = BASE_COLUMNS + results_only + list(PROPERTY_FIELDS) + COST_COLUMNS + TAIL_COLUMNS
    return Ranking(order, ranks, columns, duplicates, sort_key, direction, results_only, rules or RankingRules())


def indexed_ranking(
    manager: QueueManager,
    batch_id: str,
    *,
    predictor: str,
    sort_key: str,
    direction: str,
    top: int | None,
    status: str | None = None,
    rules: RankingRules | None = None,
) -> Ranking | None:
    """The best ``top`` rows as :func:`plan_rows` ranks them, read from the score index; None when
    the index cannot answer (no ``top``, another sort key, a status other than completed, or
    ranking rules that need each pose's results), and the caller plans the rows instead.

    The one difference: the columns are those of the rows returned (plan_rows lists a field that
    any child of the batch has)."""
    if top is None or status not in (None, JobStatus.COMPLETED.value) or manager.score_field(predictor) != sort_key:
        return None
    if rules is not None and rules != RankingRules():
        return None
    wanted = ("batch_index", "name", "input", "results")
    rows = manager.ranked_children(batch_id, direction=direction, limit=top, columns=wanted)
    ranks = {row["batch_index"]: position for position, row in enumerate(rows, start=1)}
    if len(rows) < top:  # fewer scored than asked: then the others in index order, as plan_rows lists them
        rows += manager.unscored_children(batch_id, status=status, limit=top - len(rows), columns=wanted)
    result_columns: dict[str, None] = {sort_key: None}
    for row in rows:
        result_columns.update(dict.fromkeys(scalars(row["results"])))
    keys = {row["batch_index"]: (row["input"].get("properties") or {}).get("inchikey") for row in rows}
    first = manager.first_by_inchikey(batch_id, [key for key in keys.values() if key])
    duplicates = {index: first[key][1] for index, key in keys.items() if key in first and first[key][0] != index}
    results_only = [c for c in result_columns if c not in PROPERTY_FIELDS and c not in BASE_COLUMNS]
    columns = BASE_COLUMNS + results_only + list(PROPERTY_FIELDS) + COST_COLUMNS + TAIL_COLUMNS
    order = [row["batch_index"] for row in rows]
    return Ranking(order, ranks, columns, duplicates, sort_key, direction, results_only, rules or RankingRules())


def stream_rows(
    manager: QueueManager, batch_id: str, ranking: Ranking, price_per_hour: float
) -> Iterator[dict[str, Any]]:
    """Pass 2: the rows in ranking order, read a page at a time."""
    for start in range(0, len(ranking.order), _PAGE):
        wanted = ranking.order[start : start + _PAGE]
        found = {c["batch_index"]: c for c in manager.children_by_index(batch_id, wanted)}
        for index in wanted:
            child = found.get(index)
            if child is None:
                continue  # pruned in between
            row = row_of(child, price_per_hour)
            row["rank"] = ranking.ranks.get(index)
            row["duplicate_of"] = ranking.duplicates.get(index)
            yield row
