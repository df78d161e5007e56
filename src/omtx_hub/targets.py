"""Docking targets: a receptor structure read once, cleaned, and a binding site resolved to a box.

A binding site is one of

- ``box``: an explicit center and size (Å);
- ``ligand``: a box around a reference ligand (SDF) plus ``padding`` on each side;
- ``residues``: a box around pocket residues (``"A:315"``, chain and number) plus ``padding``;
- ``blind``: the whole receptor plus ``padding`` (slower and less reliable: a warning says so).

Every check happens here, before anything is stored: a file that is not a structure, a receptor
without protein, a box that holds no receptor atom or has a non-positive size, unknown residues.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import gemmi
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from rdkit import Chem

from omtx_hub.errors import InvalidInput

__all__ = [
    "POCKET_DISTANCE",
    "BindingSite",
    "PreparedTarget",
    "hetero_residues",
    "msa_files",
    "prepare_target_files",
    "read_msa",
    "sequence_chains",
]

MAX_BOX_SIDE = 126.0  # Å; Vina's grids grow with the cube of this
_RESIDUE = re.compile(r"^\s*([A-Za-z0-9]{1,4})\s*:\s*(-?\d+)([A-Za-z]?)\s*$")


class BindingSite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["box", "ligand", "residues", "blind"]
    center: list[float] | None = Field(None, description="Box center x, y, z (Å); mode box.")
    size: list[float] | None = Field(None, description="Box edge lengths x, y, z (Å); mode box.")
    residues: list[str] | None = Field(None, description='Pocket residues as "CHAIN:NUMBER"; mode residues.')
    padding: float = Field(5.0, ge=0, le=20, description="Å added on each side; modes ligand, residues, blind.")

    @field_validator("center", "size")
    @classmethod
    def _three(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and len(value) != 3:
            raise ValueError("needs exactly three numbers (x, y, z)")
        return value


@dataclass
class PreparedTarget:
    receptor_pdb: bytes
    protein_sequence: str
    chains: list[dict[str, Any]]
    site: dict[str, Any]
    reference_ligand_sdf: bytes | None = None
    warnings: list[str] = field(default_factory=list)
    receptor_pdbqt: bytes | None = None  # an uploaded, already prepared receptor: Vina docks into it as given


def _invalid(message: str, code: str, **details: Any) -> InvalidInput:
    return InvalidInput(message, code=code, details=details or None)


_PDBQT_CHARGE = re.compile(r"^\s*[+-]?\d+\.\d{3}$")
_BACKBONE = frozenset({"N", "CA", "C", "O", "OXT"})
_MIN_KEPT_FRACTION = 0.5  # of a receptor's protein heavy atoms, after removing H, altlocs, waters, ligands


def _looks_like_pdbqt(text: str) -> bool:
    """AutoDock's PDBQT: ATOM lines with a partial charge in columns 71-76 and an atom type after it,
    whatever the file is called. (In a PDB file those columns are blank or a segment id.)"""
    atoms = [line for line in text.splitlines() if line.startswith(("ATOM  ", "HETATM"))]
    typed = sum(1 for line in atoms if len(line) >= 78 and _PDBQT_CHARGE.match(line[70:76]) and line[77:79].strip())
    return bool(atoms) and typed > len(atoms) / 2


def _protein_heavy_atoms(structure: gemmi.Structure, *, by_name: bool) -> int:
    """Heavy atoms of amino-acid residues, told apart from hydrogens (and deuterium) by element, or
    (``by_name``) by atom name as PDB names them (H… or D…, after any leading digit), which does not
    depend on the element columns: no standard amino-acid heavy atom's name starts with H or D."""
    count = 0
    for chain in structure[0]:
        for res in chain:
            info = gemmi.find_tabulated_residue(res.name)
            if info is None or not info.is_amino_acid():
                continue
            for atom in res:
                hydrogen = atom.name.lstrip("0123456789").startswith(("H", "D")) if by_name else atom.is_hydrogen()
                count += not hydrogen
    return count


