"""Redocking imatinib into 1IEP (crystal-ligand box) over several seeds: score and RMSD to the crystal.

    .venv/bin/python bench/vina_redock.py [--seeds 1,2,3,4,5,42] [--exhaustiveness 8]

Prints a table and writes bench/results/vina_redock.json. The test suite checks seed 42.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from importlib.resources import files
from pathlib import Path

from omtx_hub.domain import Ligand, Target
from omtx_hub.predictors.base import PredictionTask
from omtx_hub.predictors.vina import VinaPredictor
from omtx_hub.targets import prepare_target_files

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(str(files("omtx_hub.demo"))) / "1iep"
IMATINIB = "Cc1ccc(NC(=O)c2ccc(CN3CCN(C)CC3)cc2)cc1Nc1nccc(-c2cccnc2)n1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,2,3,4,5,42")
    parser.add_argument("--exhaustiveness", type=int, default=8)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "vina_redock.json")
    args = parser.parse_args()
    site = {"mode": "box", "center": [15.190, 53.903, 16.917], "size": [20.0, 20.0, 20.0]}
    prepared = prepare_target_files(
        (DATA / "1iep_receptorH.pdb").read_bytes(), "1iep.pdb", site, (DATA / "1iep_ligand.sdf").read_bytes(), "ref.sdf"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "receptor.pdb").write_bytes(prepared.receptor_pdb)
        (work / "reference_ligand.sdf").write_bytes(prepared.reference_ligand_sdf or b"")
        target = Target(
            key="1iep",
            protein_sequence=prepared.protein_sequence,
            extra={"box": {"center": prepared.site["center"], "size": prepared.site["size"]}},
            files={"receptor.pdb": work / "receptor.pdb", "reference_ligand.sdf": work / "reference_ligand.sdf"},
        )
        predictor = VinaPredictor(cpu=0)
        artifacts = predictor.prepare_target(target, work)
        for seed in (int(s) for s in args.seeds.split(",")):
            task = PredictionTask(
                job_id=f"seed{seed}",
                ligand=Ligand("imatinib", IMATINIB),
                params={"exhaustiveness": args.exhaustiveness, "seed": seed},
            )
            (outcome,) = predictor.predict(target, artifacts, [task], work, lambda _: False)
            assert outcome.results is not None, outcome.error
            r = outcome.results
            rows.append(
                {
                    "seed": seed,
                    "vina_score_kcal_mol": r["vina_score_kcal_mol"],
                    "rmsd_to_reference_angstrom": r["rmsd_to_reference_angstrom"],
                    "docking_seconds": r["docking_seconds"],
                }
            )
            print(
                f"seed {seed:>4}  {r['vina_score_kcal_mol']:8.3f} kcal/mol  RMSD {r['rmsd_to_reference_angstrom']:6.3f} Å"
                f"  {r['docking_seconds']:6.1f} s"
            )
    success = sum(1 for r in rows if r["rmsd_to_reference_angstrom"] < 2.0)
    print(
        f"top pose within 2 Å of the crystal pose: {success}/{len(rows)} seeds (exhaustiveness {args.exhaustiveness})"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"exhaustiveness": args.exhaustiveness, "runs": rows, "success_under_2A": success}, indent=2)
    )


if __name__ == "__main__":
    main()
