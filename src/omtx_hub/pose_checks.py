"""Is the best pose physically sane, and what does it touch? PoseBusters and ProLIF on every
completed job that has a pose (Vina's best pose against the target's receptor; Boltz-2's model 0).

Computed by the worker right after the prediction, one job at a time. The checks never fail a job:
when they cannot run, the job's results say why in ``pose_checks_error``.

- **PoseBusters** (``posebusters``): the "dock" checks (ligand chemistry and geometry, clashes and
  volume overlap with the protein); with the target's reference ligand, the "redock" checks (the
  same plus the RMSD to it, and the molecule's identity). ``pose_checks_passed`` is True when every
  check passed; ``pose_checks_failed`` names the others. Every check's value is in ``posebusters.csv``.
- **ProLIF** (``prolif``): hydrogen bonds (``HBDonor`` / ``HBAcceptor``, from the ligand's side),
  salt bridges (``Cationic`` / ``Anionic``), π-stacking, cation–π (``CationPi`` / ``PiCation``),
  hydrophobic contacts, halogen bonds (``XBDonor`` / ``XBAcceptor``) and metal contacts, each with
  its residue and distance, in ``interactions.json``; ``interactions`` sums them up as
  ``"A:MET318:HBAcceptor, A:THR315:HBDonor, …"`` (chain, residue name and author number, type),
  polar contacts first by distance, then hydrophobic ones: every contact, so a screen can be ranked
  on the contacts its ligands make (:mod:`omtx_hub.interactions`) from the results alone.

The protein is read with RDKit and its bond orders set from amino-acid templates (ProLIF's
``MoleculeStandardizer``); missing hydrogens are added to it and to the ligand at their ideal
positions, since hydrogen bonds are judged from them.
"""

from __future__ import annotations

import io
import json
import time
import warnings
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omtx_hub.interactions import INTERACTION_TYPES
from omtx_hub.poses import best_pose, protein_pdb_of_structure

__all__ = ["PoseReport", "check_job_pose", "check_pose"]

_INSTALL = "pip install 'omtx-hub[poses]'"


@dataclass
class PoseReport:
    """Fields for the job's results and files for its folder."""

    results: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)


def check_job_pose(
    read: Callable[[str], bytes], files: Collection[str], smiles: str, target_files: Mapping[str, Path]
) -> PoseReport | None:
    """The report for one job's outcome (``read(name)`` gives one of its ``files``), or None when the
    job has no pose to check (a predictor that writes none)."""
    if "poses.sdf" in files and "receptor.pdb" in target_files:
        protein: bytes | None = target_files["receptor.pdb"].read_bytes()
    elif "structure.cif" in files:
        protein = None  # from the structure itself, below
    else:
        return None
    started = time.perf_counter()
    try:
        ligand = best_pose(read, files, smiles)
        if protein is None:
            protein = protein_pdb_of_structure(read("structure.cif"))
        reference = None
        if "reference_ligand.sdf" in target_files:
            from rdkit import Chem

            reference = Chem.MolFromMolFile(str(target_files["reference_ligand.sdf"]), removeHs=False)
        report = check_pose(ligand, protein, reference)
    except ImportError as exc:
        report = PoseReport({"pose_checks_error": f"{exc.name or exc} is not installed: {_INSTALL}"})
    except Exception as exc:  # noqa: BLE001  (the checks never fail the job: they say why they did not run)
        report = PoseReport({"pose_checks_error": f"{type(exc).__name__}: {exc}"[:500]})
    report.results["pose_checks_seconds"] = round(time.perf_counter() - started, 3)
    return report


