"""Validation of protein sequences, ligand SMILES (RDKit) and the names users give things."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from rdkit import Chem, RDLogger

__all__ = ["AMINO_ACIDS", "SmilesCheck", "check_smiles", "clean_protein_sequence", "control_character_in"]

RDLogger.DisableLog("rdApp.*")

# The 20 standard residues plus X (unknown), which Boltz-2 accepts.
AMINO_ACIDS = frozenset("ACDEFGHIKLMNPQRSTVWYX")
_WHITESPACE = re.compile(r"\s+")


def clean_protein_sequence(raw: str, max_length: int) -> str:
    """Return the sequence upper-cased without whitespace, or raise ValueError saying what is wrong."""
    sequence = _WHITESPACE.sub("", raw or "").upper()
    if not sequence:
        raise ValueError("protein_sequence is empty")
    bad = sorted({c for c in sequence if c not in AMINO_ACIDS})
    if bad:
        first = next(i for i, c in enumerate(sequence) if c not in AMINO_ACIDS)
        raise ValueError(
            f"protein_sequence has characters that are not amino-acid letters: {''.join(bad)!r} "
            f"(first at position {first + 1}); use one-letter codes ACDEFGHIKLMNPQRSTVWY (X for unknown)"
        )
    if len(sequence) > max_length:
        raise ValueError(f"protein_sequence has {len(sequence)} residues; the limit is {max_length}")
    return sequence


@dataclass(frozen=True)
class SmilesCheck:
    ok: bool
    reason: str = ""


# RDKit's MolFromSmiles parses, sanitises (every step), then removes explicit hydrogens and perceives
# stereochemistry, which refuse nothing more but cost about as much as the rest (≈110 µs against
# ≈60 µs for a trisubstituted benzene: most of a million-ligand upload's time). The check parses
# and sanitises, every step (tests/unit/test_properties.py: it accepts nothing a full parse refuses).
_UNREADABLE = "RDKit could not parse this SMILES (syntax, valence or aromaticity error)"


def check_smiles(smiles: str, max_heavy_atoms: int = 128) -> SmilesCheck:
    """Parse a SMILES with RDKit and sanitise it: the check every ligand passes before it is queued."""
    text = (smiles or "").strip()
    if not text:
        return SmilesCheck(False, "empty SMILES")
    if _WHITESPACE.search(text):
        return SmilesCheck(False, "SMILES contains whitespace")
    try:
        mol = Chem.MolFromSmiles(text, sanitize=False)
        if mol is None:
            return SmilesCheck(False, _UNREADABLE)
        try:
            Chem.SanitizeMol(mol)
        except Chem.MolSanitizeException:
            return SmilesCheck(False, _UNREADABLE)
        heavy = mol.GetNumHeavyAtoms()
        if heavy == 0:
            return SmilesCheck(False, "SMILES has no heavy atoms")
        if "." in text:  # several fragments (a salt, a solvent): the largest is the ligand
            heavy = max(
                sum(mol.GetAtomWithIdx(i).GetAtomicNum() > 1 for i in fragment) for fragment in Chem.GetMolFrags(mol)
            )
    except Exception as exc:  # noqa: BLE001  (RDKit raises, rather than returning None, for a few malformed inputs)
        return SmilesCheck(False, f"RDKit could not read this SMILES ({type(exc).__name__})")
    if heavy > max_heavy_atoms:
        return SmilesCheck(False, f"ligand has {heavy} heavy atoms; the limit is {max_heavy_atoms}")
    return SmilesCheck(True)


def control_character_in(text: str) -> str | None:
    """Where ``text`` holds a control character (C0, DEL, C1, or a Unicode line or paragraph
    separator), as ``U+000A at position 5``; None when it holds none. Names go into SDF title lines,
    CSV cells, mmCIF, logs and PostgreSQL text (which refuses NUL), where such a character would end
    or corrupt a record; every other character is kept."""
    for position, char in enumerate(text, start=1):
        if unicodedata.category(char) in ("Cc", "Zl", "Zp"):
            return f"U+{ord(char):04X} at position {position}"
    return None
