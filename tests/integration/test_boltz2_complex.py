"""Boltz-2 for real targets, on the real boltz code path (tiny random-weight checkpoints): multimers,
cofactors, the pocket, the template, the covalent bond and per-chain MSAs. Random weights collapse
structures, so these tests check what boltz was fed and wrote (its YAML, its featurised record and
features), never geometry."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import gemmi
import numpy as np
import pytest
import yaml
from rdkit import Chem
from rdkit.Chem import AllChem

from boltz_fixtures import structure_features
from conftest import TINY_BOLTZ, make_settings
from hub_testing import NUMBERS, gapped_dimer
from omtx_hub.domain import Ligand, Target
from omtx_hub.errors import InvalidInput
from omtx_hub.hub import Hub, open_hub
from omtx_hub.predictors.base import PredictionTask
from omtx_hub.predictors.boltz2 import Boltz2Predictor, _Dirs
from omtx_hub.predictors.boltz2_input import boltz_atom_names
from omtx_hub.predictors.boltz2_spec import METHODS, Boltz2Params
from omtx_hub.settings import Settings
from omtx_hub.submission import build_job_submission
from omtx_hub.worker import Worker

PEPTIDE = "MKTAYIAKQRQISFVKSHFSRQ"
ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"
ACRYLAMIDE = "C=CC(=O)NC"
BINDER_TO_POCKET = 3  # boltz.data.const.contact_conditioning_info["BINDER>POCKET"]


@pytest.fixture(scope="module")
def predictor(boltz_cache: Path) -> Boltz2Predictor:
    return Boltz2Predictor(Settings(boltz_cache=boltz_cache, boltz_cpu_threads=1))


@pytest.fixture
def hub(boltz_cache: Path, tmp_path: Path) -> Any:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}", boltz_cache=boltz_cache, boltz_cpu_threads=1)
    opened = open_hub(settings)
    yield opened
    opened.close()


def _near(structure: bytes, chain: str, number: int, icode: str = "") -> bytes:
    """A one-atom reference ligand (methane) on the side chain of one residue, as SDF."""
    parsed = gemmi.read_pdb_string(structure.decode())
    residue = next(r for r in parsed[0][chain] if r.seqid.num == number and r.seqid.icode.strip() == icode)
    atom = residue[-1].pos
    mol = Chem.AddHs(Chem.MolFromSmiles("C"))
    AllChem.EmbedMolecule(mol, randomSeed=1)
    conformer = mol.GetConformer()
    center = conformer.GetAtomPosition(0)
    for i in range(mol.GetNumAtoms()):
        p = conformer.GetAtomPosition(i)
        conformer.SetAtomPosition(i, (p.x - center.x + atom.x, p.y - center.y + atom.y, p.z - center.z + atom.z))
    return Chem.MolToMolBlock(mol).encode() + b"$$$$\n"


def _local(hub: Hub, sub_target: dict[str, Any], folder: Path) -> dict[str, Path]:
    """The target's files copied out of the store, as the worker does."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, stored in sub_target.get("files", {}).items():
        (folder / name).write_bytes(hub.store.read_bytes(stored))
        out[name] = folder / name
    return out


def _submit(hub: Hub, target: dict[str, Any] | None, smiles: str = ASPIRIN, **params: Any) -> Any:
    """One Boltz-2 job through every submission check (the API's), not queued."""
    return build_job_submission(
        hub.settings,
        owner="o",
        protein_sequence=None if target else PEPTIDE,
        target=target,
        ligand_smiles=smiles,
        ligand_name="x",
        predictor="boltz2",
        params=params,
    )


