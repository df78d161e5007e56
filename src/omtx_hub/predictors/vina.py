"""The ``vina`` predictor: AutoDock Vina docking into a receptor target, on CPU.

Per target (once per worker, and shared through the target cache): the receptor is prepared with
Meeko (PDB → PDBQT with hydrogens and AutoDock atom types; ``receptor.pdbqt`` is published to
``cache/targets/{key}/`` so other workers skip it). Vina's affinity maps for every atom type are
computed once per target and seed and kept in memory: computing them (≈1 s for a 20 Å box) costs
about what reading them back from files would, so they are not written to the cache.

Per ligand: preparation (``ligand_prep``), docking, poses back to RDKit with Meeko, results with
their units in the field names, and three files: ``poses.sdf`` (scores as properties),
``structure.cif`` (receptor + top pose, for the 3D viewer) and ``poses.pdbqt`` (Vina's own output).
"""

from __future__ import annotations

import io
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import gemmi
from pydantic import ValidationError
from rdkit import Chem
from rdkit.Chem import rdMolAlign
from vina import Vina

from omtx_hub.domain import Target
from omtx_hub.errors import PermanentPredictionError, PredictionError, TransientPredictionError
from omtx_hub.predictors.base import Outcome, PredictionTask, TargetArtifacts
from omtx_hub.predictors.ligand_prep import prepare_ligand
from omtx_hub.predictors.protonation import likely_states
from omtx_hub.predictors.vina_spec import VINA, VinaParams

__all__ = ["VinaPredictor", "make_vina_predictor"]

logger = logging.getLogger("omtx_hub.predictors.vina")
_ENGINES_PER_TARGET = 4  # Vina objects (one per seed) kept with their maps


