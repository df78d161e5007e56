"""The predictor interface (DESIGN.md §7).

A predictor knows nothing of the queue, the database or HTTP. The worker calls
``prepare_target`` once per target (the result is kept while the worker lives) and then
``predict`` with a micro-batch of tasks of that target; ``predict`` yields one ``Outcome`` per task
as soon as it is known, and checks ``should_stop(job_id)`` between stages so that a cancelled job
ends early.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from omtx_hub.domain import Ligand, Target
from omtx_hub.errors import PredictionError

__all__ = ["Outcome", "PredictionTask", "Predictor", "TargetArtifacts"]


@dataclass(frozen=True)
class PredictionTask:
    job_id: str
    ligand: Ligand
    params: dict[str, Any]


@dataclass
class TargetArtifacts:
    """What ``prepare_target`` produced: files in ``directory`` and anything else the predictor keeps."""

    directory: Path
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    """The result of one task: ``results`` (small JSON fields) and ``files``, or an ``error``."""

    job_id: str
    results: dict[str, Any] | None = None
    files: dict[str, bytes] = field(default_factory=dict)
    error: PredictionError | None = None
    accelerator_seconds: float | None = None
    model_input: dict[str, Any] | None = None  # exactly what the model was given, kept in the job's input.json


@runtime_checkable
class Predictor(Protocol):
    name: str
    primary_score: str
    score_direction: Literal["asc", "desc"]

    def prepare_target(self, target: Target, workdir: Path) -> TargetArtifacts: ...

    def predict(
        self,
        target: Target,
        artifacts: TargetArtifacts,
        tasks: Sequence[PredictionTask],
        workdir: Path,
        should_stop: Callable[[str], bool],
    ) -> Iterator[Outcome]: ...
