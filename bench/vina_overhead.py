"""Vina through the hub vs a bare script calling the vina package: the hub's overhead per ligand.

Both arms dock the same 5 ligands into the bundled 1IEP target (crystal-ligand box, exhaustiveness
8, seed 42, all cores, ligands docked as given: no protonation step in either arm), doing the same
work: receptor cleaning with gemmi and preparation with Meeko once, Vina maps once, then per ligand RDKit 3D embedding +
MMFF, Meeko PDBQT, docking, poses written out. The hub arm goes through submission (validation and
one transaction), the worker (claim, target preparation, predictor), the result store (SDF, mmCIF,
PDBQT, JSON) and the guarded completion. Arms alternate for two rounds in one run.

    .venv/bin/python bench/vina_overhead.py [--rounds 2] [--exhaustiveness 8]

Prints a table and writes bench/results/vina_overhead.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import tempfile
import threading
import time
from importlib.resources import files
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(str(files("omtx_hub.demo"))) / "1iep"
CENTER, SIZE = [15.190, 53.903, 16.917], [20.0, 20.0, 20.0]
LIGANDS = [
    ("aspirin", "CC(=O)Oc1ccccc1C(=O)O"),
    ("ibuprofen", "CC(C)Cc1ccc(cc1)C(C)C(=O)O"),
    ("paracetamol", "CC(=O)Nc1ccc(O)cc1"),
    ("caffeine", "Cn1cnc2c1c(=O)n(C)c(=O)n2C"),
    ("gefitinib", "COc1cc2ncnc(Nc3ccc(F)c(Cl)c3)c2cc1OCCCN1CCOCC1"),
]
SEED = 42


def bare(exhaustiveness: int, out: Path) -> dict[str, Any]:
    """The reference: the vina, meeko and rdkit packages called directly, nothing else."""
    import gemmi
    from meeko import MoleculePreparation, PDBQTWriterLegacy, Polymer, ResidueChemTemplates
    from rdkit import Chem
    from rdkit.Chem import AllChem
    from vina import Vina

    started = time.perf_counter()
    structure = gemmi.read_structure(str(DATA / "1iep_receptorH.pdb"))
    structure.setup_entities()
    structure.remove_ligands_and_waters()
    structure.remove_hydrogens()
    structure.remove_alternative_conformations()
    polymer = Polymer.from_pdb_string(
        structure.make_pdb_string(),
        ResidueChemTemplates.create_from_defaults(),
        MoleculePreparation(),
        allow_bad_res=True,
        default_altloc="A",
    )
    rigid, _ = PDBQTWriterLegacy.write_from_polymer(polymer)
    receptor = out / "receptor.pdbqt"
    receptor.write_text(rigid)
    engine = Vina(sf_name="vina", cpu=0, seed=SEED, verbosity=0)
    engine.set_receptor(str(receptor))
    engine.compute_vina_maps(center=CENTER, box_size=SIZE)
    scores = {}
    for name, smiles in LIGANDS:
        mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
        params = AllChem.ETKDGv3()
        params.randomSeed = SEED
        AllChem.EmbedMolecule(mol, params)
        AllChem.MMFFOptimizeMolecule(mol, maxIters=2000)
        pdbqt, _, _ = PDBQTWriterLegacy.write_string(MoleculePreparation().prepare(mol)[0])
        engine.set_ligand_from_string(pdbqt)
        engine.dock(exhaustiveness=exhaustiveness, n_poses=20)
        scores[name] = round(float(engine.energies(n_poses=9)[0][0]), 3)
        (out / f"{name}.pdbqt").write_text(engine.poses(n_poses=9))
    return {"seconds": time.perf_counter() - started, "scores": scores}


def through_hub(exhaustiveness: int, out: Path) -> dict[str, Any]:
    from omtx_hub.hub import open_hub
    from omtx_hub.predictors.vina import VinaPredictor
    from omtx_hub.settings import Settings
    from omtx_hub.submission import build_batch_submission
    from omtx_hub.worker import Worker

    settings = Settings(home=out, default_predictor="vina", vina_cpu=0)
    hub = open_hub(settings)
    target = hub.create_target(
        owner="local",
        name="1iep",
        receptor=(DATA / "1iep_receptorH.pdb").read_bytes(),
        receptor_filename="1iep.pdb",
        site={"mode": "box", "center": CENTER, "size": SIZE},
    )
    predictor = VinaPredictor(cpu=0)
    worker = Worker(settings, hub.manager, hub.store, {"vina": predictor})
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    time.sleep(1.0)  # the worker is up and polling, as a running hub's worker would be
    started = time.perf_counter()
    sub = build_batch_submission(
        settings,
        owner="local",
        target=target,
        batch_name="bench",
        protein_sequence=None,
        ligands=LIGANDS,
        params={"exhaustiveness": exhaustiveness, "seed": SEED, "protonate": False},
    )
    batch_id = hub.manager.submit_batch(sub).record["job_id"]
    while hub.manager.get(batch_id)["aggregated_at"] is None:
        time.sleep(0.02)
    seconds = time.perf_counter() - started
    worker.stop(grace_seconds=5)
    thread.join(timeout=30)
    children = list(hub.manager.iter_children(batch_id))
    assert all(c["status"] == "completed" for c in children), [c["error"] for c in children]
    scores = {c["input"]["ligand_name"]: c["results"]["vina_score_kcal_mol"] for c in children}
    hub.close()
    return {
        "seconds": seconds,
        "scores": scores,
        "maps_computed": predictor.maps_computed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--exhaustiveness", type=int, default=8)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "vina_overhead.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    runs: list[dict[str, Any]] = []
    for round_ in range(1, args.rounds + 1):
        for arm, fn in (("bare", bare), ("hub", through_hub)):
            with tempfile.TemporaryDirectory() as tmp:
                result = fn(args.exhaustiveness, Path(tmp))
            result.update(arm=arm, round=round_, per_ligand_s=result["seconds"] / len(LIGANDS))
            runs.append(result)
            print(
                f"round {round_} {arm:<5} {result['seconds']:7.2f} s  {result['per_ligand_s']:6.2f} s/ligand"
                + (f"  maps computed {result['maps_computed']}x" if arm == "hub" else "")
            )

    bare_s = statistics.median(r["per_ligand_s"] for r in runs if r["arm"] == "bare")
    hub_s = statistics.median(r["per_ligand_s"] for r in runs if r["arm"] == "hub")
    print(f"\n{'arm':<6}{'median s/ligand':>18}")
    print(f"{'bare':<6}{bare_s:>18.2f}\n{'hub':<6}{hub_s:>18.2f}")
    print(f"hub / bare = {hub_s / bare_s:.3f}  (goal ≤ 1.05)")
    for r in runs:
        print(f"  {r['arm']:<5} round {r['round']} scores: {r['scores']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "ligands": LIGANDS,
                "exhaustiveness": args.exhaustiveness,
                "seed": SEED,
                "median_per_ligand_s": {"bare": bare_s, "hub": hub_s},
                "ratio": hub_s / bare_s,
                "runs": runs,
            },
            indent=2,
        )
    )
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
