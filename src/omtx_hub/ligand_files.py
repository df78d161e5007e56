"""Reading ligand lists for screens: CSV (a smiles column, optional name column), SMILES files, SDF."""

from __future__ import annotations

import csv
from pathlib import Path

__all__ = ["read_ligands"]

_SMILES_COLUMNS = ("smiles", "ligand_smiles", "canonical_smiles")
_NAME_COLUMNS = ("name", "ligand_name", "id", "compound_id")


def read_ligands(path: Path) -> list[tuple[str, str]]:
    """Return (name, smiles) pairs; a ligand without a name is called ``ligand_{n}`` (1-based line)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path)
    if suffix in (".smi", ".smiles", ".txt"):
        return _read_smi(path)
    if suffix in (".sdf", ".sd"):
        return _read_sdf(path)
    raise ValueError(f"{path}: unknown ligand file type {suffix!r}; use .csv, .smi or .sdf")


def _read_csv(path: Path) -> list[tuple[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        fields = {f.strip().lower(): f for f in reader.fieldnames or []}
        smiles_col = next((fields[c] for c in _SMILES_COLUMNS if c in fields), None)
        if smiles_col is None:
            raise ValueError(f"{path}: no SMILES column (expected one of {', '.join(_SMILES_COLUMNS)})")
        name_col = next((fields[c] for c in _NAME_COLUMNS if c in fields), None)
        ligands = []
        for i, row in enumerate(reader, start=1):
            name = (row.get(name_col) or "").strip() if name_col else ""
            ligands.append((name or f"ligand_{i}", (row[smiles_col] or "").strip()))
        return ligands


def _read_smi(path: Path) -> list[tuple[str, str]]:
    ligands = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        parts = text.split(None, 1)
        name = parts[1].strip() if len(parts) > 1 else ""
        ligands.append((name or f"ligand_{i}", parts[0]))
    return ligands


def _read_sdf(path: Path) -> list[tuple[str, str]]:
    from rdkit import Chem

    ligands: list[tuple[str, str]] = []
    try:
        supplier = Chem.SDMolSupplier(str(path))
    except OSError as exc:  # RDKit refuses an empty or unreadable file this way
        raise ValueError(f"{path}: not a readable SDF file ({exc})") from exc
    for i, mol in enumerate(supplier, start=1):
        if mol is None:
            raise ValueError(f"{path}: record {i} could not be read by RDKit")
        name = mol.GetProp("_Name").strip() if mol.HasProp("_Name") else ""
        ligands.append((name or f"ligand_{i}", Chem.MolToSmiles(mol)))
    return ligands
