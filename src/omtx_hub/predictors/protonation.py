"""The dominant protonation state of a ligand at a pH, from a short table of ionisable groups with
their typical pKa, plus the one correction that matters most for drugs: two amines two carbons apart
(a piperazine, an ethylenediamine) carry one proton, not two.

Why not a library: dimorphite-dl samples states across a pKa window (its phenol pKa is about 7.1, so
paracetamol comes out a phenolate at pH 7.4, where it is neutral), and molscrub is GPL-3.0, which
this Apache-2.0 project does not take on. The table below is small on purpose; each group's pKa is
the textbook value of its parent compound. A group is charged when its pKa says it is at the pH:
acids with pKa < pH lose their proton, bases with pKa > pH gain one.

Known limits, documented: substituent effects beyond the listed ones (a nitro-phenol, pKa ≈ 7.2,
stays neutral) and tautomers (the input's are kept). Groups near the pH (imidazole 7.0, morpholine
7.4) take their majority state; :func:`likely_states` also lists the states with one such group
flipped, closest pKa first, for a docking that tries several.
"""

from __future__ import annotations

from dataclasses import dataclass

from rdkit import Chem
from rdkit.Chem.MolStandardize import rdMolStandardize

__all__ = ["ACIDS", "BASES", "Protonated", "dominant_state", "likely_states"]


@dataclass(frozen=True)
class Group:
    name: str
    smarts: str  # the first atom is the one that gains or loses the proton
    pka: float


ACIDS = (
    Group("sulfonic acid", "[OX2H1]S(=O)(=O)", -1.0),
    Group("phosphate / phosphonate", "[OX2H1]P(=O)", 1.5),
    Group("carboxylic acid", "[OX2H1]C(=O)", 4.2),
    Group("tetrazole", "[nH1]1nnnc1", 4.9),
    Group("tetrazole", "[nH1]1cnnn1", 4.9),
    Group("acyl sulfonamide", "[NX3H1](C=O)S(=O)(=O)", 4.5),
    Group("phenol", "[OX2H1]c", 10.0),
)
_ALIPHATIC_AMINE = (
    "[NX3;H2,H1,H0;!$(N[a]);!$(N[#6]=[#7,#8,#16]);!$(N[#7,#8,#16]);!$(N[#6]#[#7]);!$(N[CX3]=[CX3]);"
    "!$(NC(F)(F)F);!$(NCC(F)(F)F)]"
)
BASES = (
    Group("imidazole (not fused)", "[nX2;r5;$(n1:c:[nX3]:[c;!R2]:[c;!R2]1)]", 7.0),
    Group("guanidine", "[NX2;!a]=C([NX3])[NX3]", 13.0),
    Group("amidine", "[NX2;!a;!$(N=C[NX3][#6]=O)]=[CX3;!$(C(=N)[NX3][NX3])]([#6,#1])[NX3;!$(N[#6]=O)]", 12.0),
    Group("morpholine nitrogen", "[NX3;R;!$(N[a]);!$(N[#6]=[#7,#8,#16])]1CCOCC1", 7.4),
    Group("aliphatic amine", _ALIPHATIC_AMINE, 10.0),
)


@dataclass(frozen=True)
class Protonated:
    smiles: str
    formal_charge: int


@dataclass(frozen=True)
class _Site:
    index: int
    acid: bool
    pka: float


def dominant_state(smiles: str, ph: float) -> Protonated:
    """The largest fragment's dominant state at ``ph``. Raises ValueError when the SMILES cannot be read."""
    return likely_states(smiles, ph, 1)[0]


def likely_states(smiles: str, ph: float, n: int) -> list[Protonated]:
    """Up to ``n`` states, the dominant one first, then each with one group whose pKa is within 2
    units of the pH flipped (closest first), without duplicates."""
    mol = _neutral(smiles)
    sites = _sites(mol)
    acids = {s.index for s in sites if s.acid and s.pka < ph}
    bases = _one_proton_per_vicinal_pair(mol, [s.index for s in sites if not s.acid and s.pka > ph])
    dominant = acids | set(bases)
    states = [_build(mol, sites, dominant)]
    for site in sorted((s for s in sites if abs(s.pka - ph) <= 2.0), key=lambda s: abs(s.pka - ph)):
        if len(states) >= n:
            break
        flipped = _build(mol, sites, dominant ^ {site.index})
        if flipped.smiles not in {state.smiles for state in states}:
            states.append(flipped)
    return states[:n]


def _neutral(smiles: str) -> Chem.Mol:
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ValueError("RDKit could not parse the SMILES")
    mol = rdMolStandardize.LargestFragmentChooser(preferOrganic=True).choose(mol)
    return rdMolStandardize.Uncharger().uncharge(mol)  # from the neutral form, whatever salt was drawn


def _sites(mol: Chem.Mol) -> list[_Site]:
    """Every ionisable atom, judged once: by the first group of the tables that matches it."""
    sites: dict[int, _Site] = {}
    for acid, groups in ((True, ACIDS), (False, BASES)):
        for group in groups:
            for match in mol.GetSubstructMatches(Chem.MolFromSmarts(group.smarts)):
                atom = mol.GetAtomWithIdx(match[0])
                if match[0] in sites or (acid and atom.GetTotalNumHs() == 0):
                    continue
                sites[match[0]] = _Site(match[0], acid, group.pka)
    return list(sites.values())


def _build(mol: Chem.Mol, sites: list[_Site], charged: set[int]) -> Protonated:
    state = Chem.RWMol(mol)
    for site in sites:
        if site.index not in charged:
            continue
        atom = state.GetAtomWithIdx(site.index)
        hydrogens = atom.GetTotalNumHs()
        atom.SetFormalCharge(-1 if site.acid else 1)
        atom.SetNumExplicitHs(hydrogens - 1 if site.acid else hydrogens + 1)
        atom.SetNoImplicit(True)
    Chem.SanitizeMol(state)
    return Protonated(Chem.MolToSmiles(state), Chem.GetFormalCharge(state))


def _one_proton_per_vicinal_pair(mol: Chem.Mol, bases: list[int]) -> list[int]:
    """Of two basic nitrogens two carbons apart, only the more basic keeps its proton: the second
    protonation of a piperazine or an ethylenediamine has a pKa near 5-7, under physiological pH."""
    kept = sorted(bases, key=lambda i: _basicity(mol, i), reverse=True)
    chosen: list[int] = []
    for index in kept:
        if all(len(Chem.GetShortestPath(mol, index, other)) - 1 != 3 for other in chosen):
            chosen.append(index)
    return sorted(chosen)


def _basicity(mol: Chem.Mol, index: int) -> tuple[int, int, int, int]:
    """A rank, higher = more basic: guanidines and amidines first (not amines), then amines whose
    carbons are not benzylic (a benzyl lowers an amine's pKa by about 1), secondary before tertiary,
    an N-methyl before other tertiary amines; the atom order breaks the last ties."""
    atom = mol.GetAtomWithIdx(index)
    if atom.GetHybridization() != Chem.HybridizationType.SP3:
        return (2, 0, 0, -index)
    benzylic = sum(
        1 for n in atom.GetNeighbors() if n.GetSymbol() == "C" and any(m.GetIsAromatic() for m in n.GetNeighbors())
    )
    methyl = sum(1 for n in atom.GetNeighbors() if n.GetSymbol() == "C" and n.GetDegree() == 1)
    return (1, -benzylic, atom.GetTotalNumHs(), methyl * 1000 - index)
