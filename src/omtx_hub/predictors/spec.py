"""How a predictor declares itself without being imported: its parameters (a pydantic model) and its
result fields (name, unit, meaning, and which one is the primary score and in which direction).

Declarations are pure data (pydantic only), so the API, the web UI, the CLI and the exports read
them on a machine where the predictor's own packages are not installed. The catalog
(:mod:`omtx_hub.predictors.catalog`) lists the shipped ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

__all__ = ["PredictorSpec", "ResultField"]


@dataclass(frozen=True)
class ResultField:
    """One field of a job's ``results``."""

    name: str
    meaning: str
    unit: str | None = None
    direction: Literal["asc", "desc"] | None = None  # a score: which way is better (asc: lower is better)
    label: str | None = None  # a short column heading where tables show it beside the primary score
    kind: Literal["number", "text", "bool", "list"] = "number"  # lists of numbers are not export columns


@dataclass(frozen=True)
class PredictorSpec:
    name: str
    params: type[BaseModel]
    fields: tuple[ResultField, ...]
    primary: str  # the field a batch is ranked by unless the caller says otherwise
    pose_file: str | None = None  # the file holding the best pose: its jobs get the pose checks

    def __post_init__(self) -> None:
        primary = self.field(self.primary)
        if primary is None or primary.direction is None:
            raise ValueError(
                f"{self.name}: the primary score {self.primary!r} must be a declared field with a direction"
            )

    def field(self, name: str) -> ResultField | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def sortable(self) -> tuple[str, ...]:
        """The other scores (fields with a direction): kept indexed beside the primary, so that a
        batch's best by any of them are read from an index (``job_scores``)."""
        return tuple(f.name for f in self.fields if f.direction is not None and f.name != self.primary)

    @property
    def primary_field(self) -> ResultField:
        found = self.field(self.primary)
        assert found is not None  # checked in __post_init__
        return found
