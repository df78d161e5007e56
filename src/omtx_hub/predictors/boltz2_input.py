"""What a Boltz-2 job gives boltz, decided from its target and its parameters: pure data, no boltz import.

The API checks a job with these functions before anything is queued, and the worker builds the
boltz input document with the same ones, so what was checked is what boltz gets.

A co-folding *plan* is the part of a job's ``target`` input that describes the complex (the hub
writes it at submission; ``docs/boltz2.md`` shows one):

- ``chains``: the protein chains in the receptor's order, ``[{"id": "A", "sequence": "…"}]``;
- ``cofactors``: ``[{"ccd": "ATP"}, {"smiles": "[Zn+2]"}]``, co-folded with every ligand;
- ``pocket``: the pocket residues as boltz positions, ``[["A", 201], …]`` (1-based, in the sequence
  boltz is given), with ``pocket_residues`` the same residues in the target's own numbering;
- ``covalent``: a receptor atom ``{"chain", "position", "residue", "atom"}`` and the ligand atom
  (``ligand_atom``: a SMARTS pattern or a heavy-atom index);
- ``template``: whether the target has a receptor structure that can serve as a template.

Chain ids: the protein chains keep the hub's ids (the receptor's own); the screened ligand takes
the first free letter of the alphabet after them, then each cofactor the next free one. The
screened ligand is the first SMILES ligand in the document, so boltz names its residue ``LIG1``
whatever cofactors follow (SMILES cofactors are ``LIG2``, ``LIG3``…, CCD cofactors keep their code).
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from typing import Any

from omtx_hub.errors import InvalidInput
from omtx_hub.predictors.boltz2_spec import Boltz2Params

__all__ = [
    "AMINO_ACID_ATOMS",
    "MAX_COFACTORS",
    "MAX_PROTEIN_CHAINS",
    "boltz_atom_names",
    "boltz_document",
    "chain_letters",
    "cofactor_entries",
    "complex_plan",
    "ligand_atom",
    "resolve_residues",
]

MAX_PROTEIN_CHAINS = 12
MAX_COFACTORS = 8
_CCD = re.compile(r"[A-Z0-9]{1,5}")
_RESIDUE = re.compile(r"^\s*([A-Za-z0-9]{1,4})\s*:\s*(-?\d+)([A-Za-z]?)\s*$")

#: Heavy atoms of the standard amino acids, by their PDB/CCD names (what boltz builds for a protein
#: residue, minus the terminal OXT): the receptor atom of a covalent bond must be one of these.
AMINO_ACID_ATOMS: dict[str, tuple[str, ...]] = {
    "A": ("N", "CA", "C", "O", "CB"),
    "R": ("N", "CA", "C", "O", "CB", "CG", "CD", "NE", "CZ", "NH1", "NH2"),
    "N": ("N", "CA", "C", "O", "CB", "CG", "OD1", "ND2"),
    "D": ("N", "CA", "C", "O", "CB", "CG", "OD1", "OD2"),
    "C": ("N", "CA", "C", "O", "CB", "SG"),
    "Q": ("N", "CA", "C", "O", "CB", "CG", "CD", "OE1", "NE2"),
    "E": ("N", "CA", "C", "O", "CB", "CG", "CD", "OE1", "OE2"),
    "G": ("N", "CA", "C", "O"),
    "H": ("N", "CA", "C", "O", "CB", "CG", "ND1", "CD2", "CE1", "NE2"),
    "I": ("N", "CA", "C", "O", "CB", "CG1", "CG2", "CD1"),
    "L": ("N", "CA", "C", "O", "CB", "CG", "CD1", "CD2"),
    "K": ("N", "CA", "C", "O", "CB", "CG", "CD", "CE", "NZ"),
    "M": ("N", "CA", "C", "O", "CB", "CG", "SD", "CE"),
    "F": ("N", "CA", "C", "O", "CB", "CG", "CD1", "CD2", "CE1", "CE2", "CZ"),
    "P": ("N", "CA", "C", "O", "CB", "CG", "CD"),
    "S": ("N", "CA", "C", "O", "CB", "OG"),
    "T": ("N", "CA", "C", "O", "CB", "OG1", "CG2"),
    "W": ("N", "CA", "C", "O", "CB", "CG", "CD1", "CD2", "NE1", "CE2", "CE3", "CZ2", "CZ3", "CH2"),
    "Y": ("N", "CA", "C", "O", "CB", "CG", "CD1", "CD2", "CE1", "CE2", "CZ", "OH"),
    "V": ("N", "CA", "C", "O", "CB", "CG1", "CG2"),
}


def _invalid_param(param: str, problems: list[str]) -> InvalidInput:
    return InvalidInput(
        f"invalid {param}: " + "; ".join(problems),
        code="invalid_params",
        details={"param": param, "problems": problems},
    )


def _chain_msa(chain: dict[str, Any], chains: list[dict[str, Any]], record: dict[str, Any], policy: str) -> str:
    """One chain's MSA: ``msa_<chain>.a3m`` uploaded for its sequence (or the single-chain ``msa.a3m`` of
    a target made before multimers), else ``empty`` or ``server`` as the job's policy says."""
    files = record.get("files") or {}
    if policy != "empty":
        for other in chains:
            name = f"msa_{other['chain']}.a3m"
            if other["sequence"] == chain["sequence"] and name in files:
                return name
        if "msa.a3m" in files and chain["sequence"] == record.get("protein_sequence"):
            return "msa.a3m"
    return "server" if policy == "server" else "empty"


