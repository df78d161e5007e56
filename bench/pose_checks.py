"""Pose checks (PoseBusters) and interactions (ProLIF) against the Vina docking they follow: the
demo's ten drugs docked into 1IEP (Abl kinase, crystal-ligand box), each pose then checked exactly
as the worker does.

    .venv/bin/python bench/pose_checks.py [--exhaustiveness 8]

Prints per-ligand docking seconds, check seconds, whether the pose passed and its hinge contact,
then the ratio (goal: the checks < 10 % of a Vina job at exhaustiveness 8) and the PB-valid rate;
writes bench/results/pose_checks.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from importlib.resources import files
from pathlib import Path

from omtx_hub.domain import Ligand, Target
from omtx_hub.ligand_files import read_ligands
from omtx_hub.pose_checks import check_job_pose
from omtx_hub.predictors.base import PredictionTask
from omtx_hub.predictors.vina import VinaPredictor
from omtx_hub.targets import prepare_target_files

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(str(files("omtx_hub.demo")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exhaustiveness", type=int, default=8)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "pose_checks.json")
    args = parser.parse_args()
    site = {"mode": "box", "center": [15.190, 53.903, 16.917], "size": [20.0, 20.0, 20.0]}
    prepared = prepare_target_files(
        (DATA / "1iep" / "1iep_receptorH.pdb").read_bytes(),
        "1iep.pdb",
        site,
        (DATA / "1iep" / "1iep_ligand.sdf").read_bytes(),
        "ref.sdf",
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "receptor.pdb").write_bytes(prepared.receptor_pdb)
        (work / "reference_ligand.sdf").write_bytes(prepared.reference_ligand_sdf or b"")
        target_files = {"receptor.pdb": work / "receptor.pdb", "reference_ligand.sdf": work / "reference_ligand.sdf"}
        target = Target(
            key="1iep",
            protein_sequence=prepared.protein_sequence,
            extra={"box": {"center": prepared.site["center"], "size": prepared.site["size"]}},
            files=target_files,
        )
        predictor = VinaPredictor(cpu=0)
        artifacts = predictor.prepare_target(target, work)
        for name, smiles in read_ligands(DATA / "ligands.csv"):
            task = PredictionTask(
                job_id=name, ligand=Ligand(name, smiles), params={"exhaustiveness": args.exhaustiveness}
            )
            started = time.perf_counter()
            (outcome,) = predictor.predict(target, artifacts, [task], work, lambda _: False)
            docking = time.perf_counter() - started
            assert outcome.results is not None, outcome.error
            report = check_job_pose(outcome.files.__getitem__, outcome.files, smiles, target_files)
            assert report is not None and "pose_checks_error" not in report.results, report
            r = report.results
            rows.append(
                {
                    "ligand": name,
                    "vina_score_kcal_mol": outcome.results["vina_score_kcal_mol"],
                    "docking_seconds": round(docking, 2),
                    "pose_checks_seconds": r["pose_checks_seconds"],
                    "pose_checks_passed": r["pose_checks_passed"],
                    "pose_checks_failed": r["pose_checks_failed"],
                    "hinge_met318_hbond": "A:MET318:HB" in r.get("interactions", ""),
                }
            )
            print(
                f"{name:14s} {rows[-1]['vina_score_kcal_mol']:7.2f} kcal/mol  dock {docking:6.1f} s  "
                f"checks {r['pose_checks_seconds']:5.2f} s  passed {r['pose_checks_passed']!s:5}  "
                f"hinge {rows[-1]['hinge_met318_hbond']!s:5}  failed {', '.join(r['pose_checks_failed']) or '-'}"
            )
    # the first check in a process pays the imports (PoseBusters, ProLIF, MDAnalysis): reported apart
    steady = [r["pose_checks_seconds"] for r in rows[1:]]
    docking_median = statistics.median(r["docking_seconds"] for r in rows)
    summary = {
        "exhaustiveness": args.exhaustiveness,
        "ligands": len(rows),
        "first_check_seconds": rows[0]["pose_checks_seconds"],
        "median_check_seconds": statistics.median(steady),
        "median_docking_seconds": docking_median,
        "check_fraction_of_docking": round(statistics.median(steady) / docking_median, 4),
        "pb_valid_rate": sum(r["pose_checks_passed"] for r in rows) / len(rows),
        "hinge_hbond_rate": sum(r["hinge_met318_hbond"] for r in rows) / len(rows),
    }
    print(json.dumps(summary, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "ligands": rows}, indent=1))


if __name__ == "__main__":
    main()
