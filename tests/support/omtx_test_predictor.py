"""The test predictor: deterministic, with configurable delay and failures. Lives under tests/ only.

It is registered for tests through the ``OMTX_PREDICTOR_PLUGINS`` setting
(``{"test": "omtx_test_predictor:make_test_predictor"}``), exactly like a user's own plugin.

Params: ``delay_seconds`` (sleep per ligand, checking should_stop), ``delay_max_seconds`` (an extra
sleep between 0 and this, fixed per job id), ``fail`` = "permanent" |
"transient" (every attempt fails that way), ``fail_once_dir`` (the first attempt of each job fails
transiently, remembered by a marker file in that folder).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from rdkit import Chem

from omtx_hub.domain import Target
from omtx_hub.errors import PermanentPredictionError, TransientPredictionError
from omtx_hub.predictors.base import Outcome, PredictionTask, TargetArtifacts

KNOWN_PARAMS = {"delay_seconds", "delay_max_seconds", "fail", "fail_once_dir"}


class TestPredictor:
    __test__ = False  # not a pytest class

    name = "test"
    primary_score = "test_score"
    score_direction: Literal["asc", "desc"] = "asc"

    def __init__(self) -> None:
        self.prepared: list[str] = []

    def prepare_target(self, target: Target, workdir: Path) -> TargetArtifacts:
        self.prepared.append(target.key)
        (workdir / "target.json").write_text(json.dumps({"length": len(target.protein_sequence)}))
        return TargetArtifacts(directory=workdir, data={"length": len(target.protein_sequence)})

    def predict(
        self,
        target: Target,
        artifacts: TargetArtifacts,
        tasks: Sequence[PredictionTask],
        workdir: Path,
        should_stop: Callable[[str], bool],
    ) -> Iterator[Outcome]:
        for task in tasks:
            unknown = set(task.params) - KNOWN_PARAMS
            if unknown:
                yield Outcome(
                    task.job_id,
                    error=PermanentPredictionError(
                        f"unknown parameters: {', '.join(sorted(unknown))}", code="invalid_params"
                    ),
                )
                continue
            delay = float(task.params.get("delay_seconds", 0))
            if task.params.get("delay_max_seconds"):
                fraction = int(hashlib.sha256(task.job_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
                delay += fraction * float(task.params["delay_max_seconds"])
            end = time.monotonic() + delay
            while time.monotonic() < end:
                if should_stop(task.job_id):
                    return
                time.sleep(min(0.02, max(0.0, end - time.monotonic())))
            if should_stop(task.job_id):
                return
            yield self._one(task, artifacts)

    def _one(self, task: PredictionTask, artifacts: TargetArtifacts) -> Outcome:
        fail = task.params.get("fail")
        if fail == "permanent":
            return Outcome(task.job_id, error=PermanentPredictionError("told to fail", code="test_permanent"))
        if fail == "transient":
            return Outcome(task.job_id, error=TransientPredictionError("told to fail", code="test_transient"))
        marker_dir = task.params.get("fail_once_dir")
        if marker_dir:
            marker = Path(marker_dir) / task.job_id
            if not marker.exists():
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.write_text("failed once")
                return Outcome(task.job_id, error=TransientPredictionError("first attempt fails", code="test_once"))
        mol = Chem.MolFromSmiles(task.ligand.smiles)
        heavy = mol.GetNumHeavyAtoms()
        jitter = int(hashlib.sha256(task.ligand.smiles.encode()).hexdigest()[:6], 16) / 0xFFFFFF
        results: dict[str, Any] = {
            "test_score": round(-0.3 * heavy - jitter, 4),
            "heavy_atoms": heavy,
            "target_length": artifacts.data["length"],
        }
        structure = f"data_test\n# test predictor output for {task.ligand.name}\n".encode()
        return Outcome(task.job_id, results=results, files={"structure.cif": structure}, accelerator_seconds=0.0)


def make_test_predictor(settings: Any = None) -> TestPredictor:
    return TestPredictor()
