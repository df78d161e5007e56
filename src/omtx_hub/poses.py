"""A job's best pose and the protein it sits in, read from the job's files: Vina's first pose
(``poses.sdf``) against the target's receptor, or the ligand and the protein chains of a co-folded
``structure.cif`` (model 0; the screened ligand is the residue boltz names ``LIG1``, whatever its
chain, its bonds rebuilt from the job's SMILES).

Used by the SDF export and by the pose checks. Errors are ``ValueError`` saying why there is no pose.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

__all__ = ["LIGAND_RESIDUE", "best_pose", "protein_pdb_of_structure"]

LIGAND_RESIDUE = "LIG1"  # boltz's name for the first SMILES ligand: the boltz2 predictor puts the screened one first


def best_pose(read: Callable[[str], bytes], files: Collection[str], smiles: str) -> Any:
    """The best pose as an RDKit molecule (hydrogens as the file has them). ``read(name)`` gives a
    file's bytes, ``files`` the names the job has."""
    from rdkit import Chem

    if "poses.sdf" in files:
        supplier = Chem.SDMolSupplier()
        supplier.SetData(read("poses.sdf").decode(), removeHs=False)
        first = supplier[0] if len(supplier) else None
        if first is None:
            raise ValueError("poses.sdf holds no record RDKit can read")
        return first
    if "structure.cif" not in files:
        raise ValueError("the job has no structure file")
    if smiles.lower().startswith("ccd:"):
        raise ValueError("a CCD ligand has no SMILES to rebuild its bonds from")
    import gemmi
    from rdkit.Chem import AllChem

    structure = gemmi.read_structure_string(read("structure.cif").decode())
    chain = next((c for c in structure[0] if any(r.name == LIGAND_RESIDUE for r in c)), None)
    if chain is None:
        raise ValueError(f"structure.cif has no ligand residue {LIGAND_RESIDUE}")
    template = Chem.MolFromSmiles(smiles)
    template = max(Chem.GetMolFrags(template, asMols=True), key=lambda m: m.GetNumHeavyAtoms())
    atoms = [a for r in chain if r.name == LIGAND_RESIDUE for a in r if a.element.name != "H"]
    if len(atoms) != template.GetNumAtoms():
        raise ValueError(f"{LIGAND_RESIDUE} has {len(atoms)} heavy atoms, the SMILES {template.GetNumAtoms()}")
    mol = Chem.Mol(template)
    conformer = Chem.Conformer(mol.GetNumAtoms())
    for i, atom in enumerate(atoms):
        conformer.SetAtomPosition(i, (atom.pos.x, atom.pos.y, atom.pos.z))
    mol.RemoveAllConformers()
    mol.AddConformer(conformer, assignId=True)
    AllChem.AssignStereochemistryFrom3D(mol)
    return mol


def protein_pdb_of_structure(cif: bytes) -> bytes:
    """The polymer chains of a co-folded structure (model 0) as PDB text: no ligand, no water."""
    import gemmi

    structure = gemmi.read_structure_string(cif.decode())
    structure.setup_entities()
    for model_index in range(len(structure) - 1, 0, -1):
        del structure[model_index]
    structure.remove_ligands_and_waters()
    structure.remove_empty_chains()
    if not any(len(chain) for chain in structure[0]):
        raise ValueError("structure.cif has no protein chain")
    text: str = structure.make_pdb_string(gemmi.PdbWriteOptions(minimal=True))
    return text.encode()
