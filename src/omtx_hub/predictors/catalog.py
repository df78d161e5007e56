"""The declarations of the shipped predictors, and the lookups every surface uses: parameter
validation at submission, the primary score a batch is ranked by, what each result field means and
which ones a table shows. Adding a predictor: write its ``*_spec.py`` and list it here."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from omtx_hub.errors import InvalidInput
from omtx_hub.predictors.boltz2_spec import BOLTZ2
from omtx_hub.predictors.spec import PredictorSpec, ResultField
from omtx_hub.predictors.vina_spec import VINA

__all__ = ["POSE_FIELDS", "SPECS", "declared_field", "field_help", "primary_score", "table_fields", "validate_params"]

SPECS: dict[str, PredictorSpec] = {spec.name: spec for spec in (VINA, BOLTZ2)}

#: Fields the hub adds to any job that has a pose (omtx_hub.pose_checks), whatever its predictor.
POSE_FIELDS: tuple[ResultField, ...] = (
    ResultField(
        "pose_checks_passed",
        "PoseBusters: true when the best pose passed every check (chemistry, "
        "geometry, no clash or volume overlap with the protein; with the target's reference ligand, "
        "the redock checks too). posebusters.csv has each check.",
        kind="bool",
    ),
    ResultField(
        "pose_checks_failed", "PoseBusters: the checks the best pose failed (none when it passed).", kind="text"
    ),
    ResultField(
        "interactions",
        "ProLIF: every contact of the pose as chain:residue:type, polar ones first, hydrophobic ones last "
        "(from the ligand's side: HBDonor = the ligand donates); interactions.json has each with its distance.",
        kind="text",
    ),
    ResultField("pose_checks_error", "Why the pose checks did not run (the job itself is unaffected).", kind="text"),
    ResultField(
        "interactions_error",
        "Why ProLIF could not list the interactions (e.g. a protein whose residues "
        "are not whole, as in a co-folding from random weights); the pose checks still ran.",
        kind="text",
    ),
    ResultField("pose_checks_seconds", "Time the pose checks and the fingerprint took, s.", unit="s"),
)


def primary_score(predictor: str) -> ResultField | None:
    """The declared primary score (name and direction), or None for a plugin that declares none."""
    spec = SPECS.get(predictor)
    return spec.primary_field if spec else None


def field_help(name: str) -> str:
    """What a result field means (shown beside the value on the job page), '' when undeclared."""
    found = declared_field(name)
    return found.meaning if found is not None else ""


def declared_field(name: str, predictor: str | None = None) -> ResultField | None:
    """A result field's declaration: the predictor's own (any predictor's when None), else the hub's."""
    specs = [SPECS[predictor]] if predictor in SPECS else ([] if predictor else list(SPECS.values()))
    for spec in specs:
        found = spec.field(name)
        if found is not None:
            return found
    return next((f for f in POSE_FIELDS if f.name == name), None)


def table_fields() -> dict[str, str]:
    """Fields that ranked tables show beside the score when present: name → short heading."""
    return {f.name: f.label for spec in SPECS.values() for f in spec.fields if f.label}


def validate_params(predictor: str, params: dict[str, Any]) -> dict[str, Any]:
    """Return the params with defaults filled in, or raise InvalidInput listing every problem.

    Plugins without a declaration get their params checked by the predictor itself (a permanent
    ``invalid_params`` failure)."""
    spec = SPECS.get(predictor)
    if spec is None:
        return dict(params)
    try:
        return spec.params.model_validate(params).model_dump()
    except ValidationError as exc:
        problems = [{"param": ".".join(str(p) for p in e["loc"]), "reason": e["msg"]} for e in exc.errors()]
        raise InvalidInput(
            f"invalid parameters for predictor {predictor!r}: "
            + "; ".join(f"{p['param']}: {p['reason']}" for p in problems),
            code="invalid_params",
            details={"params": problems, "allowed": sorted(spec.params.model_fields)},
        ) from exc
