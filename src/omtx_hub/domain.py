"""Job types, statuses and the small value objects passed between the queue, workers and predictors."""

from __future__ import annotations

import enum
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ACTIVE",
    "TERMINAL",
    "ClaimedJob",
    "JobStatus",
    "JobType",
    "Ligand",
    "Target",
    "number",
    "scalar_results",
    "target_key_for",
]


class JobType(str, enum.Enum):
    INDIVIDUAL = "INDIVIDUAL"
    BATCH_PARENT = "BATCH_PARENT"
    BATCH_CHILD = "BATCH_CHILD"


class JobStatus(str, enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE = frozenset({JobStatus.PENDING.value, JobStatus.RUNNING.value})
TERMINAL = frozenset({JobStatus.COMPLETED.value, JobStatus.FAILED.value, JobStatus.CANCELLED.value})


@dataclass(frozen=True)
class Ligand:
    name: str
    smiles: str


@dataclass(frozen=True)
class Target:
    """What a predictor works against. One target_key groups every job that can share per-target work."""

    key: str
    protein_sequence: str
    extra: dict[str, Any] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)  # local copies, filled in by the worker


def target_key_for(predictor: str, protein_sequence: str, extra: dict[str, Any] | None = None) -> str:
    blob = json.dumps(
        {"predictor": predictor, "protein_sequence": protein_sequence, "extra": extra or {}},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class ClaimedJob:
    """A job as a worker holds it: enough to run it and to finish it under its lease."""

    job_id: str
    attempt: int
    max_attempts: int
    predictor: str
    params: dict[str, Any]
    target_key: str
    input: dict[str, Any]
    batch_parent_id: str | None
    batch_index: int | None
    owner: str = ""

    @property
    def ligand(self) -> Ligand:
        return Ligand(name=self.input["ligand_name"], smiles=self.input["ligand_smiles"])

    @property
    def target(self) -> Target:
        return Target(
            key=self.target_key,
            protein_sequence=self.input["protein_sequence"],
            extra=self.input.get("target", {}),
        )


def number(value: Any) -> float | None:
    """A result value as a float, None when it is not a number (text, a boolean, NaN, missing)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return float(value)


def scalar_results(results: dict[str, Any] | None) -> dict[str, Any]:
    """The results that are one table cell each: numbers, text, booleans, and lists of names (joined
    with ``; ``, as the PoseBusters checks a pose failed); lists of numbers (every pose's score) are not."""
    cells: dict[str, Any] = {}
    for key, value in (results or {}).items():
        if isinstance(value, (int, float, str, bool)) or value is None:
            cells[key] = value
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            cells[key] = "; ".join(value)
    return cells
