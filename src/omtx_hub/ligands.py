"""Ligand properties (RDKit) and submission-time filters.

``ligand_properties`` computes, for the largest fragment of a SMILES (salts stripped, as docking
and co-folding see it): canonical SMILES, InChIKey, heavy atoms, molecular weight, cLogP (Crippen),
H-bond donors/acceptors (Lipinski's definitions), TPSA, rotatable bonds, QED, Lipinski rule-of-five
violations, and the names of PAINS and Brenk structural alerts (RDKit's FilterCatalog).
A CCD ligand (``ccd:ATP``) has no SMILES here: its properties are ``{"ccd_code": …}`` only.

Cost: ≈2–5 ms per drug-sized ligand on one core (PAINS and QED dominate), so a batch gets them
at submission only when it asks for filters; otherwise the worker computes them once, when the
batch finishes (see ``aggregate.py``). ``docs/analytics.md`` explains every field.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rdkit import Chem
from rdkit.Chem import QED, Crippen, Descriptors, Lipinski, rdMolDescriptors
from rdkit.Chem.FilterCatalog import FilterCatalog, FilterCatalogParams

from omtx_hub.errors import InvalidInput
from omtx_hub.parallel import map_chunks

__all__ = [
    "PROPERTY_FIELDS",
    "TEXT_PROPERTIES",
    "LigandFilters",
    "apply_filters",
    "ligand_properties",
    "parse_filters",
    "properties_of_all",
]

_PROPERTIES_PER_PROCESS = 1_000  # ligands (≈3 ms each) per extra process worth its start-up
PROPERTY_FIELDS = (
    "canonical_smiles",
    "inchikey",
    "heavy_atoms",
    "molecular_weight_da",
    "clogp",
    "hbd",
    "hba",
    "tpsa_angstrom2",
    "rotatable_bonds",
    "qed",
    "lipinski_violations",
    "pains_alerts",
    "brenk_alerts",
)
TEXT_PROPERTIES = ("canonical_smiles", "inchikey", "pains_alerts", "brenk_alerts")  # the others are numbers


# RDKit's substructure matching (QED, the structural alerts, …) swaps the process's C-level SIGINT
# handler for its own around each match and puts the previous one back; threads doing that at once
# can leave RDKit's installed for good, and Ctrl-C then never reaches the API's handler. One ligand at
# a time per process keeps the swaps nested: the whole computation, since with only QED and the
# alerts under the lock Ctrl-C was still lost under CPU load. (QED in two threads takes as long as
# in one, 2.0 s vs 1.8 s for 800 molecules: RDKit holds the GIL, so the lock costs no parallelism.)
_RDKIT_LOCK = threading.Lock()


@lru_cache(maxsize=2)
def _catalog(name: str) -> FilterCatalog:
    params = FilterCatalogParams()
    params.AddCatalog(getattr(FilterCatalogParams.FilterCatalogs, name))
    return FilterCatalog(params)


def _alerts(mol: Chem.Mol, name: str) -> list[str]:
    return sorted({entry.GetDescription() for entry in _catalog(name).GetMatches(mol)})


def ligand_properties(smiles: str) -> dict[str, Any]:
    """Properties of one ligand; ``{"error": …}`` when RDKit cannot read it (it was validated before)."""
    text = smiles.strip()
    if text.lower().startswith("ccd:"):
        return {"ccd_code": text[4:]}
    with _RDKIT_LOCK:
        return _properties(text)


def _properties(text: str) -> dict[str, Any]:
    mol = Chem.MolFromSmiles(text)
    if mol is None:
        return {"error": "RDKit could not parse this SMILES"}
    fragments = Chem.GetMolFrags(mol, asMols=True)
    mol = max(fragments, key=lambda m: m.GetNumHeavyAtoms())
    mw, clogp = Descriptors.MolWt(mol), Crippen.MolLogP(mol)
    hbd, hba = Lipinski.NumHDonors(mol), Lipinski.NumHAcceptors(mol)
    return {
        "canonical_smiles": Chem.MolToSmiles(mol),
        "inchikey": Chem.MolToInchiKey(mol) or None,
        "heavy_atoms": mol.GetNumHeavyAtoms(),
        "molecular_weight_da": round(mw, 3),
        "clogp": round(clogp, 3),
        "hbd": hbd,
        "hba": hba,
        "tpsa_angstrom2": round(rdMolDescriptors.CalcTPSA(mol), 2),
        "rotatable_bonds": rdMolDescriptors.CalcNumRotatableBonds(mol),
        "qed": round(QED.qed(mol), 4),
        "lipinski_violations": int(mw > 500) + int(clogp > 5) + int(hbd > 5) + int(hba > 10),
        "pains_alerts": _alerts(mol, "PAINS"),
        "brenk_alerts": _alerts(mol, "BRENK"),
    }


class LigandFilters(BaseModel):
    """Pre-filters applied at submission: a ligand that fails one is not queued (reported as filtered)."""

    model_config = ConfigDict(extra="forbid")

    lipinski: bool = Field(False, description="Exclude ligands with more than one rule-of-five violation.")
    pains: Literal["exclude", "flag"] = Field("flag", description="exclude: drop ligands with a PAINS alert.")
    brenk: Literal["exclude", "flag"] = Field("flag", description="exclude: drop ligands with a Brenk alert.")
    dedupe: bool = Field(False, description="Exclude a ligand whose InChIKey an earlier ligand of the batch has.")
    min_mw: float | None = Field(None, ge=0, description="Lowest molecular weight (Da).")
    max_mw: float | None = Field(None, gt=0, description="Highest molecular weight (Da).")
    max_clogp: float | None = Field(None, description="Highest cLogP.")
    max_tpsa: float | None = Field(None, gt=0, description="Highest TPSA (Å²).")
    max_hbd: int | None = Field(None, ge=0, description="Most H-bond donors.")
    max_hba: int | None = Field(None, ge=0, description="Most H-bond acceptors.")
    max_rotatable_bonds: int | None = Field(None, ge=0, description="Most rotatable bonds.")
    max_heavy_atoms: int | None = Field(None, ge=1, description="Most heavy atoms.")
    min_qed: float | None = Field(None, ge=0, le=1, description="Lowest QED.")


def parse_filters(raw: dict[str, Any] | None) -> LigandFilters | None:
    if raw is None:
        return None
    try:
        return LigandFilters.model_validate(raw)
    except ValidationError as exc:
        problems = [{"filter": ".".join(str(p) for p in e["loc"]), "reason": e["msg"]} for e in exc.errors()]
        raise InvalidInput(
            "invalid filters: " + "; ".join(f"{p['filter']}: {p['reason']}" for p in problems),
            code="invalid_filters",
            details={"filters": problems, "allowed": sorted(LigandFilters.model_fields)},
        ) from exc


_LIMITS = (
    ("min_mw", "molecular_weight_da", "<", "molecular weight {v} Da is below {f}"),
    ("max_mw", "molecular_weight_da", ">", "molecular weight {v} Da is above {f}"),
    ("max_clogp", "clogp", ">", "cLogP {v} is above {f}"),
    ("max_tpsa", "tpsa_angstrom2", ">", "TPSA {v} Å² is above {f}"),
    ("max_hbd", "hbd", ">", "{v} H-bond donors, more than {f}"),
    ("max_hba", "hba", ">", "{v} H-bond acceptors, more than {f}"),
    ("max_rotatable_bonds", "rotatable_bonds", ">", "{v} rotatable bonds, more than {f}"),
    ("max_heavy_atoms", "heavy_atoms", ">", "{v} heavy atoms, more than {f}"),
    ("min_qed", "qed", "<", "QED {v} is below {f}"),
)


def _reason(props: dict[str, Any], filters: LigandFilters) -> str | None:
    if "ccd_code" in props:
        return None  # a CCD component has no SMILES properties; filters do not apply
    if filters.lipinski and props["lipinski_violations"] > 1:
        return f"{props['lipinski_violations']} rule-of-five violations (Lipinski filter allows 1)"
    if filters.pains == "exclude" and props["pains_alerts"]:
        return "PAINS alert: " + ", ".join(props["pains_alerts"])
    if filters.brenk == "exclude" and props["brenk_alerts"]:
        return "Brenk alert: " + ", ".join(props["brenk_alerts"])
    for name, field, op, text in _LIMITS:
        limit = getattr(filters, name)
        if limit is None:
            continue
        value = props[field]
        if (op == ">" and value > limit) or (op == "<" and value < limit):
            return text.format(v=value, f=limit)
    return None


def properties_of_many(smiles: list[str]) -> list[dict[str, Any]]:
    """Properties of these ligands, in this process."""
    return [ligand_properties(text) for text in smiles]


def properties_of_all(smiles: Sequence[str]) -> list[dict[str, Any]]:
    """Properties of these ligands, on every core of this machine when there are enough of them."""
    return map_chunks(properties_of_many, smiles, per_process=_PROPERTIES_PER_PROCESS, chunk=500)


def apply_filters(
    smiles: Sequence[str], filters: LigandFilters, indices: Sequence[int]
) -> tuple[list[dict[str, Any]], dict[int, str]]:
    """Properties of each ligand, and why each excluded one (by position) was filtered.

    ``indices`` are the ligands' positions in the submitted list, used in duplicate messages.
    """
    properties = properties_of_all(smiles)
    excluded: dict[int, str] = {}
    first_seen: dict[str, int] = {}
    for position, props in enumerate(properties):
        reason = _reason(props, filters)
        key = props.get("inchikey")
        if reason is None and filters.dedupe and key:
            if key in first_seen:
                reason = f"duplicate of ligand #{indices[first_seen[key]]} (same InChIKey {key})"
            else:
                first_seen[key] = position
        if reason is not None:
            excluded[position] = reason
    return properties, excluded