def _featurise(
    predictor: Boltz2Predictor, hub: Hub, target: dict[str, Any] | None, smiles: str, tmp: Path, **params: Any
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Submit one job (every check of the API), then featurise it with boltz exactly as the worker
    would. Returns boltz's input document, its record and the features of the structure pass."""
    sub = _submit(hub, target, smiles, **TINY_BOLTZ, **params)
    local = Target(key="k", protein_sequence=sub.protein_sequence, extra=sub.target)
    local.files.update(_local(hub, sub.target, tmp / "files"))
    predictor._ensure_loaded()
    (tmp / "target").mkdir(parents=True, exist_ok=True)
    artifacts = predictor.prepare_target(local, tmp / "target")
    dirs = _Dirs(tmp / "run")
    task = PredictionTask("job0", Ligand("x", smiles), sub.params)
    problem = predictor._featurise("r0", local, artifacts, task, Boltz2Params.model_validate(sub.params), dirs)
    assert problem is None, problem
    features = structure_features(dirs, hub.settings.resolved_boltz_cache() / "mols")
    document = yaml.safe_load((dirs.inputs / "r0.yaml").read_text())
    return document, json.loads((dirs.records / "r0.json").read_text()), features


def _dimer(hub: Hub, site: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A receptor target of the hand-made dimer (its site: residue A:115 unless given)."""
    return hub.create_target(
        owner="o",
        name="dimer",
        receptor=gapped_dimer(),
        site=site or {"mode": "residues", "residues": ["A:115"]},
        **extra,
    )


def _pocket_tokens(features: dict[str, Any], binder_token: int) -> set[int]:
    row = features["contact_conditioning"][0, binder_token].argmax(-1).numpy()
    return {int(i) for i in np.flatnonzero(row == BINDER_TO_POCKET)}


def test_pocket_from_listed_residues_maps_author_numbering_across_a_gap_and_an_insertion(
    predictor: Boltz2Predictor, hub: Hub, tmp_path: Path
) -> None:
    target = _dimer(hub, {"mode": "residues", "residues": ["A:115A", "A:120", "B:103"]})
    assert [c["chain"] for c in target["chains"]] == ["A", "B"]
    assert target["chains"][0]["numbering"][9:13] == ["110", "115", "115A", "116"]
    # by hand: 115A is the 12th residue the structure has, 120 the 17th, B:103 the 3rd
    assert target["site"]["pocket"] == [["A", 12], ["A", 17], ["B", 3]]
    document, record, features = _featurise(predictor, hub, target, ASPIRIN, tmp_path)
    assert [s["protein"]["id"] for s in document["sequences"][:2]] == ["A", "B"]
    assert document["sequences"][2] == {"ligand": {"id": "C", "smiles": ASPIRIN}}
    pocket = document["constraints"][0]["pocket"]
    assert pocket == {"binder": "C", "contacts": [["A", 12], ["A", 17], ["B", 3]], "max_distance": 6.0, "force": False}
    # tokens: chain A's 30 residues, then chain B's, then the ligand's atoms
    assert _pocket_tokens(features, 60) == {11, 16, 30 + 2}
    assert record["inference_options"]["pocket_constraints"][0][3] is False
    assert features["contact_pair_index"].shape[-1] == 0  # nothing forced without pocket_force

    forced, _, forced_features = _featurise(
        predictor, hub, target, ASPIRIN, tmp_path / "forced", pocket_force=True, pocket_max_distance=8
    )
    assert forced["constraints"][0]["pocket"]["force"] is True
    pairs = forced_features["contact_pair_index"][0]
    assert pairs.shape[-1] > 0 and float(forced_features["contact_thresholds"][0].max()) == 8.0
    assert float(forced_features["contact_threshold"][0, 60, 11]) == 8.0

    off, _, off_features = _featurise(predictor, hub, target, ASPIRIN, tmp_path / "off", pocket="off")
    assert "constraints" not in off and _pocket_tokens(off_features, 60) == set()


def test_pocket_from_a_reference_ligand_and_residues_boltz_would_ignore_are_refused(
    predictor: Boltz2Predictor, hub: Hub, tmp_path: Path
) -> None:
    target = _dimer(hub, {"mode": "ligand", "padding": 4}, reference_ligand=_near(gapped_dimer(), "A", 115, "A"))
    labels = target["site"]["pocket_residues"]
    assert "A:115A" in labels and all(label.startswith("A:") for label in labels)  # B is 30 Å away
    position = {f"A:{n}{i}": k for k, (n, i) in enumerate(NUMBERS, start=1)}
    assert target["site"]["pocket"] == [["A", position[label]] for label in labels]
    _, _, features = _featurise(predictor, hub, target, ASPIRIN, tmp_path)
    assert _pocket_tokens(features, 60) == {position[label] - 1 for label in labels}

    # explicit residues in the target's numbering; a residue the structure lacks, an unknown chain: 422
    _, _, given = _featurise(predictor, hub, target, ASPIRIN, tmp_path / "given", pocket_residues=["B:133"])
    assert _pocket_tokens(given, 60) == {59}
    for residues, words in ((["A:112"], "no residue 112"), (["Z:101"], "no chain Z"), (["A:134"], "no residue 134")):
        with pytest.raises(InvalidInput) as info:
            _submit(hub, target, pocket_residues=residues)
        assert info.value.code == "invalid_params" and info.value.details["param"] == "pocket_residues"
        assert words in info.value.message
    # a receptor target recorded before residue numbering was (as an older hub wrote it): refused, not guessed
    old = {**target, "chains": [{k: v for k, v in c.items() if k != "numbering"} for c in target["chains"]]}
    with pytest.raises(InvalidInput, match="create it again"):
        _submit(hub, old, pocket_residues=["A:115"])
    seq = hub.create_target(owner="o", name="seq", protein_sequence=PEPTIDE)
    with pytest.raises(InvalidInput, match="residues 1 to 22"):
        _submit(hub, seq, ASPIRIN, pocket_residues=["A:23"])


def test_template_on_force_and_off(predictor: Boltz2Predictor, hub: Hub, tmp_path: Path) -> None:
    target = _dimer(hub)
    document, record, features = _featurise(predictor, hub, target, ASPIRIN, tmp_path, template="on")
    assert document["templates"] == [{"cif": "receptor.cif", "chain_id": ["A", "B"], "template_id": ["A", "B"]}]
    assert sorted((t["query_chain"], t["template_chain"], t["force"]) for t in record["templates"]) == [
        ("A", "A", False),
        ("B", "B", False),
    ]
    # every residue of both chains is matched to the template; the ligand is not
    assert float(features["template_mask"][0].sum()) == 60
    assert not bool(features["template_force"].any())

    _, _, forced = _featurise(
        predictor, hub, target, ASPIRIN, tmp_path / "force", template="force", template_threshold=1.5
    )
    assert bool(forced["template_force"].all()) and float(forced["template_force_threshold"].max()) == 1.5

    off, off_record, off_features = _featurise(predictor, hub, target, ASPIRIN, tmp_path / "off")
    assert "templates" not in off and off_record["templates"] == []
    assert float(off_features["template_mask"].sum()) == 0

    seq = hub.create_target(owner="o", name="seq", protein_sequence=PEPTIDE)
    with pytest.raises(InvalidInput) as info:
        _submit(hub, seq, ASPIRIN, template="on")
    assert info.value.details["param"] == "template"


def test_covalent_bond_reaches_boltz_with_its_atom_names(predictor: Boltz2Predictor, hub: Hub, tmp_path: Path) -> None:
    from boltz.data.types import StructureV2

    target = _dimer(hub)
    serine = next(
        f"{n}{i}" for (n, i), letter in zip(NUMBERS, target["chains"][0]["sequence"], strict=True) if letter == "S"
    )
    covalent = {"chain": "A", "residue": serine, "atom": "OG", "ligand_atom": "[CH2]=C"}
    document, _, _ = _featurise(
        predictor, hub, target, ACRYLAMIDE, tmp_path, affinity=False, pocket="off", covalent=covalent
    )
    name = boltz_atom_names(ACRYLAMIDE)[0]
    position = [f"{n}{i}" for n, i in NUMBERS].index(serine) + 1
    assert document["constraints"] == [{"bond": {"atom1": ["A", position, "OG"], "atom2": ["C", 1, name]}}]
    structure = StructureV2.load(tmp_path / "run" / "processed" / "structures" / "r0.npz")
    covalent_type = 5  # boltz.data.const.bond_type_ids["COVALENT"]
    inter = [b for b in structure.bonds if b["chain_1"] != b["chain_2"] and b["type"] == covalent_type]
    assert len(inter) == 1
    names = {str(structure.atoms[inter[0]["atom_1"]]["name"]), str(structure.atoms[inter[0]["atom_2"]]["name"])}
    assert names == {"OG", name}

    cases = [
        ({**covalent, "atom": "SG"}, {"affinity": False}, "invalid_params", "has no atom 'SG'"),
        (covalent, {}, "invalid_params", "covalent needs affinity=false"),
        ({**covalent, "residue": "112"}, {"affinity": False}, "invalid_params", "no residue 112"),
    ]
    for given, extra, code, words in cases:
        with pytest.raises(InvalidInput) as info:
            _submit(hub, target, ACRYLAMIDE, covalent=given, **extra)
        assert info.value.code == code and words in info.value.message, info.value.message
    with pytest.raises(InvalidInput) as info:
        _submit(hub, target, ASPIRIN, covalent=covalent, affinity=False)  # aspirin has no C=C
    assert info.value.code == "invalid_ligand" and "no match for the SMARTS" in info.value.message


@pytest.mark.parametrize("smiles", [ACRYLAMIDE, ASPIRIN, "Clc1ccc(Br)cc1C(F)(F)F", "C[C@H](N)C(=O)O", "c1ccncc1"])
def test_atom_names_are_boltzs(predictor: Boltz2Predictor, hub: Hub, tmp_path: Path, smiles: str) -> None:
    from boltz.data.types import StructureV2

    _featurise(predictor, hub, None, smiles, tmp_path, affinity=False)
    structure = StructureV2.load(tmp_path / "run" / "processed" / "structures" / "r0.npz")
    ligand = structure.chains[1]
    atoms = structure.atoms[ligand["atom_idx"] : ligand["atom_idx"] + ligand["atom_num"]]
    assert [str(a["name"]) for a in atoms] == boltz_atom_names(smiles)


def test_homodimer_with_atp_and_mg_completes_with_every_chain_scored(hub: Hub) -> None:
    target = hub.create_target(
        owner="o",
        name="dimer",
        chains=[{"id": "A", "sequence": PEPTIDE.lower(), "copies": 2}],
        cofactors=["ATP", "MG"],
    )
    assert [(c["chain"], c.get("copy_of")) for c in target["chains"]] == [("A", None), ("B", "A")]
    assert target["cofactors"] == [{"ccd": "ATP"}, {"ccd": "MG"}]
    job = hub.manager.submit_job(_submit(hub, target, **TINY_BOLTZ)).record["job_id"]
    settings = hub.settings.model_copy(update={"pose_checks": False})
    Worker(settings, hub.manager, hub.store, {"boltz2": Boltz2Predictor(settings)}).run(exit_when_idle=True)
    done = hub.manager.get(job)
    assert done["status"] == "completed", done.get("error")
    r = done["results"]
    assert "affinity_pred_value" in r and r["model_weights"] == "random-test-fixture"
    assert set(r["chains_ptm"]) == {"A", "B", "C", "D", "E"} and set(r["pair_chains_iptm"]["A"]) == set(r["chains_ptm"])
    assert (r["ligand_chain"], r["cofactors"]) == ("C", ["ATP", "MG"])
    # tokens: two 22-residue chains, aspirin's 13 atoms, ATP's 31, MG's 1
    assert r["tokens"] == 2 * len(PEPTIDE) + 13 + 31 + 1
    folder = hub.store.job_dir(job)
    recipe = hub.store.read_bytes(f"{folder}/boltz_input.yaml").decode()
    assert recipe.startswith("# What this job gave Boltz-2") and "boltz predict boltz_input.yaml" in recipe
    sent = yaml.safe_load(recipe)
    assert [next(iter(s.values()))["id"] for s in sent["sequences"]] == ["A", "B", "C", "D", "E"]
    assert sent["sequences"][3] == {"ligand": {"id": "D", "ccd": "ATP"}}
    assert sent["properties"] == [{"affinity": {"binder": "C"}}]
    recorded = json.loads(hub.store.read_bytes(f"{folder}/input.json"))["model_input"]
    assert recorded["boltz_input"] == sent and recorded["command"].startswith("boltz predict boltz_input.yaml")
    # the screened ligand is LIG1 in the structure, whatever the cofactors
    cif = gemmi.read_structure_string(hub.store.read_bytes(f"{folder}/structure.cif").decode())
    assert {r.name for c in cif[0] for r in c} >= {"LIG1", "ATP", "MG"}


def test_target_checks_for_chains_and_cofactors(hub: Hub) -> None:
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"cofactors": ["ZZZZZ"]}, "invalid_cofactors", "unknown CCD code"),
        ({"cofactors": ["c1ccc"]}, "invalid_cofactors", "neither a CCD code nor a SMILES"),
        ({"cofactors": ["MG"] * 9}, "invalid_cofactors", "at most 8"),
        ({"chains": [{"id": "A", "sequence": PEPTIDE, "copies": 13}]}, "invalid_chains", "copies must be"),
        ({"chains": [{"id": "A", "sequence": PEPTIDE}, {"id": "A", "sequence": PEPTIDE}]}, "invalid_chains", "twice"),
        ({"chains": [{"id": "A", "sequence": "MKT1"}]}, "invalid_chains", "chain 1"),
    ]
    for given, code, words in cases:
        args = {"protein_sequence": PEPTIDE} if "chains" not in given else {}
        with pytest.raises(InvalidInput) as info:
            hub.create_target(owner="o", name="t", **args, **given)
        assert info.value.code == code and words in info.value.message, info.value.message
    zinc = hub.create_target(owner="o", name="t", protein_sequence=PEPTIDE, cofactors=["[Zn+2]", "ccd:HEM"])
    assert zinc["cofactors"] == [{"smiles": "[Zn+2]"}, {"ccd": "HEM"}]


# boltz's run_mmseqs2 reads the a3m files with bare open() (mmseqs2.py, "for line in open(a3m_file)")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_msa_of_each_distinct_chain_is_fetched_once_per_target(
    boltz_cache: Path, stub_server: Any, tmp_path: Path
) -> None:
    predictor = Boltz2Predictor(Settings(boltz_cache=boltz_cache, boltz_cpu_threads=1, msa_server_url=stub_server.url))
    other = "GSHMKTAYIAKQRQISFVKSHFSRQ"
    plan = {
        "msa": "server",
        "chains": [
            {"id": "A", "sequence": PEPTIDE, "msa": "server"},
            {"id": "B", "sequence": PEPTIDE, "msa": "server"},
            {"id": "C", "sequence": other, "msa": "server"},
        ],
    }
    first = tmp_path / "first"
    first.mkdir()
    artifacts = predictor.prepare_target(Target(key="k", protein_sequence=PEPTIDE, extra=plan), first)
    posts = [c for c in stub_server.calls if c[0] == "POST"]
    assert len(posts) == 2 and PEPTIDE in posts[0][2] and other in posts[1][2]
    assert artifacts.data["msa"] == {"A": "server_A.a3m", "B": "server_A.a3m", "C": "server_C.a3m"}
    second = tmp_path / "second"
    shutil.copytree(first, second)  # what the worker finds in the target cache
    predictor.prepare_target(Target(key="k", protein_sequence=PEPTIDE, extra=plan), second)
    assert len([c for c in stub_server.calls if c[0] == "POST"]) == 2


def test_method_types_are_boltzs() -> None:
    from boltz.data import const

    assert set(METHODS) == {m for m in const.method_types_ids if not m.startswith("future")}


def test_targets_and_jobs_through_the_api(api: Any) -> None:
    other = "GSHMKTAYIAKQRQISFVKSHFSRQ"
    a3m = {seq: f">query\n{seq}\n>hit\n{seq[:-1]}A\n".encode() for seq in (PEPTIDE, other)}
    r = api.post(
        "/api/v1/targets",
        data={
            "name": "hetero",
            "chains": json.dumps([{"id": "A", "sequence": PEPTIDE, "copies": 2}, {"id": "H", "sequence": other}]),
            "cofactors": "ATP, [Zn+2]",
        },
        files=[("msa", ("h.a3m", a3m[other])), ("msa", ("a.a3m", a3m[PEPTIDE]))],
    )
    assert r.status_code == 201, r.text
    target = r.json()
    assert [(c["chain"], c.get("copy_of")) for c in target["chains"]] == [("A", None), ("B", "A"), ("H", None)]
    assert target["cofactors"] == [{"ccd": "ATP"}, {"smiles": "[Zn+2]"}]
    assert {"msa_A.a3m", "msa_H.a3m"} <= set(target["files"])
    job = {"predictor": "boltz2", "target_id": target["target_id"], "ligand_smiles": ASPIRIN, "ligand_name": "a"}
    queued = api.post("/api/v1/jobs/predict", json={**job, "params": dict(TINY_BOLTZ)})
    assert queued.status_code in (200, 201, 202), queued.text
    for params, param, words in (
        ({"pocket_residues": ["H:26"]}, "pocket_residues", "residues 1 to 25"),
        ({"pocket_residues": ["Q:1"]}, "pocket_residues", "no chain Q"),
        ({"template": "on"}, "template", "needs a receptor target"),
    ):
        refused = api.post("/api/v1/jobs/predict", json={**job, "params": params})
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert error["code"] == "invalid_params" and error["details"]["param"] == param
        assert words in error["message"]
    bad = api.post("/api/v1/jobs/predict", json={**job, "params": {"pocket_max_distance": 30}})
    assert bad.status_code == 422 and "pocket_max_distance" in bad.text

    for data, upload, code in (
        ({"cofactors": '["ATPX1"]'}, None, "invalid_cofactors"),
        ({"chains": "[{"}, None, "invalid_chains"),
        ({"chains": '["MKT"]'}, None, "invalid_chains"),
        ({}, [("msa", ("x.a3m", a3m[other]))], "msa_mismatch"),
    ):
        fields = {"name": "bad", **({"protein_sequence": PEPTIDE} if "chains" not in data else {}), **data}
        refused = api.post("/api/v1/targets", data=fields, files=upload)
        assert refused.status_code == 422 and refused.json()["error"]["code"] == code, refused.text

    # keep_hetero: the receptor's own MG becomes a cofactor; a code the file lacks is a 422
    receptor = gapped_dimer().decode().replace("END", "")
    receptor += "HETATM 9999 MG    MG C 901       1.000   2.000   3.000  1.00 20.00          MG\nEND\n"
    site = json.dumps({"mode": "residues", "residues": ["A:115"]})
    kept = api.post(
        "/api/v1/targets",
        data={"name": "mg", "binding_site": site, "keep_hetero": "MG"},
        files={"receptor": ("r.pdb", receptor.encode())},
    )
    assert kept.status_code == 201, kept.text
    assert kept.json()["cofactors"] == [{"ccd": "MG"}] and [c["chain"] for c in kept.json()["chains"]] == ["A", "B"]
    missing = api.post(
        "/api/v1/targets",
        data={"name": "mg", "binding_site": site, "keep_hetero": "HEM"},
        files={"receptor": ("r.pdb", receptor.encode())},
    )
    assert missing.status_code == 422 and "HEM" in missing.json()["error"]["message"]


def test_a_receptor_with_more_chains_than_boltz2_takes_still_makes_a_target(hub: Hub) -> None:
    structure = gemmi.read_pdb_string(gapped_dimer().decode())
    for number in range(11):  # chains C… : 13 in all
        chain = structure[0]["A"].clone()
        chain.name = chr(ord("C") + number)
        for residue in chain:
            for atom in residue:
                atom.pos = gemmi.Position(atom.pos.x, atom.pos.y + 30.0 * (number + 1), atom.pos.z)
        structure[0].add_chain(chain)
    target = hub.create_target(
        owner="o",
        name="13-mer",
        receptor=structure.make_pdb_string().encode(),
        site={"mode": "residues", "residues": ["A:115"]},
    )
    assert len(target["chains"]) == 13  # docking may use it
    with pytest.raises(InvalidInput) as info:
        _submit(hub, target)
    assert info.value.details["param"] == "target" and "13 protein chains" in info.value.message