def complex_plan(
    params: dict[str, Any], record: dict[str, Any] | None, sequence: str, target_input: dict[str, Any]
) -> dict[str, Any]:
    """The plan of one submission (see the module docstring): the complex a job co-folds, from the
    target ``record`` (None: a bare ``sequence``), the checked ``params`` and the job's target input
    so far (its ``files`` and ``msa`` policy). Raises InvalidInput (422 ``invalid_params``, naming
    the parameter and each problem) for anything boltz would refuse or silently ignore."""
    p = Boltz2Params.model_validate(params)
    plan: dict[str, Any] = {}
    own = record is not None and sequence == record["protein_sequence"]
    chains = (record or {}).get("chains") if own else None
    if not chains:
        chains = [{"chain": "A", "sequence": sequence}]
    if len(chains) > MAX_PROTEIN_CHAINS:  # a receptor with more chains still serves docking
        raise _invalid_param(
            "target",
            [
                f"the target has {len(chains)} protein chains; Boltz-2 jobs take at most {MAX_PROTEIN_CHAINS} "
                "(make a target of the chains near the binding site)"
            ],
        )
    policy = target_input.get("msa", "empty")
    source = record if own and record is not None else {}
    plan["chains"] = [
        {"id": c["chain"], "sequence": c["sequence"], "msa": _chain_msa(c, chains, source, policy)} for c in chains
    ]
    plan["cofactors"] = ((record or {}).get("cofactors") or []) if own else []
    site = (record or {}).get("site") if own else None
    if (record or {}).get("kind") == "receptor" and not all("numbering" in c for c in chains):
        # a receptor target made before its residue numbering was recorded: author numbers cannot be mapped
        unmappable = [
            name for name, given in (("pocket_residues", p.pocket_residues), ("covalent", p.covalent)) if given
        ]
        if unmappable:
            raise _invalid_param(
                unmappable[0],
                ["this receptor target was made before the hub recorded its residue numbering: create it again"],
            )
    if p.pocket_residues is not None and p.pocket == "off":
        raise _invalid_param("pocket_residues", ["give pocket_residues with pocket='auto', or drop them"])
    if p.pocket == "auto":
        if p.pocket_residues is not None:
            labels = p.pocket_residues
            positions, problems = resolve_residues(chains, labels)
            if problems:
                raise _invalid_param("pocket_residues", problems)
        else:  # the target's site, resolved when the target was made
            labels, positions = (site or {}).get("pocket_residues") or [], (site or {}).get("pocket") or []
        if positions:
            plan["pocket"] = positions
            plan["pocket_residues"] = labels
    if p.template != "off":
        if "receptor.pdb" not in target_input.get("files", {}) or not own:
            raise _invalid_param(
                "template", ["a template needs a receptor target (a sequence target has no structure to use)"]
            )
        plan["template"] = "receptor.pdb"
    if p.covalent is not None:
        c = p.covalent
        positions, problems = resolve_residues(chains, [f"{c.chain}:{c.residue}"])
        if not problems:
            chain_id, position = positions[0]
            letter = next(x["sequence"] for x in chains if x["chain"] == chain_id)[position - 1]
            atoms = AMINO_ACID_ATOMS.get(letter, ())
            if c.atom not in atoms:
                problems.append(
                    f"residue {c.chain}:{c.residue} ({letter}) has no atom {c.atom!r}"
                    + (f"; its heavy atoms: {', '.join(atoms)}" if atoms else "")
                )
        if problems:
            raise _invalid_param("covalent", problems)
        plan["covalent"] = {
            "chain": positions[0][0],
            "position": positions[0][1],
            "residue": c.residue,
            "atom": c.atom,
            "ligand_atom": c.ligand_atom,
        }
    return plan