def check_pose(ligand: Any, protein_pdb: bytes, reference: Any | None = None) -> PoseReport:
    """PoseBusters and ProLIF on one pose (an RDKit molecule with one conformer) in a protein (PDB
    text); ``reference``: the target's reference ligand, for the redock checks when it is the same
    molecule."""
    from rdkit import Chem

    ligand = Chem.AddHs(ligand, addCoords=True)
    protein = Chem.MolFromPDBBlock(protein_pdb.decode(), removeHs=False)
    if protein is None:
        raise ValueError("RDKit cannot read the receptor")
    checks = _posebusters(ligand, protein_pdb, reference)
    failed = [name for name, passed in checks.items() if passed is False]
    csv = io.StringIO()
    csv.write("check,passed\n")
    for name, passed in checks.items():
        csv.write(f"{name},{passed}\n")
    report = PoseReport(
        {"pose_checks_passed": not failed, "pose_checks_failed": failed},
        {"posebusters.csv": csv.getvalue().encode()},
    )
    try:  # independent of the checks: a protein ProLIF cannot read still has its pose checked
        contacts = _interactions(ligand, protein)
    except Exception as exc:  # noqa: BLE001  (said in the results, as the checks are)
        report.results["interactions_error"] = f"{type(exc).__name__}: {exc}"[:500]
        return report
    report.results["interactions"] = ", ".join(
        f"{c['chain']}:{c['residue']}{c['number']}:{c['interaction']}" for c in contacts
    )
    report.files["interactions.json"] = json.dumps(contacts, indent=1).encode()
    return report


def _posebusters(ligand: Any, protein_pdb: bytes, reference: Any | None) -> dict[str, bool | None]:
    import tempfile

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # posebusters and its pandas speak freely
        from posebusters import PoseBusters

        same = reference is not None and _same_molecule(ligand, reference)
        with tempfile.NamedTemporaryFile(suffix=".pdb") as receptor:
            receptor.write(protein_pdb)
            receptor.flush()
            frame = PoseBusters(config="redock" if same else "dock").bust(
                mol_pred=ligand, mol_true=reference if same else None, mol_cond=receptor.name
            )
    import numpy as np

    row = frame.iloc[0]
    meta = {"file", "molecule", "position"}
    return {
        str(name): bool(value) if isinstance(value, (bool, np.bool_)) else None
        for name, value in row.items()
        if name not in meta and not str(name).endswith("_loaded")
    }


def _same_molecule(a: Any, b: Any) -> bool:
    from rdkit import Chem

    def key(mol: Any) -> str:
        return str(Chem.MolToInchiKey(Chem.RemoveHs(mol))[:14])  # the connectivity layer

    try:
        return key(a) == key(b)
    except Exception:  # noqa: BLE001  (a reference RDKit cannot key is simply not the same molecule)
        return False


def _xyz(mol: Any, index: int) -> list[float]:
    position = mol.GetConformer().GetAtomPosition(index)
    return [round(position.x, 3), round(position.y, 3), round(position.z, 3)]


def _interactions(ligand: Any, protein: Any) -> list[dict[str, Any]]:
    from rdkit import Chem

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MDAnalysis, imported by ProLIF, warns about its own moves
        from prolif.fingerprint import Fingerprint
        from prolif.io.molecule_standardizer import MoleculeStandardizer
        from prolif.molecule import Molecule

        standard = MoleculeStandardizer()(Chem.RemoveHs(protein))
        protein_mol = Molecule(Chem.AddHs(standard, addCoords=True, addResidueInfo=True))
        ligand_mol = Molecule.from_rdkit(ligand)
        fingerprint = Fingerprint(list(INTERACTION_TYPES))
        # n_jobs=1: ProLIF would otherwise fork a process pool from the worker, whose heartbeat and
        # webhook threads may hold a lock at that moment; the child then hangs for good (seen: a job
        # stuck after its docking, once in a full suite run)
        fingerprint.run_from_iterable([ligand_mol], protein_mol, progress=False, n_jobs=1)
    contacts = []
    for (_, residue), found in fingerprint.ifp[0].items():
        for interaction, metadata in found.items():
            closest = min(metadata, key=lambda m: m["distance"])
            contact = {
                "chain": residue.chain,
                "residue": residue.name,
                "number": residue.number,
                "interaction": interaction,
                "distance_angstrom": round(closest["distance"], 2),
            }
            if interaction.startswith("HB"):  # the two heavy atoms, for the viewer's dashed line
                atoms = closest["parent_indices"]
                contact["ligand_xyz"] = _xyz(ligand_mol, atoms["ligand"][0])
                contact["protein_xyz"] = _xyz(protein_mol, atoms["protein"][0])
            contacts.append(contact)
    contacts.sort(key=lambda c: (c["interaction"] == "Hydrophobic", c["distance_angstrom"]))
    return contacts