class VinaPredictor:
    name = VINA.name
    primary_score = VINA.primary  # declared with its fields in vina_spec.py
    other_scores = VINA.sortable  # kept indexed too (job_scores)
    score_direction: Literal["asc", "desc"] = VINA.primary_field.direction or "asc"

    def __init__(self, cpu: int = 0) -> None:
        self.cpu = cpu
        self.maps_computed = 0  # how many times affinity maps were computed in this process

    # ------------------------------------------------------------------ per target

    def prepare_target(self, target: Target, workdir: Path) -> TargetArtifacts:
        receptor_pdb = target.files.get("receptor.pdb")
        if receptor_pdb is None or "box" not in target.extra:
            raise PermanentPredictionError(
                "vina needs a receptor target with a binding site box", code="target_required"
            )
        pdbqt = workdir / "receptor.pdbqt"
        info: dict[str, Any] = {"receptor_prepared": "cache"}
        if pdbqt.exists():
            _check_receptor(pdbqt.read_text(), target.extra["box"])
        elif "receptor.pdbqt" in target.files:  # uploaded already prepared: docked into as given
            text = target.files["receptor.pdbqt"].read_text()
            _check_receptor(text, target.extra["box"])
            pdbqt.write_text(text)
            info = {"receptor_prepared": "uploaded"}
        else:
            started = time.monotonic()
            text, ignored = _prepare_receptor(receptor_pdb.read_text())
            _check_receptor(text, target.extra["box"])  # before it is written and shared through the cache
            pdbqt.write_text(text)
            info = {
                "receptor_prepared": "now",
                "receptor_seconds": round(time.monotonic() - started, 3),
                "receptor_residues_ignored": ignored,
            }
        reference = None
        if "reference_ligand.sdf" in target.files:
            ref = Chem.MolFromMolFile(str(target.files["reference_ligand.sdf"]), removeHs=False)
            reference = _skeleton(ref) if ref is not None else None
        data = {
            "pdbqt": str(pdbqt),
            "box": target.extra["box"],
            "reference": reference,
            "receptor_pdb": receptor_pdb.read_text(),
            "engines": OrderedDict(),
            "info": info,
        }
        return TargetArtifacts(directory=workdir, data=data)

    def _engine(self, artifacts: TargetArtifacts, seed: int) -> Vina:
        engines: OrderedDict[int, Vina] = artifacts.data["engines"]
        if seed in engines:
            engines.move_to_end(seed)
            return engines[seed]
        started = time.monotonic()
        engine = Vina(sf_name="vina", cpu=self.cpu, seed=seed, verbosity=0)
        engine.set_receptor(rigid_pdbqt_filename=artifacts.data["pdbqt"])
        box = artifacts.data["box"]
        engine.compute_vina_maps(center=box["center"], box_size=box["size"])
        self.maps_computed += 1
        logger.info(
            "action=vina_maps target=%s seed=%s seconds=%.3f",
            artifacts.directory.name,
            seed,
            time.monotonic() - started,
        )
        engines[seed] = engine
        while len(engines) > _ENGINES_PER_TARGET:
            engines.popitem(last=False)
        return engine

    # ------------------------------------------------------------------ per ligand

    def predict(
        self,
        target: Target,
        artifacts: TargetArtifacts,
        tasks: Sequence[PredictionTask],
        workdir: Path,
        should_stop: Callable[[str], bool],
    ) -> Iterator[Outcome]:
        for task in tasks:
            if should_stop(task.job_id):
                return
            try:
                yield self._dock(task, artifacts, should_stop)
            except PredictionError as exc:
                yield Outcome(task.job_id, error=exc)

    def _dock(self, task: PredictionTask, artifacts: TargetArtifacts, should_stop: Callable[[str], bool]) -> Outcome:
        try:
            params = VinaParams.model_validate(task.params)
        except ValidationError as exc:
            raise PermanentPredictionError(
                f"invalid vina parameters: {exc.errors()[0]['msg']}", code="invalid_params"
            ) from exc
        engine = self._engine(artifacts, params.seed)
        started = time.monotonic()
        tried: list[dict[str, Any]] = []
        if params.protonate and params.protonation == "enumerate":
            # several likely states, each docked as given; the best-scoring one is the job's result
            try:
                states = likely_states(task.ligand.smiles, params.ph, params.protonation_states)
            except (ValueError, RuntimeError) as exc:
                raise PermanentPredictionError(
                    f"ligand_preparation_failed: protonation: {exc} (SMILES {task.ligand.smiles})",
                    code="ligand_preparation_failed",
                ) from exc
            best: tuple[float, Any, Any, str] | None = None  # top score, ligand, energies, poses
            for state in states:
                candidate = prepare_ligand(state.smiles, ph=params.ph, protonate=False, seed=params.seed)
                state_energies, state_poses = _dock_one(engine, candidate, params)
                top_score = float(state_energies[0][0])
                tried.append(
                    {
                        "smiles": candidate.smiles,
                        "formal_charge": candidate.formal_charge,
                        "vina_score_kcal_mol": round(top_score, 3),
                    }
                )
                if best is None or top_score < best[0]:
                    best = (top_score, candidate, state_energies, state_poses)
            assert best is not None  # likely_states returns the dominant state at least
            _, ligand, energies, poses_pdbqt = best
        else:
            ligand = prepare_ligand(task.ligand.smiles, ph=params.ph, protonate=params.protonate, seed=params.seed)
            energies, poses_pdbqt = _dock_one(engine, ligand, params)
        seconds = time.monotonic() - started
        poses = _poses_to_rdkit(poses_pdbqt, task.ligand.smiles)
        scores = [round(float(row[0]), 3) for row in energies]
        if all(score == 0.0 for score in scores):
            raise PermanentPredictionError(
                f"docking_failed: every pose scored exactly 0.0 kcal/mol ({len(scores)} poses): Vina found no "
                "interaction with the receptor, so there is no score to report",
                code="docking_failed",
            )
        top = scores[0]
        results: dict[str, Any] = {
            "vina_score_kcal_mol": top,
            "pose_scores_kcal_mol": scores,
            "ligand_efficiency_kcal_mol_per_heavy_atom": round(top / ligand.heavy_atoms, 4),
            "heavy_atoms": ligand.heavy_atoms,
            "n_poses": len(scores),
            "docked_smiles": ligand.smiles,
            "formal_charge": ligand.formal_charge,
            **({"protonation_states": tried} if tried else {}),
            "exhaustiveness": params.exhaustiveness,
            "seed": params.seed,
            "box_center_angstrom": artifacts.data["box"]["center"],
            "box_size_angstrom": artifacts.data["box"]["size"],
            "docking_seconds": round(seconds, 3),
        }
        if artifacts.data["reference"] is not None:
            results["rmsd_to_reference_angstrom"] = _rmsd(poses, artifacts.data["reference"])
        files = {
            "poses.sdf": _poses_sdf(poses, task.ligand.name, scores, energies),
            "structure.cif": _complex_cif(artifacts.data["receptor_pdb"], poses, task.ligand.name),
            "poses.pdbqt": poses_pdbqt.encode(),
        }
        return Outcome(task.job_id, results=results, files=files, accelerator_seconds=seconds)