def chain_letters(protein_ids: list[str], count: int) -> list[str]:
    """``count`` chain ids for the ligand and the cofactors: the first free capital letters (then digits)."""
    taken = set(protein_ids)
    free = [c for c in string.ascii_uppercase + string.digits if c not in taken]
    if count > len(free):
        raise ValueError(f"no free chain ids left for {count} ligands beside chains {sorted(taken)}")
    return free[:count]


def cofactor_entries(
    values: list[str], ccd_known: Callable[[str], bool], where: str = "the Boltz-2 molecule cache"
) -> tuple[list[dict[str, str]], list[str]]:
    """Read cofactors as given (``"ATP"``, ``"ccd:HEM"``, ``"[Zn+2]"``, ``"smiles:C"``): upper-case
    codes of 1–5 letters or digits are CCD codes, anything else is SMILES. ``ccd_known`` says whether
    Boltz-2 can load a code (``where`` it looks, for the message). Returns the entries and the
    problems, one per bad value."""
    from rdkit import Chem

    entries: list[dict[str, str]] = []
    problems: list[str] = []
    if len(values) > MAX_COFACTORS:
        problems.append(f"{len(values)} cofactors; at most {MAX_COFACTORS} are supported")
    for raw in values:
        value = str(raw).strip()
        lowered = value.lower()
        if lowered.startswith("ccd:") or (_CCD.fullmatch(value) and not lowered.startswith("smiles:")):
            code = value[4:] if lowered.startswith("ccd:") else value
            if not _CCD.fullmatch(code):
                problems.append(f"{value!r}: a CCD code has 1 to 5 upper-case letters or digits")
            elif not ccd_known(code):
                problems.append(f"{value!r}: unknown CCD code (not in {where})")
            else:
                entries.append({"ccd": code})
            continue
        smiles = value[7:] if lowered.startswith("smiles:") else value
        mol = Chem.MolFromSmiles(smiles) if smiles else None
        if mol is None or mol.GetNumAtoms() == 0:
            problems.append(f"{value!r}: neither a CCD code nor a SMILES RDKit can read")
        else:
            entries.append({"smiles": smiles})
    return entries, problems


def resolve_residues(chains: list[dict[str, Any]], specs: list[str]) -> tuple[list[list[Any]], list[str]]:
    """Map residues in the target's numbering (``"A:315"``, ``"A:100A"``) to boltz positions
    (``["A", 201]``: 1-based in the chain's sequence as boltz is given it). A receptor chain maps
    through its ``numbering`` (the author numbers of the residues it has, gaps and insertion codes
    included); a sequence chain is numbered from 1. Returns the positions and the problems."""
    by_id = {c["chain"]: c for c in chains}
    positions: list[list[Any]] = []
    problems: list[str] = []
    for spec in specs:
        match = _RESIDUE.match(str(spec))
        if not match:
            problems.append(f"{spec!r}: write a residue as CHAIN:NUMBER, e.g. A:315 or A:100A")
            continue
        chain_id, number, icode = match.groups()
        chain = by_id.get(chain_id)
        if chain is None:
            problems.append(f"{spec!r}: the target has no chain {chain_id} (chains: {', '.join(by_id)})")
            continue
        numbering = chain.get("numbering")
        label = f"{number}{icode}"
        if numbering is None:
            position = int(number) if not icode else 0
            if not 1 <= position <= len(chain["sequence"]):
                problems.append(f"{spec!r}: chain {chain_id} has residues 1 to {len(chain['sequence'])}")
                continue
        elif label in numbering:
            position = numbering.index(label) + 1
        else:
            problems.append(f"{spec!r}: chain {chain_id} of the structure has no residue {label}")
            continue
        positions.append([chain_id, position])
    return positions, problems


