"""Boltz-2 featurisation on the CPU, per ligand, for the demo target as plain, with cofactors, with
its structure as a template, and as a homodimer with cofactors; and the tokens of each complex (what
GPU time and memory grow with), so a GPU run can be sized from them.

    .venv/bin/python bench/boltz_features.py [--ligands 10]

Every job goes through the hub's own submission checks and the predictor's own featurisation
(boltz's ``process_input``: YAML parsing, conformers, template parsing) and then boltz's featurizer
(the inference data module, as in the structure pass). The model does not run: the tiny
random-weight fixtures only satisfy the predictor's start-up check. Prints one line per
configuration and writes bench/results/boltz_features.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from importlib.resources import files
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(str(files("omtx_hub.demo")))
sys.path.insert(0, str(ROOT / "tests" / "support"))
os.environ.setdefault("OMP_NUM_THREADS", "1")

CONFIGS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    # name, target (receptor: the demo's 1IEP, or a sequence target), params
    ("1IEP", {"receptor": True}, {}),
    ("1IEP + ATP + MG", {"receptor": True, "cofactors": ["ATP", "MG"]}, {}),
    ("1IEP, template on", {"receptor": True}, {"template": "on"}),
    ("1IEP + ATP + MG, template on", {"receptor": True, "cofactors": ["ATP", "MG"]}, {"template": "on"}),
    ("1IEP chain ×2 + ATP + MG", {"copies": 2, "cofactors": ["ATP", "MG"]}, {}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ligands", type=int, default=10, help="demo ligands per configuration (at most 10)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "boltz_features.json")
    args = parser.parse_args()

    from boltz_fixtures import build_cache, structure_features
    from omtx_hub.domain import Ligand, Target
    from omtx_hub.hub import open_hub
    from omtx_hub.ligand_files import read_ligands
    from omtx_hub.predictors.base import PredictionTask
    from omtx_hub.predictors.boltz2 import Boltz2Predictor, _Dirs
    from omtx_hub.predictors.boltz2_spec import Boltz2Params
    from omtx_hub.settings import Settings
    from omtx_hub.submission import build_job_submission

    cache = build_cache(ROOT / ".cache" / "boltz-tiny", size="tiny", extra_codes=["BEN", "ATP", "MG", "HEM", "ZN"])
    ligands = read_ligands(DATA / "ligands.csv")[: args.ligands]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        settings = Settings(
            home=work / "home",
            database_url=f"sqlite:///{work / 'hub.db'}",
            storage_url=str(work / "results"),
            boltz_cache=cache,
            boltz_cpu_threads=1,
        )
        hub = open_hub(settings)
        predictor = Boltz2Predictor(settings)
        predictor._ensure_loaded()  # the canonical molecules the featurisation reads
        receptor = (DATA / "1iep" / "1iep_receptorH.pdb").read_bytes()
        site = {"mode": "ligand", "padding": 5}
        reference = (DATA / "1iep" / "1iep_ligand.sdf").read_bytes()
        for number, (name, shape, params) in enumerate(CONFIGS):
            if shape.get("receptor"):
                record = hub.create_target(
                    owner="bench",
                    name=name,
                    receptor=receptor,
                    receptor_filename="1iep.pdb",
                    site=site,
                    reference_ligand=reference,
                    cofactors=shape.get("cofactors"),
                )
            else:
                sequence = hub.targets.get(rows[0]["target_id"])["protein_sequence"]
                record = hub.create_target(
                    owner="bench",
                    name=name,
                    chains=[{"id": "A", "sequence": sequence, "copies": shape["copies"]}],
                    cofactors=shape.get("cofactors"),
                )
            folder = work / f"config{number}"
            local_files = {}
            for file_name, stored in record["files"].items():
                (folder / "files").mkdir(parents=True, exist_ok=True)
                (folder / "files" / file_name).write_bytes(hub.store.read_bytes(stored))
                local_files[file_name] = folder / "files" / file_name
            process, featurise, tokens = [], [], []
            # the very first featurisation pays for imports and caches: run it once untimed
            order = [ligands[0], *ligands] if number == 0 else ligands
            for index, (ligand_name, smiles) in enumerate(order):
                warm_up = number == 0 and index == 0
                sub = build_job_submission(
                    settings,
                    owner="bench",
                    protein_sequence=None,
                    target=record,
                    ligand_smiles=smiles,
                    ligand_name=ligand_name,
                    predictor="boltz2",
                    params=params,
                )
                target = Target(key="k", protein_sequence=sub.protein_sequence, extra=sub.target, files=local_files)
                (folder / "target").mkdir(parents=True, exist_ok=True)
                artifacts = predictor.prepare_target(target, folder / "target")
                dirs = _Dirs(folder / f"run{index}")
                task = PredictionTask(ligand_name, Ligand(ligand_name, smiles), sub.params)
                started = time.perf_counter()
                problem = predictor._featurise("r0", target, artifacts, task, Boltz2Params(**sub.params), dirs)
                process.append(time.perf_counter() - started)
                if problem:
                    raise SystemExit(f"{name}, {ligand_name}: {problem}")
                started = time.perf_counter()
                features = structure_features(dirs, cache / "mols")
                featurise.append(time.perf_counter() - started)
                tokens.append(int(features["token_pad_mask"].sum()))
                if warm_up:
                    process.pop(), featurise.pop(), tokens.pop()
            row = {
                "config": name,
                "target_id": record["target_id"],
                "ligands": len(ligands),
                "process_input_s_median": round(statistics.median(process), 3),
                "featurizer_s_median": round(statistics.median(featurise), 3),
                "total_s_median": round(statistics.median(p + f for p, f in zip(process, featurise, strict=True)), 3),
                "tokens_imatinib": tokens[0],
                "tokens_min": min(tokens),
                "tokens_max": max(tokens),
                "pocket_residues": len(sub.target.get("pocket") or []),
            }
            rows.append(row)
            print(
                f"{name:32s} process_input {row['process_input_s_median']:6.3f} s  featurizer "
                f"{row['featurizer_s_median']:6.3f} s  per ligand (median of {len(ligands)}); tokens "
                f"{row['tokens_min']}–{row['tokens_max']} (imatinib {row['tokens_imatinib']})",
                flush=True,
            )
        hub.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"cpu_count": os.cpu_count(), "rows": rows}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
