"""Required interactions: what a screen may demand of a pose before it is ranked.

A requirement is ``CHAIN:RESIDUE`` (any contact type with that residue, hydrophobic included) or
``CHAIN:RESIDUE:TYPE`` (that type), with the residue as its three-letter name and author number:
``A:MET318``, ``A:MET318:HBAcceptor``. Types are ProLIF's, from the ligand's side
(:data:`INTERACTION_TYPES`). A job meets a list of requirements when its ``interactions.json`` (or,
for contact types, the ``interactions`` summary) holds every one.

Pure text: no RDKit, no ProLIF; the API checks requirements at submission with it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from omtx_hub.errors import InvalidInput

__all__ = ["INTERACTION_TYPES", "Requirement", "parse_requirements", "residue_tokens"]

INTERACTION_TYPES = (
    "HBDonor",
    "HBAcceptor",
    "Cationic",
    "Anionic",
    "PiStacking",
    "CationPi",
    "PiCation",
    "Hydrophobic",
    "XBDonor",
    "XBAcceptor",
    "MetalDonor",
    "MetalAcceptor",
)
_PATTERN = re.compile(r"^(?P<chain>[A-Za-z0-9]{1,4}):(?P<residue>[A-Z]{3}-?\d+[A-Z]?)(?::(?P<type>\w+))?$")


@dataclass(frozen=True)
class Requirement:
    chain: str
    residue: str  # MET318
    interaction: str | None = None

    def __str__(self) -> str:
        return f"{self.chain}:{self.residue}" + (f":{self.interaction}" if self.interaction else "")

    @property
    def residue_key(self) -> str:
        return f"{self.chain}:{self.residue}"

    def met_by(self, contacts: Collection[str]) -> bool:
        """``contacts``: the job's ``CHAIN:RESIDUE:TYPE`` tokens."""
        if self.interaction is None:
            return any(c.rsplit(":", 1)[0] == self.residue_key for c in contacts)
        return str(self) in contacts


def parse_requirements(items: Iterable[str], residues: Collection[str] | None = None) -> list[Requirement]:
    """Requirements from their text; InvalidInput listing every entry that is malformed, names an
    unknown interaction type, or (with ``residues``, the target's ``CHAIN:RESIDUE`` keys) a residue
    the target does not have."""
    parsed, problems = [], []
    for item in items:
        m = _PATTERN.match(item.strip())
        if m is None:
            problems.append(
                {"entry": item, "reason": "expected CHAIN:RESIDUE or CHAIN:RESIDUE:TYPE, e.g. A:MET318:HBAcceptor"}
            )
            continue
        req = Requirement(m["chain"], m["residue"], m["type"])
        if req.interaction is not None and req.interaction not in INTERACTION_TYPES:
            problems.append(
                {"entry": item, "reason": f"unknown interaction type; one of {', '.join(INTERACTION_TYPES)}"}
            )
        elif residues is not None and req.residue_key not in residues:
            problems.append({"entry": item, "reason": f"the target has no residue {req.residue_key}"})
        else:
            parsed.append(req)
    if problems:
        raise InvalidInput(
            "required_interactions: " + "; ".join(f"{p['entry']!r}: {p['reason']}" for p in problems),
            code="invalid_required_interactions",
            details={"required_interactions": problems},
        )
    return parsed


def residue_tokens(contacts: Iterable[dict[str, object]]) -> set[str]:
    """``CHAIN:RESIDUE:TYPE`` of every contact of an ``interactions.json``."""
    return {f"{c['chain']}:{c['residue']}{c['number']}:{c['interaction']}" for c in contacts}
