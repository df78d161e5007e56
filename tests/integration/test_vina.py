"""The vina predictor with the real Vina, Meeko and RDKit code, on the bundled 1IEP target."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import gemmi
import pytest
from rdkit import Chem

from conftest import make_settings
from omtx_hub.hub import Hub, open_hub
from omtx_hub.predictors.vina import VinaPredictor
from omtx_hub.submission import build_batch_submission, build_job_submission
from omtx_hub.worker import Worker

DATA = Path(str(files("omtx_hub.demo"))) / "1iep"
IMATINIB = "Cc1ccc(NC(=O)c2ccc(CN3CCN(C)CC3)cc2)cc1Nc1nccc(-c2cccnc2)n1"
CRYSTAL_BOX = {"mode": "box", "center": [15.190, 53.903, 16.917], "size": [20.0, 20.0, 20.0]}
# RDKit parses this (a [2.2]paracyclophane-like diene) but ETKDG finds no 3D conformer for it
UNEMBEDDABLE = "C1=CC2=CC=C1C=C2"


@pytest.fixture(scope="module")
def vina_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    tmp = tmp_path_factory.mktemp("vina")
    hub = open_hub(make_settings(tmp, f"sqlite:///{tmp / 'hub.db'}", default_predictor="vina"))
    yield hub
    hub.close()


@pytest.fixture(scope="module")
def target(vina_hub: Hub) -> dict[str, Any]:
    return vina_hub.create_target(
        owner="local",
        name="abl",
        receptor=(DATA / "1iep_receptorH.pdb").read_bytes(),
        receptor_filename="1iep_receptorH.pdb",
        site=CRYSTAL_BOX,
        reference_ligand=(DATA / "1iep_ligand.sdf").read_bytes(),
        reference_filename="ref.sdf",
    )


@pytest.fixture(scope="module")
def predictor() -> VinaPredictor:
    return VinaPredictor(cpu=2)


def submit(hub: Hub, target: dict[str, Any], name: str, smiles: str, params: dict[str, Any]) -> str:
    """One docking job of ``smiles`` against ``target``, queued; its job id."""
    sub = build_job_submission(
        hub.settings,
        owner="local",
        target=target,
        protein_sequence=None,
        ligand_smiles=smiles,
        ligand_name=name,
        params=params,
    )
    return str(hub.manager.submit_job(sub).record["job_id"])


def run(hub: Hub, predictor: VinaPredictor) -> Worker:
    worker = Worker(hub.settings, hub.manager, hub.store, {"vina": predictor})
    while worker.run_once():
        pass
    worker._maintenance()
    return worker


def test_redocking_imatinib_finds_the_crystal_pose(
    vina_hub: Hub, target: dict[str, Any], predictor: VinaPredictor
) -> None:
    """Exhaustiveness 8, seed 42 (checked in): the best-scored pose is within 2 Å of the crystal pose."""
    job_id = submit(vina_hub, target, "imatinib", IMATINIB, {"exhaustiveness": 8, "seed": 42})
    run(vina_hub, predictor)
    record = vina_hub.manager.get(job_id)
    assert record["status"] == "completed", record["error"]
    results = record["results"]
    assert results["rmsd_to_reference_angstrom"] < 2.0
    assert results["vina_score_kcal_mol"] < -11.0
    assert results["pose_scores_kcal_mol"][0] == results["vina_score_kcal_mol"]
    assert results["pose_scores_kcal_mol"] == sorted(results["pose_scores_kcal_mol"])
    assert results["heavy_atoms"] == 37
    assert results["ligand_efficiency_kcal_mol_per_heavy_atom"] == pytest.approx(
        results["vina_score_kcal_mol"] / 37, abs=1e-3
    )
    assert results["formal_charge"] == 1  # the N-methyl piperazine nitrogen only (test_protonation.py)
    # the redocked pose is physically sane (PoseBusters' redock checks: the reference is imatinib)
    # and makes the hinge hydrogen bond to Met318 (ProLIF) and contacts the gatekeeper Thr315
    assert results["pose_checks_passed"] is True and results["pose_checks_failed"] == [], results
    assert "A:MET318:HBAcceptor" in results["interactions"]
    folder = vina_hub.store.job_dir(job_id)
    pose = next(Chem.SDMolSupplier(str(Path(vina_hub.settings.storage_url or "") / folder / "poses.sdf")))
    receptor = Chem.MolFromPDBFile(str(DATA / "1iep_receptorH.pdb"))
    thr315 = [a.GetIdx() for a in receptor.GetAtoms() if a.GetPDBResidueInfo().GetResidueNumber() == 315]
    gap = min(
        (pose.GetConformer().GetAtomPosition(i) - receptor.GetConformer().GetAtomPosition(j)).Length()
        for i in range(pose.GetNumAtoms())
        for j in thr315
    )
    assert gap < 4.0, gap  # the gatekeeper contact: ProLIF's hydrogen-bond angle to it is borderline here
    checks = vina_hub.store.read_bytes(f"{folder}/posebusters.csv").decode().splitlines()
    assert checks[0] == "check,passed" and "rmsd_≤_2å,True" in checks
    contacts = json.loads(vina_hub.store.read_bytes(f"{folder}/interactions.json"))
    hinge = [c for c in contacts if c["residue"] == "MET" and c["number"] == 318 and c["interaction"] == "HBAcceptor"]
    assert hinge and 2.5 < hinge[0]["distance_angstrom"] < 3.6


def test_batch_files_and_a_bad_ligand_failing_alone(
    vina_hub: Hub, target: dict[str, Any], predictor: VinaPredictor
) -> None:
    ligands = [
        ("aspirin", "CC(=O)Oc1ccccc1C(=O)O"),
        ("strained", UNEMBEDDABLE),
        ("ibuprofen sodium", "CC(C)Cc1ccc(cc1)C(C)C(=O)[O-].[Na+]"),
    ]
    sub = build_batch_submission(
        vina_hub.settings,
        owner="local",
        target=target,
        batch_name="b",
        protein_sequence=None,
        ligands=ligands,
        params={"exhaustiveness": 1, "n_poses": 3},
    )
    batch_id = vina_hub.manager.submit_batch(sub).record["job_id"]
    maps_before = predictor.maps_computed
    run(vina_hub, predictor)
    assert predictor.maps_computed - maps_before <= 1  # one seed (42) for the whole batch, maps kept in memory
    parent = vina_hub.manager.get(batch_id)
    assert (parent["status"], parent["n_completed"], parent["n_failed"]) == ("completed", 2, 1)
    children = {c["input"]["ligand_name"]: c for c in vina_hub.manager.iter_children(batch_id)}
    bad = children["strained"]
    assert bad["error"]["code"] == "ligand_preparation_failed" and "3D embedding" in bad["error"]["message"]
    salt = children["ibuprofen sodium"]["results"]
    assert salt["docked_smiles"] == "CC(C)Cc1ccc(C(C)C(=O)[O-])cc1" and "rmsd_to_reference_angstrom" in salt
    assert salt["rmsd_to_reference_angstrom"] is None  # not the reference molecule

    folder = Path(vina_hub.settings.storage_url or "") / "batches" / batch_id / "jobs" / children["aspirin"]["job_id"]
    assert sorted(p.name for p in folder.iterdir()) == [
        "input.json",
        "interactions.json",
        "posebusters.csv",
        "poses.pdbqt",
        "poses.sdf",
        "results.json",
        "structure.cif",
    ]
    poses = [m for m in Chem.SDMolSupplier(str(folder / "poses.sdf")) if m is not None]
    assert 1 <= len(poses) <= 3
    scores = [m.GetDoubleProp("vina_score_kcal_mol") for m in poses]
    assert scores == children["aspirin"]["results"]["pose_scores_kcal_mol"]
    assert poses[0].GetNumHeavyAtoms() == 13 and poses[0].GetConformer().Is3D()
    complex_ = gemmi.read_structure(str(folder / "structure.cif"))
    residues = [r.name for chain in complex_[0] for r in chain]
    assert residues.count("LIG") == 1 and len(residues) > 250
    csv_text = (Path(vina_hub.settings.storage_url or "") / "batches" / batch_id / "batch_results.csv").read_text()
    header = csv_text.splitlines()[0].split(",")
    assert header[:7] == [
        "rank",
        "job_id",
        "batch_index",
        "ligand_name",
        "ligand_smiles",
        "status",
        "vina_score_kcal_mol",
    ]
    # the batch's best poses: one record per docked ligand, best first, every CSV column as an SD property
    best = [
        m
        for m in Chem.SDMolSupplier(
            str(Path(vina_hub.settings.storage_url or "") / "batches" / batch_id / "best_poses.sdf")
        )
        if m is not None
    ]
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    assert [m.GetProp("_Name") for m in best] == [r["ligand_name"] for r in rows if r["status"] == "completed"]
    for mol, row in zip(best, rows, strict=False):
        assert mol.GetConformer().Is3D() and mol.GetProp("rank") == row["rank"]
        assert {k for k, v in row.items() if v} <= set(mol.GetPropNames())
        assert float(mol.GetProp("vina_score_kcal_mol")) == float(row["vina_score_kcal_mol"])


def test_a_second_worker_reuses_the_cached_receptor(vina_hub: Hub, target: dict[str, Any]) -> None:
    for name, smiles in [("methanol", "CO"), ("ethanol", "CCO")]:  # the first worker fills the cache (if empty)
        job_id = submit(vina_hub, target, name, smiles, {"exhaustiveness": 1})
        worker = run(vina_hub, VinaPredictor(cpu=2))
    record = vina_hub.manager.get(job_id)
    assert record["status"] == "completed"
    ((_, artifacts),) = worker._targets.values()
    assert artifacts.data["info"] == {"receptor_prepared": "cache"}
    assert vina_hub.store.list_files(f"cache/targets/{record['target_key']}") == ["receptor.pdbqt"]


# ---------------------------------------------------------------------- receptors that would give fake scores


def _with_elements(pdb: str, element: str, keep: frozenset[str]) -> str:
    """The PDB text with the element columns (77-78) of every atom whose name is not in ``keep`` replaced."""
    lines = []
    for line in pdb.splitlines():
        if line.startswith(("ATOM  ", "HETATM")) and line[12:16].strip() not in keep:
            line = f"{line[:76].ljust(76)}{element:>2}{line[78:]}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def test_broken_receptors_are_refused_before_anything_is_queued(vina_hub: Hub) -> None:
    from omtx_hub.errors import InvalidInput
    from omtx_hub.predictors.vina import _prepare_receptor
    from omtx_hub.targets import prepare_target_files

    pdb = (DATA / "1iep_receptorH.pdb").read_text()
    cleaned = prepare_target_files(pdb.encode(), "1iep_receptorH.pdb", CRYSTAL_BOX).receptor_pdb.decode()
    pdbqt, _ = _prepare_receptor(cleaned)  # what the worker makes of it

    def create(text: str, filename: str = "receptor.pdb") -> InvalidInput:
        with pytest.raises(InvalidInput) as caught:
            vina_hub.create_target(
                owner="local", name="broken", receptor=text.encode(), receptor_filename=filename, site=CRYSTAL_BOX
            )
        return caught.value

    # a PDBQT whose line has lost its atom type: refused, naming the line
    lines = pdbqt.splitlines()
    broken_at = next(i for i, line in enumerate(lines) if line.startswith("ATOM")) + 5
    lines[broken_at] = lines[broken_at][:77]
    bad = create("\n".join(lines), "receptor.pdbqt")
    assert bad.code == "invalid_receptor" and bad.details == {"format": "pdbqt", "line": broken_at + 1}
    assert f"line {broken_at + 1}" in bad.message
    # a PDBQT that holds no protein (a prepared ligand, say) is not a receptor
    ligand_only = [line for line in pdbqt.splitlines() if line.startswith("ATOM")][:20]
    assert "amino-acid residues" in create("\n".join(ligand_only), "receptor.pdbqt").message
    # element columns that call most heavy atoms hydrogens: cleaning would keep the backbone N only
    hydrogens = create(_with_elements(pdb, "H", frozenset({"N"})))
    assert hydrogens.code == "invalid_receptor" and hydrogens.details["kept"] < hydrogens.details["heavy_atoms"] / 2
    # a receptor stripped to its backbone: the site has nothing to dock against
    backbone = "\n".join(
        line
        for line in pdb.splitlines()
        if not line.startswith("ATOM  ") or line[12:16].strip() in ("N", "CA", "C", "O")
    )
    assert create(backbone).code == "binding_site_without_side_chains"


def test_an_unusable_prepared_receptor_fails_the_target_preparation(tmp_path: Path, predictor: VinaPredictor) -> None:
    from omtx_hub.domain import Target
    from omtx_hub.errors import PermanentPredictionError

    receptor = tmp_path / "receptor.pdb"
    receptor.write_text((DATA / "1iep_receptorH.pdb").read_text())
    box = {"center": CRYSTAL_BOX["center"], "size": CRYSTAL_BOX["size"]}
    for name, cached in [
        ("empty", ""),
        ("far", "ATOM      1  C   SER A 438     111.317 166.182 133.926  1.00  0.00     0.244 C \n"),
    ]:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "receptor.pdbqt").write_text(cached)  # what the target cache holds
        target = Target(key=name, protein_sequence="", extra={"box": box}, files={"receptor.pdb": receptor})
        with pytest.raises(PermanentPredictionError) as caught:
            predictor.prepare_target(target, folder)
        assert caught.value.code == "receptor_preparation_failed"


def test_a_docking_whose_poses_all_score_zero_fails(tmp_path: Path) -> None:
    """Real Vina against a receptor without atoms "docks" and scores every pose 0.0: that is no result."""
    from collections import OrderedDict

    from omtx_hub.domain import Ligand
    from omtx_hub.errors import PermanentPredictionError
    from omtx_hub.predictors.base import PredictionTask, TargetArtifacts

    (tmp_path / "receptor.pdbqt").write_text("")
    artifacts = TargetArtifacts(
        directory=tmp_path,
        data={
            "pdbqt": str(tmp_path / "receptor.pdbqt"),
            "box": {"center": [0, 0, 0], "size": [16, 16, 16]},
            "reference": None,
            "receptor_pdb": "",
            "engines": OrderedDict(),
            "info": {},
        },
    )
    task = PredictionTask(job_id="j", ligand=Ligand("ethanol", "CCO"), params={"exhaustiveness": 1})
    with pytest.raises(PermanentPredictionError) as caught:
        VinaPredictor(cpu=1)._dock(task, artifacts, lambda _job: False)
    assert caught.value.code == "docking_failed" and "0.0" in caught.value.message


def test_a_screen_requiring_the_hinge_contact_keeps_imatinib_and_drops_aspirin(
    vina_hub: Hub, target: dict[str, Any], predictor: VinaPredictor
) -> None:
    """Real docking, real pose checks: ranked on contact with Met318 (the hinge), aspirin, which docks
    elsewhere in the pocket, is listed without a rank."""
    sub = build_batch_submission(
        vina_hub.settings,
        owner="local",
        target=target,
        batch_name="hinge",
        protein_sequence=None,
        ligands=[("imatinib", IMATINIB), ("aspirin", "CC(=O)Oc1ccccc1C(=O)O")],
        params={"exhaustiveness": 8, "seed": 42},
    )
    ranking = {"required_interactions": ["A:MET318"], "pose_checks": "require"}
    batch_id = vina_hub.manager.submit_batch(dataclasses.replace(sub, ranking=ranking)).record["job_id"]
    run(vina_hub, predictor)
    ranked = json.loads(vina_hub.store.read_bytes(f"{vina_hub.store.batch_dir(batch_id)}/batch_results.json"))
    assert [(row["ligand_name"], row["rank"]) for row in ranked["results"]] == [("imatinib", 1), ("aspirin", None)]
    assert ranked["required_interactions"] == ["A:MET318"]
    aspirin = ranked["results"][1]
    assert aspirin["status"] == "completed" and "A:MET318:" not in aspirin["interactions"]


def test_an_uploaded_pdbqt_receptor_docks_like_the_pdb_it_came_from(vina_hub: Hub, predictor: VinaPredictor) -> None:
    """A receptor prepared elsewhere (here: by the hub's own preparation of 1IEP, written out) is docked
    into as uploaded; the same ligand scores within 0.5 kcal/mol of the PDB upload of that receptor."""
    from omtx_hub.predictors.vina import _prepare_receptor
    from omtx_hub.targets import prepare_target_files

    pdb = (DATA / "1iep_receptorH.pdb").read_bytes()
    pdbqt, _ = _prepare_receptor(prepare_target_files(pdb, "1iep.pdb", CRYSTAL_BOX).receptor_pdb.decode())
    scores = {}
    for filename, receptor in (("1iep.pdb", pdb), ("1iep_receptor.pdbqt", pdbqt.encode())):
        target = vina_hub.create_target(
            owner="local", name=filename, receptor=receptor, receptor_filename=filename, site=CRYSTAL_BOX
        )
        job_id = submit(vina_hub, target, "ibuprofen", "CC(C)Cc1ccc(cc1)C(C)C(=O)O", {"exhaustiveness": 8, "seed": 42})
        run(vina_hub, predictor)
        record = vina_hub.manager.get(job_id)
        assert record["status"] == "completed", record["error"]
        scores[filename] = record["results"]["vina_score_kcal_mol"]
        if filename.endswith(".pdbqt"):
            assert "receptor.pdbqt" in target["files"] and any("PDBQT" in w for w in target["warnings"])
            assert target["protein_sequence"] and target["chains"][0]["chain"] == "A"
            # the interaction labels come from its protein atoms
            assert record["results"]["pose_checks_passed"] is True and "A:" in record["results"]["interactions"]
    assert abs(scores["1iep.pdb"] - scores["1iep_receptor.pdbqt"]) <= 0.5, scores


def test_repair_rebuilds_side_chains_cut_short_in_the_receptor(vina_hub: Hub) -> None:
    """Thr315 and Met318 cut back to their CB, as in a deposited model with unresolved side chains:
    without repair the receptor keeps the stubs; with it PDBFixer rebuilds them and says so."""
    from omtx_hub.errors import InvalidInput

    lines = (DATA / "1iep_receptorH.pdb").read_text().splitlines()
    stubs = "\n".join(
        line
        for line in lines
        if not (
            line.startswith("ATOM")
            and line[22:26].strip() in ("315", "318")
            and line[12:16].strip() not in ("N", "CA", "C", "O", "CB")
        )
    ).encode()

    def atoms(target: dict[str, Any], residue: str) -> set[str]:
        pdb = vina_hub.store.read_bytes(target["files"]["receptor.pdb"]).decode()
        return {
            line[12:16].strip()
            for line in pdb.splitlines()
            if line.startswith("ATOM") and line[22:26].strip() == residue
        }

    plain = vina_hub.create_target(
        owner="local", name="stubs", receptor=stubs, receptor_filename="stubs.pdb", site=CRYSTAL_BOX
    )
    assert atoms(plain, "315") == {"N", "CA", "C", "O", "CB"} and "repaired" not in plain["site"]
    fixed = vina_hub.create_target(
        owner="local", name="repaired", receptor=stubs, receptor_filename="stubs.pdb", site=CRYSTAL_BOX, repair=True
    )
    assert atoms(fixed, "315") == {"N", "CA", "C", "O", "CB", "OG1", "CG2"}
    assert {"CG", "SD", "CE"} <= atoms(fixed, "318")
    rebuilt = {r["residue"]: sorted(r["atoms"]) for r in fixed["site"]["repaired"]}
    assert rebuilt["A:THR315"] == ["CG2", "OG1"] and rebuilt["A:MET318"] == ["CE", "CG", "SD"]
    assert any(w.startswith("PDBFixer rebuilt") and "A:THR315 (" in w for w in fixed["warnings"])
    with pytest.raises(InvalidInput, match="docked as uploaded"):  # a PDBQT is not repaired behind the user's back
        from omtx_hub.predictors.vina import _prepare_receptor

        pdbqt, _ = _prepare_receptor(vina_hub.store.read_bytes(fixed["files"]["receptor.pdb"]).decode())
        vina_hub.create_target(
            owner="local", name="x", receptor=pdbqt.encode(), receptor_filename="r.pdbqt", site=CRYSTAL_BOX, repair=True
        )


def test_enumerated_protonation_docks_each_likely_state_and_keeps_the_best(
    vina_hub: Hub, target: dict[str, Any], predictor: VinaPredictor
) -> None:
    job_id = submit(
        vina_hub,
        target,
        "histamine",
        "NCCc1c[nH]cn1",
        {"exhaustiveness": 4, "seed": 42, "protonation": "enumerate", "protonation_states": 3},
    )
    run(vina_hub, predictor)
    results = vina_hub.manager.get(job_id)["results"]
    states = results["protonation_states"]
    assert [s["formal_charge"] for s in states] == [1, 2]  # the dominant state, then the imidazolium
    best = min(states, key=lambda s: s["vina_score_kcal_mol"])
    assert results["vina_score_kcal_mol"] == best["vina_score_kcal_mol"]
    assert (results["docked_smiles"], results["formal_charge"]) == (best["smiles"], best["formal_charge"])