# AutoDock atom types → elements (the PDBQT columns 78-79 hold the type, not the element)
_AUTODOCK_ELEMENTS = {
    "A": "C",
    "C": "C",
    "N": "N",
    "NA": "N",
    "NS": "N",
    "OA": "O",
    "OS": "O",
    "SA": "S",
    "S": "S",
    "H": "H",
    "HD": "H",
    "HS": "H",
    "P": "P",
    "F": "F",
    "CL": "Cl",
    "BR": "Br",
    "I": "I",
    "MG": "Mg",
    "ZN": "Zn",
    "CA": "Ca",
    "FE": "Fe",
    "MN": "Mn",
    "CU": "Cu",
    "NI": "Ni",
    "CO": "Co",
    "K": "K",
    "NA+": "Na",
    "SE": "Se",
}


def is_pdbqt(data: bytes, filename: str) -> bool:
    """A PDBQT receptor: named .pdbqt, or a .pdb whose columns say PDBQT."""
    suffix = filename.lower().rsplit(".", 1)[-1] if "." in filename else ""
    return suffix == "pdbqt" or (suffix in ("pdb", "ent") and _looks_like_pdbqt(data.decode("utf-8", errors="replace")))


def _pdbqt_as_pdb(text: str, filename: str) -> str:
    """A PDBQT receptor as PDB text for reading (element from the AutoDock type, charge and type
    dropped). Every ATOM/HETATM line must carry a charge and a known type: 422 naming the first line
    that does not."""
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.startswith(("ATOM  ", "HETATM")):
            if line.startswith(("TER", "END", "MODEL", "ENDMDL")):
                out.append(line)
            continue
        autodock_type = line[77:79].strip().upper() if len(line) >= 78 else ""
        if not _PDBQT_CHARGE.match(line[70:76]) or autodock_type not in _AUTODOCK_ELEMENTS:
            raise _invalid(
                f"receptor file {filename!r} line {number}: not a PDBQT atom line (a partial charge in columns "
                f"71-76 and an AutoDock atom type in 78-79 expected): {line[:80]!r}",
                "invalid_receptor",
                format="pdbqt",
                line=number,
            )
        out.append(f"{line[:66].ljust(76)}{_AUTODOCK_ELEMENTS[autodock_type].upper():>2}")
    return "\n".join(out) + "\n"


def read_receptor(data: bytes, filename: str) -> gemmi.Structure:
    """Parse a PDB, mmCIF or PDBQT receptor and keep its protein: first model, no water, ligands, H
    or altlocs."""
    suffix = filename.lower().rsplit(".", 1)[-1] if "." in filename else ""
    text = data.decode("utf-8", errors="replace")
    if is_pdbqt(data, filename):
        text, suffix = _pdbqt_as_pdb(text, filename), "pdb"
    try:
        if suffix in ("cif", "mmcif"):
            structure = gemmi.make_structure_from_block(gemmi.cif.read_string(text).sole_block())
        elif suffix in ("pdb", "ent"):
            structure = gemmi.read_pdb_string(text)
        else:
            raise _invalid(f"receptor file {filename!r}: use a .pdb, .cif (mmCIF) or .pdbqt file", "invalid_receptor")
    except (RuntimeError, ValueError) as exc:
        if isinstance(exc, InvalidInput):
            raise
        raise _invalid(f"receptor file {filename!r} is not a readable structure: {exc}", "invalid_receptor") from exc
    if len(structure) == 0:
        raise _invalid(f"receptor file {filename!r} holds no atoms", "invalid_receptor")
    while len(structure) > 1:
        del structure[1]
    structure.setup_entities()
    structure.remove_ligands_and_waters()
    structure.remove_alternative_conformations()
    named_heavy = _protein_heavy_atoms(structure, by_name=True)
    structure.remove_hydrogens()
    structure.remove_empty_chains()
    kept = _protein_heavy_atoms(structure, by_name=False)
    if named_heavy and kept < _MIN_KEPT_FRACTION * named_heavy:
        raise _invalid(
            f"receptor file {filename!r}: cleaning kept {kept} of its {named_heavy} protein heavy atoms (the rest "
            "are marked as hydrogens in the element columns 77-78); check those columns, or export the file again",
            "invalid_receptor",
            kept=kept,
            heavy_atoms=named_heavy,
        )
    amino = sum(
        1
        for chain in structure[0]
        for res in chain
        if gemmi.find_tabulated_residue(res.name) is not None and gemmi.find_tabulated_residue(res.name).is_amino_acid()
    )
    if amino < 10:
        raise _invalid(
            f"receptor file {filename!r} has {amino} amino-acid residues; a docking receptor needs a protein chain",
            "invalid_receptor",
        )
    return structure