def _heavy_names(mol: Any) -> list[str]:
    """boltz-community 2.13's names for a SMILES ligand's atoms: hydrogens added, atoms taken in
    RDKit's canonical rank order, each named element + running count per element (C1, C2, N1…)."""
    from rdkit.Chem import AllChem

    with_h = AllChem.AddHs(mol)
    ranks = AllChem.CanonicalRankAtoms(with_h)
    names = [""] * with_h.GetNumAtoms()
    counts: dict[str, int] = {}
    for index in sorted(range(with_h.GetNumAtoms()), key=lambda i: ranks[i]):
        symbol = with_h.GetAtomWithIdx(index).GetSymbol().upper()
        counts[symbol] = counts.get(symbol, 0) + 1
        names[index] = f"{symbol}{counts[symbol]}"
    return names[: mol.GetNumAtoms()]  # AddHs appends the hydrogens after the heavy atoms


def boltz_atom_names(smiles: str) -> list[str]:
    """The atom names boltz gives a SMILES ligand (not standardised: a non-affinity ligand), by the
    SMILES's heavy-atom index."""
    from rdkit import Chem

    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ValueError("RDKit cannot read this SMILES")
    mol.UpdatePropertyCache(strict=True)
    return _heavy_names(mol)


def ligand_atom(smiles: str, spec: str | int) -> tuple[int, str]:
    """The ligand atom of a covalent bond: a heavy-atom index, or the first atom of the first match of
    a SMARTS pattern. Returns its index and boltz's name for it; ValueError says why there is none."""
    from rdkit import Chem

    names = boltz_atom_names(smiles)
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        index = int(spec)
        if not 0 <= index < len(names):
            raise ValueError(f"ligand atom index {index} is outside the ligand's {len(names)} heavy atoms")
        return index, names[index]
    pattern = Chem.MolFromSmarts(spec)
    if pattern is None:
        raise ValueError(f"ligand_atom {spec!r} is neither a heavy-atom index nor a SMARTS pattern")
    match = Chem.MolFromSmiles(smiles).GetSubstructMatch(pattern)
    if not match:
        raise ValueError(f"the ligand has no match for the SMARTS {spec!r}")
    return match[0], names[match[0]]


def boltz_document(
    plan: dict[str, Any],
    ligand: str,
    params: Any,
    *,
    msa: dict[str, str],
    template: str | None = None,
) -> dict[str, Any]:
    """The boltz input document (YAML schema version 1) of one ligand.

    ``plan`` is the job's target input (see the module docstring); ``ligand`` its SMILES or
    ``ccd:CODE``; ``params`` its :class:`Boltz2Params`; ``msa`` each chain's MSA (an .a3m path or
    ``empty``); ``template`` the receptor file to use as a template when ``params.template`` asks.
    """
    chains = plan["chains"]
    cofactors = plan.get("cofactors", [])
    ligand_id, *cofactor_ids = chain_letters([c["id"] for c in chains], 1 + len(cofactors))
    sequences: list[dict[str, Any]] = [
        {"protein": {"id": c["id"], "sequence": c["sequence"], "msa": msa[c["id"]]}} for c in chains
    ]
    screened = (
        {"id": ligand_id, "ccd": ligand[4:]}
        if ligand.lower().startswith("ccd:")
        else {"id": ligand_id, "smiles": ligand}
    )
    sequences.append({"ligand": screened})
    sequences.extend({"ligand": {"id": cid, **entry}} for cid, entry in zip(cofactor_ids, cofactors, strict=True))
    document: dict[str, Any] = {"version": 1, "sequences": sequences}
    constraints: list[dict[str, Any]] = []
    if params.pocket == "auto" and plan.get("pocket"):
        constraints.append(
            {
                "pocket": {
                    "binder": ligand_id,
                    "contacts": [[chain, position] for chain, position in plan["pocket"]],
                    "max_distance": params.pocket_max_distance,
                    "force": params.pocket_force,
                }
            }
        )
    covalent = plan.get("covalent")
    if covalent:
        _, atom_name = ligand_atom(ligand, covalent["ligand_atom"])
        constraints.append(
            {
                "bond": {
                    "atom1": [covalent["chain"], covalent["position"], covalent["atom"]],
                    "atom2": [ligand_id, 1, atom_name],
                }
            }
        )
    if constraints:
        document["constraints"] = constraints
    if params.template != "off" and template is not None:
        ids = [c["id"] for c in chains]
        entry: dict[str, Any] = {"cif": template, "chain_id": ids, "template_id": ids}
        if params.template == "force":
            entry.update(force=True, threshold=params.template_threshold)
        document["templates"] = [entry]
    if params.affinity:
        document["properties"] = [{"affinity": {"binder": ligand_id}}]
    return document