def make_vina_predictor(settings: Any) -> VinaPredictor:
    return VinaPredictor(cpu=getattr(settings, "vina_cpu", 0))


# ---------------------------------------------------------------------- helpers


def _dock_one(engine: Vina, ligand: Any, params: VinaParams) -> tuple[Any, str]:
    """Vina's energies and poses of one prepared ligand (the engine holds the target's maps)."""
    try:
        engine.set_ligand_from_string(ligand.pdbqt)
        engine.dock(exhaustiveness=params.exhaustiveness, n_poses=max(20, params.n_poses))
        energies = engine.energies(n_poses=params.n_poses, energy_range=params.energy_range_kcal_mol)
        poses_pdbqt = engine.poses(n_poses=params.n_poses, energy_range=params.energy_range_kcal_mol)
    except MemoryError as exc:
        raise TransientPredictionError("docking ran out of memory", code="out_of_memory") from exc
    except (RuntimeError, TypeError, ValueError) as exc:
        raise PermanentPredictionError(f"docking_failed: Vina: {exc}", code="docking_failed") from exc
    return energies, poses_pdbqt


def _prepare_receptor(pdb_text: str) -> tuple[str, int]:
    from meeko import MoleculePreparation, PDBQTWriterLegacy, Polymer, ResidueChemTemplates

    try:
        polymer = Polymer.from_pdb_string(
            pdb_text,
            ResidueChemTemplates.create_from_defaults(),
            MoleculePreparation(),
            allow_bad_res=True,
            default_altloc="A",
        )
        rigid, _flex = PDBQTWriterLegacy.write_from_polymer(polymer)
    except Exception as exc:  # Meeko raises many kinds; none of them will pass on a retry
        raise PermanentPredictionError(
            f"receptor_preparation_failed: Meeko: {exc}", code="receptor_preparation_failed"
        ) from exc
    return rigid, len(polymer.get_ignored_monomers())


_NEAR_BOX_ANGSTROM = 4.0  # receptor atoms this close to the box still shape its affinity maps


def _check_receptor(pdbqt: str, box: dict[str, Any]) -> None:
    """A prepared receptor Vina can dock into: atoms, some of them in or near the box. Anything else
    would "dock" against nothing and report scores of 0.0 that were never computed."""
    coords = []
    for line in pdbqt.splitlines():
        if line.startswith(("ATOM  ", "HETATM")):
            try:
                coords.append((float(line[30:38]), float(line[38:46]), float(line[46:54])))
            except ValueError:
                continue
    if not coords:
        raise PermanentPredictionError(
            "receptor_preparation_failed: the prepared receptor (receptor.pdbqt) holds no atoms",
            code="receptor_preparation_failed",
        )
    center, half = box["center"], [side / 2 + _NEAR_BOX_ANGSTROM for side in box["size"]]
    near = sum(all(abs(p[i] - center[i]) <= half[i] for i in range(3)) for p in coords)
    if near == 0:
        raise PermanentPredictionError(
            f"receptor_preparation_failed: none of the prepared receptor's {len(coords)} atoms is in or within "
            f"{_NEAR_BOX_ANGSTROM:g} Å of the box (center {center}, size {box['size']})",
            code="receptor_preparation_failed",
        )