def _chains(structure: gemmi.Structure) -> list[dict[str, Any]]:
    """The protein chains in file order: the sequence of the residues the structure has (gaps are not
    filled) and their author numbering (``"315"``, ``"100A"``), which maps a residue to its 1-based
    position in that sequence (what Boltz-2 is given)."""
    chains = []
    for chain in structure[0]:
        polymer = chain.get_polymer()
        if len(polymer) == 0:
            continue
        sequence = gemmi.one_letter_code([r.name for r in polymer]).upper().replace("-", "X")
        numbering = [f"{r.seqid.num}{r.seqid.icode.strip()}" for r in polymer]
        chains.append({"chain": chain.name, "sequence": sequence, "residues": len(polymer), "numbering": numbering})
    return chains


POCKET_DISTANCE = 6.0  # Å: a residue with a heavy atom this close to the reference ligand is in the pocket


def _pocket_labels(structure: gemmi.Structure, near: np.ndarray | None, low: np.ndarray, high: np.ndarray) -> list[str]:
    """Pocket residues of the protein chains as ``"A:315"``: those with a heavy atom within
    ``POCKET_DISTANCE`` of a point of ``near`` (the reference ligand), or else inside the box."""
    labels = []
    for chain in structure[0]:
        for res in chain.get_polymer():
            xyz = np.array([a.pos.tolist() for a in res])
            if near is not None:
                hit = bool((np.linalg.norm(xyz[:, None, :] - near[None, :, :], axis=2) <= POCKET_DISTANCE).any())
            else:
                hit = bool(np.all((xyz >= low) & (xyz <= high), axis=1).any())
            if hit:
                labels.append(f"{chain.name}:{res.seqid.num}{res.seqid.icode.strip()}")
    return labels


def hetero_residues(data: bytes, filename: str, codes: list[str]) -> list[str]:
    """The receptor's non-polymer residues named in ``codes`` (``keep_hetero``), one entry per copy,
    in file order; 422 naming a code the file does not hold."""
    wanted = [c.strip().upper() for c in codes if c.strip()]
    text = data.decode("utf-8", errors="replace")
    if is_pdbqt(data, filename):
        text = _pdbqt_as_pdb(text, filename)
    suffix = filename.lower().rsplit(".", 1)[-1]
    structure = (
        gemmi.make_structure_from_block(gemmi.cif.read_string(text).sole_block())
        if suffix in ("cif", "mmcif")
        else gemmi.read_pdb_string(text)
    )
    structure.setup_entities()
    found = [
        res.name
        for chain in structure[0]
        for res in chain
        if res.name in wanted and res.het_flag == "H" and not res.is_water()
    ]
    missing = [c for c in wanted if c not in found]
    if missing:
        raise _invalid(
            f"keep_hetero: the receptor has no hetero residue named {', '.join(missing)}",
            "invalid_cofactors",
            missing=missing,
        )
    return found


def _coords(structure: gemmi.Structure) -> np.ndarray:
    return np.array([a.pos.tolist() for chain in structure[0] for res in chain for a in res])


def _box_around(points: np.ndarray, padding: float) -> tuple[list[float], list[float]]:
    low, high = points.min(axis=0), points.max(axis=0)
    center = (low + high) / 2
    size = (high - low) + 2 * padding
    return [round(float(v), 3) for v in center], [round(float(v), 3) for v in size]


def read_reference_ligand(data: bytes, filename: str) -> Chem.Mol:
    if not filename.lower().endswith((".sdf", ".mol", ".sd")):
        raise _invalid(
            f"reference ligand {filename!r}: use an SDF/MOL file with 3D coordinates", "invalid_reference_ligand"
        )
    supplier = Chem.SDMolSupplier()
    supplier.SetData(data.decode("utf-8", errors="replace"), removeHs=False)
    mol = next(iter(supplier), None) if len(supplier) else None
    if mol is None or mol.GetNumConformers() == 0 or not mol.GetConformer().Is3D():
        raise _invalid(f"reference ligand {filename!r} is not a readable 3D molecule", "invalid_reference_ligand")
    return mol


