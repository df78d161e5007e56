"""Ligand preparation for docking: SMILES → largest fragment → dominant protonation state at a pH
(:mod:`omtx_hub.predictors.protonation`) → 3D → Meeko PDBQT.

Every step that can fail raises ``PermanentPredictionError`` with code ``ligand_preparation_failed``
and a message that says which step failed: the ligand's job fails, the batch goes on.
"""

from __future__ import annotations

from dataclasses import dataclass

from rdkit import Chem
from rdkit.Chem import AllChem
from rdkit.Chem.MolStandardize import rdMolStandardize

from omtx_hub.errors import PermanentPredictionError
from omtx_hub.predictors.protonation import dominant_state

__all__ = ["PreparedLigand", "prepare_ligand"]

_EMBED_ATTEMPTS = 3


@dataclass(frozen=True)
class PreparedLigand:
    smiles: str  # the form that was docked (largest fragment, protonated)
    formal_charge: int
    mol: Chem.Mol  # with hydrogens and one 3D conformer
    pdbqt: str
    heavy_atoms: int


def _fail(step: str, smiles: str, why: str) -> PermanentPredictionError:
    return PermanentPredictionError(
        f"ligand_preparation_failed: {step}: {why} (SMILES {smiles})", code="ligand_preparation_failed"
    )


def prepare_ligand(smiles: str, *, ph: float, protonate: bool, seed: int) -> PreparedLigand:
    from meeko import MoleculePreparation, PDBQTWriterLegacy

    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise _fail("parse", smiles, "RDKit could not parse the SMILES")
    mol = rdMolStandardize.LargestFragmentChooser(preferOrganic=True).choose(mol)
    form = Chem.MolToSmiles(mol)
    if protonate:
        try:
            form = dominant_state(form, ph).smiles
        except (ValueError, RuntimeError) as exc:  # RDKit refuses a state it cannot sanitise
            raise _fail("protonation", smiles, str(exc)) from exc
        mol = Chem.MolFromSmiles(form)
        if mol is None:
            raise _fail("protonation", smiles, f"the protonated form {form!r} does not parse")
    mol = Chem.AddHs(mol)
    _embed(mol, seed, smiles)
    if AllChem.MMFFHasAllMoleculeParams(mol):
        AllChem.MMFFOptimizeMolecule(mol, maxIters=2000)
    elif AllChem.UFFHasAllMoleculeParams(mol):
        AllChem.UFFOptimizeMolecule(mol, maxIters=2000)
    try:
        setups = MoleculePreparation().prepare(mol)
        pdbqt, ok, error = PDBQTWriterLegacy.write_string(setups[0])
    except Exception as exc:  # Meeko raises assorted errors for chemistry it cannot type
        raise _fail("Meeko setup", smiles, f"{type(exc).__name__}: {exc}") from exc
    if not ok:
        raise _fail("Meeko PDBQT", smiles, error.strip() or "the writer refused the molecule")
    return PreparedLigand(
        smiles=form, formal_charge=Chem.GetFormalCharge(mol), mol=mol, pdbqt=pdbqt, heavy_atoms=mol.GetNumHeavyAtoms()
    )


def _embed(mol: Chem.Mol, seed: int, smiles: str) -> None:
    params = AllChem.ETKDGv3()
    params.randomSeed = seed
    for attempt in range(_EMBED_ATTEMPTS):
        if attempt == _EMBED_ATTEMPTS - 1:
            params.useRandomCoords = True
        if AllChem.EmbedMolecule(mol, params) == 0:
            return
        params.randomSeed = seed + attempt + 1
    raise _fail("3D embedding", smiles, f"RDKit's ETKDG found no 3D conformer in {_EMBED_ATTEMPTS} tries")