def _poses_to_rdkit(poses_pdbqt: str, smiles: str) -> Chem.Mol:
    from meeko import PDBQTMolecule, RDKitMolCreate

    try:
        mols = RDKitMolCreate.from_pdbqt_mol(PDBQTMolecule(poses_pdbqt, skip_typing=True))
    except Exception as exc:  # a pose Meeko cannot map back is a failure of this ligand
        raise PermanentPredictionError(
            f"docking_failed: poses could not be read back: {exc}", code="docking_failed"
        ) from exc
    if not mols or mols[0] is None or mols[0].GetNumConformers() == 0:
        raise PermanentPredictionError(f"docking_failed: no pose for {smiles}", code="docking_failed")
    best: Chem.Mol = mols[0]
    return best


def _skeleton(mol: Chem.Mol) -> Chem.Mol:
    """Heavy atoms with charges cleared: the same molecule in another protonation state matches."""
    rw = Chem.RWMol(Chem.RemoveHs(mol, sanitize=False))
    for atom in rw.GetAtoms():
        atom.SetFormalCharge(0)
        atom.SetNumExplicitHs(0)
        atom.SetNoImplicit(False)
    Chem.SanitizeMol(rw)
    return rw.GetMol()


def _rmsd(poses: Chem.Mol, reference: Chem.Mol) -> float | None:
    """Symmetry-aware heavy-atom RMSD of the top pose to the reference pose, in place (no alignment)."""
    try:
        probe = _skeleton(poses)
        conf_id = probe.GetConformers()[0].GetId()
        return round(float(rdMolAlign.CalcRMS(probe, reference, prbId=conf_id)), 3)
    except (RuntimeError, ValueError):
        return None  # a different molecule than the reference: no RMSD to report


def _poses_sdf(poses: Chem.Mol, name: str, scores: list[float], energies: Any) -> bytes:
    """Every pose as one SDF record (RDKit's writer: no name or value can break a record)."""
    out = io.StringIO()
    writer = Chem.SDWriter(out)
    writer.SetProps(["pose_rank", "vina_score_kcal_mol", "vina_inter_kcal_mol", "vina_intra_kcal_mol"])
    for rank, conf in enumerate(poses.GetConformers(), start=1):
        mol = Chem.Mol(poses, confId=conf.GetId())
        mol.SetProp("_Name", name)
        mol.SetIntProp("pose_rank", rank)
        mol.SetDoubleProp("vina_score_kcal_mol", scores[rank - 1])
        mol.SetDoubleProp("vina_inter_kcal_mol", round(float(energies[rank - 1][1]), 3))
        mol.SetDoubleProp("vina_intra_kcal_mol", round(float(energies[rank - 1][2]), 3))
        writer.write(mol)
    writer.close()
    return out.getvalue().encode()


def _complex_cif(receptor_pdb: str, poses: Chem.Mol, name: str) -> bytes:
    structure = gemmi.read_pdb_string(receptor_pdb)
    model = structure[0]
    chain = gemmi.Chain("L" if "L" not in [c.name for c in model] else "Z")
    residue = gemmi.Residue()
    residue.name = "LIG"
    residue.het_flag = "H"
    residue.seqid = gemmi.SeqId(1, " ")
    conf = poses.GetConformers()[0]
    counts: dict[str, int] = {}
    for atom in poses.GetAtoms():
        element = atom.GetSymbol()
        counts[element] = counts.get(element, 0) + 1
        a = gemmi.Atom()
        a.name = f"{element}{counts[element]}"[:4]
        a.element = gemmi.Element(element)
        p = conf.GetAtomPosition(atom.GetIdx())
        a.pos = gemmi.Position(p.x, p.y, p.z)
        a.occ = 1.0
        residue.add_atom(a)
    chain.add_residue(residue)
    model.add_chain(chain)
    structure.name = name[:60] or "complex"
    structure.setup_entities()
    return structure.make_mmcif_document().as_string().encode()