def _residue_points(structure: gemmi.Structure, specs: list[str]) -> np.ndarray:
    wanted: list[tuple[str | Any, ...]] = []
    bad: list[str] = []
    for spec in specs:
        m = _RESIDUE.match(spec)
        if m:
            wanted.append(m.groups())
        else:
            bad.append(spec)
    if bad:
        raise _invalid(f"residues must look like 'A:315'; got {bad}", "invalid_binding_site", residues=bad)
    points, missing = [], []
    for chain_id, number, icode in wanted:
        found = False
        for chain in structure[0]:
            if chain.name != chain_id:
                continue
            for res in chain:
                if res.seqid.num == int(number) and res.seqid.icode.strip() == icode:
                    points += [a.pos.tolist() for a in res]
                    found = True
        if not found:
            missing.append(f"{chain_id}:{number}{icode}")
    if missing:
        raise _invalid(f"residues not in the receptor: {', '.join(missing)}", "invalid_binding_site", missing=missing)
    return np.array(points)


def repair_missing_atoms(structure: gemmi.Structure) -> tuple[gemmi.Structure, list[dict[str, Any]]]:
    """Rebuild missing heavy atoms of the residues a structure has (PDBFixer: side chains cut short in
    the deposited model, a missing terminal oxygen); missing residues are not modelled. Returns the
    repaired structure and what was rebuilt: ``[{"residue": "A:THR315", "atoms": ["CG2", "OG1"]}]``."""
    try:
        from openmm.app import PDBFile
        from pdbfixer import PDBFixer
    except ImportError as exc:
        raise _invalid(
            "repair needs PDBFixer, which is not installed here: pip install 'omtx-hub[repair]'",
            "repair_unavailable",
        ) from exc
    fixer = PDBFixer(pdbfile=io.StringIO(structure.make_pdb_string()))
    fixer.findMissingResidues()
    fixer.missingResidues = {}  # gaps stay gaps: modelling loops is not a docking receptor's repair
    fixer.findMissingAtoms()
    rebuilt = [
        {"residue": f"{res.chain.id}:{res.name}{res.id}", "atoms": [a.name for a in atoms]}
        for res, atoms in fixer.missingAtoms.items()
    ] + [
        {"residue": f"{res.chain.id}:{res.name}{res.id}", "atoms": list(atoms)}
        for res, atoms in fixer.missingTerminals.items()
    ]
    fixer.addMissingAtoms()
    out = io.StringIO()
    PDBFile.writeFile(fixer.topology, fixer.positions, out, keepIds=True)
    repaired = gemmi.read_pdb_string(out.getvalue())
    repaired.setup_entities()
    repaired.remove_hydrogens()
    return repaired, rebuilt


def prepare_target_files(
    receptor: bytes,
    receptor_filename: str,
    site: dict[str, Any],
    reference_ligand: bytes | None = None,
    reference_filename: str = "reference.sdf",
    *,
    repair: bool = False,
) -> PreparedTarget:
    """Validate everything and resolve the binding site to a box. Raises InvalidInput on any problem."""
    try:
        spec = BindingSite.model_validate(site)
    except ValidationError as exc:
        problems = [{"field": ".".join(str(p) for p in e["loc"]), "reason": e["msg"]} for e in exc.errors()]
        raise _invalid(
            "invalid binding site: " + "; ".join(f"{p['field']}: {p['reason']}" for p in problems),
            "invalid_binding_site",
            problems=problems,
        ) from exc
    structure = read_receptor(receptor, receptor_filename)
    warnings: list[str] = []
    rebuilt: list[dict[str, Any]] = []
    if repair:
        if is_pdbqt(receptor, receptor_filename):
            raise _invalid(
                "a prepared PDBQT receptor is docked as uploaded: repair it before preparing it", "invalid_receptor"
            )
        structure, rebuilt = repair_missing_atoms(structure)
        count = sum(len(r["atoms"]) for r in rebuilt)
        warnings.append(
            f"PDBFixer rebuilt {count} missing atoms in {len(rebuilt)} residues"
            + (": " + "; ".join(f"{r['residue']} ({', '.join(r['atoms'])})" for r in rebuilt[:20]) if rebuilt else "")
        )
    atoms = _coords(structure)
    reference = read_reference_ligand(reference_ligand, reference_filename) if reference_ligand else None

    if spec.mode == "box":
        if spec.center is None or spec.size is None:
            raise _invalid("mode 'box' needs center and size", "invalid_binding_site")
        center, size = [float(v) for v in spec.center], [float(v) for v in spec.size]
    elif spec.mode == "ligand":
        if reference is None:
            raise _invalid("mode 'ligand' needs a reference ligand file", "invalid_binding_site")
        heavy = Chem.RemoveHs(reference)
        center, size = _box_around(np.array(heavy.GetConformer().GetPositions()), spec.padding)
    elif spec.mode == "residues":
        if not spec.residues:
            raise _invalid("mode 'residues' needs a list of residues", "invalid_binding_site")
        center, size = _box_around(_residue_points(structure, spec.residues), spec.padding)
    else:
        center, size = _box_around(atoms, spec.padding)
        warnings.append(
            "blind docking: the box covers the whole receptor; it is slower (larger maps, more search) "
            "and less reliable than a box on a known pocket; raise exhaustiveness (16–32)"
        )
    if any(s <= 0 for s in size):
        raise _invalid(f"box size must be positive on every axis; got {size}", "invalid_binding_site")
    if any(s > MAX_BOX_SIDE for s in size):
        raise _invalid(f"box size {size} exceeds {MAX_BOX_SIDE} Å on an axis", "invalid_binding_site")
    low, high = np.array(center) - np.array(size) / 2, np.array(center) + np.array(size) / 2
    in_box = np.all((atoms >= low) & (atoms <= high), axis=1)
    inside = int(in_box.sum())
    if inside == 0:
        raise _invalid(
            f"the box (center {center}, size {size}) holds no receptor atom: it is outside the receptor",
            "box_outside_receptor",
        )
    names = [a.name for chain in structure[0] for res in chain for a in res]
    if not any(name not in _BACKBONE for name, inside_box in zip(names, in_box, strict=True) if inside_box):
        raise _invalid(
            f"the box (center {center}, size {size}) holds {inside} receptor atoms, all of them backbone: the "
            "binding site has no side chains to dock against (a receptor stripped to its backbone?)",
            "binding_site_without_side_chains",
        )
    chains = _chains(structure)
    if spec.mode == "residues":
        pocket = [str(r).replace(" ", "") for r in spec.residues or []]
    elif spec.mode == "ligand" and reference is not None:
        pocket = _pocket_labels(structure, np.array(Chem.RemoveHs(reference).GetConformer().GetPositions()), low, high)
    elif spec.mode == "box":
        pocket = _pocket_labels(structure, None, low, high)
    else:
        pocket = []
    longest = max(chains, key=lambda c: c["residues"]) if chains else {"sequence": ""}
    sdf = None
    if reference is not None:
        out = io.StringIO()
        with Chem.SDWriter(out) as writer:
            writer.write(reference)
        sdf = out.getvalue().encode()
    pdbqt = None
    if is_pdbqt(receptor, receptor_filename):
        pdbqt = receptor
        warnings.append(
            "prepared PDBQT receptor: Vina docks into it as uploaded (its charges and atom types, its "
            "hydrogens); its protein atoms give the chains, the box checks and the interaction labels"
        )
    return PreparedTarget(
        receptor_pdbqt=pdbqt,
        receptor_pdb=structure.make_pdb_string().encode(),
        protein_sequence=longest["sequence"],
        chains=chains,
        site={
            "mode": spec.mode,
            "center": center,
            "size": size,
            "padding": spec.padding,
            "residues": spec.residues,
            "receptor_atoms_in_box": inside,
            "pocket_residues": pocket,
            **({"repaired": rebuilt} if repair else {}),
        },
        reference_ligand_sdf=sdf,
        warnings=warnings,
    )


def read_msa(data: bytes) -> tuple[str, int]:
    """Check an uploaded MSA (.a3m): UTF-8 text, FASTA-like. Returns its first (query) sequence,
    gaps removed, and its number of sequences."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _invalid("the MSA file is not UTF-8 text (expected .a3m)", "invalid_msa") from exc
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if not lines or not lines[0].startswith(">"):
        raise _invalid("the MSA file is not in a3m format: it must start with a '>' header line", "invalid_msa")
    query = []
    for line in lines[1:]:
        if line.startswith(">"):
            break
        query.append(line)
    return "".join(query).replace("-", "").upper(), sum(1 for line in lines if line.startswith(">"))


def msa_files(msas: list[bytes], chains: list[dict[str, Any]]) -> tuple[dict[str, bytes], list[str]]:
    """Match uploaded MSAs to the target's chains by their query sequence: ``msa_<chain>.a3m`` for the
    first chain of each sequence (its copies share it). 422 for an MSA that matches no chain, or two
    for one sequence. Returns the files and a note for each."""
    files: dict[str, bytes] = {}
    notes: list[str] = []
    for number, data in enumerate(msas, start=1):
        query, depth = read_msa(data)
        chain = next((c for c in chains if c["sequence"] == query), None)
        if chain is None:
            raise _invalid(
                f"MSA {number}: its first (query) sequence ({len(query)} residues) is not the sequence of any of "
                f"the target's chains ({', '.join(c['chain'] for c in chains)})",
                "msa_mismatch",
            )
        name = f"msa_{chain['chain']}.a3m"
        if name in files:
            raise _invalid(f"MSA {number}: chain {chain['chain']} already has an MSA", "msa_mismatch")
        files[name] = data
        notes.append(f"MSA uploaded for chain {chain['chain']}: {depth} sequences (Boltz-2 uses it with msa='auto')")
    return files, notes


def sequence_chains(given: list[dict[str, Any]], clean: Callable[[str], str], max_chains: int) -> list[dict[str, Any]]:
    """The chains of a sequence target from ``[{"id": "A", "sequence": "…", "copies": 2}]``: each copy
    after the first takes the next capital letter no chain uses. 422 for a bad id, a repeated id, a
    bad sequence or too many chains."""
    chains: list[dict[str, Any]] = []
    problems: list[str] = []
    ids = [str(c.get("id", "")).strip() for c in given]
    for number, (spec, chain_id) in enumerate(zip(given, ids, strict=True), start=1):
        unknown = set(spec) - {"id", "sequence", "copies"}
        copies = spec.get("copies", 1)
        if unknown:
            problems.append(f"chain {number}: unknown field(s) {sorted(unknown)} (id, sequence, copies)")
        if not re.fullmatch(r"[A-Za-z0-9]{1,4}", chain_id):
            problems.append(f"chain {number}: id {chain_id!r} must be 1 to 4 letters or digits")
        if ids.count(chain_id) > 1:
            problems.append(f"chain {number}: id {chain_id!r} is used twice")
        if not isinstance(copies, int) or isinstance(copies, bool) or not 1 <= copies <= max_chains:
            problems.append(f"chain {number}: copies must be a whole number from 1 to {max_chains}")
            copies = 1
        try:
            sequence = clean(str(spec.get("sequence", "")))
        except ValueError as exc:
            problems.append(f"chain {number}: {exc}")
            continue
        chains.append({"chain": chain_id, "sequence": sequence, "residues": len(sequence), "copies": copies})
    total = sum(c["copies"] for c in chains)
    if total > max_chains:
        problems.append(f"{total} protein chains; at most {max_chains} are supported")
    if not given:
        problems.append("give at least one chain")
    if problems:
        raise _invalid("invalid chains: " + "; ".join(problems), "invalid_chains", problems=problems)
    taken = set(ids)
    free = iter(c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in taken)
    expanded: list[dict[str, Any]] = []
    for chain in chains:
        copies = chain.pop("copies")
        expanded.append(chain)
        expanded.extend({**chain, "chain": next(free), "copy_of": chain["chain"]} for _ in range(copies - 1))
    return expanded
