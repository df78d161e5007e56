"""Parameter schemas of the predictors this package ships, checked at submission (422 on a bad one).

Pure pydantic, no predictor imports, so the API can check parameters on a machine where the
predictor's packages are not installed. Predictors parse their params with the same models.
Plugins without a schema here get their params checked by the predictor itself (a permanent
``invalid_params`` failure).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from omtx_hub.errors import InvalidInput

__all__ = ["PARAM_MODELS", "PRIMARY_SCORES", "Boltz2Params", "VinaParams", "validate_params"]


class VinaParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    exhaustiveness: int = Field(8, ge=1, le=64, description="Vina search effort; 8 is Vina's default.")
    n_poses: int = Field(9, ge=1, le=20, description="Most poses kept.")
    energy_range_kcal_mol: float = Field(3.0, gt=0, le=10, description="Poses kept within this of the best.")
    seed: int = Field(42, ge=1, le=2**31 - 1, description="Seed of the search and of the 3D embedding.")
    ph: float = Field(7.4, ge=0, le=14, description="pH for the ligand's protonation state (dimorphite-dl).")
    protonate: bool = Field(True, description="Set the protonation state at `ph`; false docks the SMILES as given.")


class Boltz2Params(BaseModel):
    """Boltz-2 options, each mapped to the ``boltz predict`` option of the same name (defaults: boltz's)."""

    model_config = ConfigDict(extra="forbid")

    recycling_steps: int = Field(3, ge=0, le=20, description="Trunk recycling steps.")
    sampling_steps: int = Field(200, ge=1, le=1000, description="Diffusion sampling steps of the structure.")
    diffusion_samples: int = Field(1, ge=1, le=25, description="Structures sampled; the best by confidence is model 0.")
    step_scale: float = Field(1.5, gt=0, le=5, description="Diffusion step scale (temperature); lower = more diverse.")
    affinity: bool = Field(True, description="Predict binding affinity (ligand chain B as the binder).")
    sampling_steps_affinity: int = Field(200, ge=1, le=1000, description="Diffusion steps of the affinity pass.")
    diffusion_samples_affinity: int = Field(5, ge=1, le=25, description="Samples of the affinity pass.")
    affinity_mw_correction: bool = Field(False, description="Apply boltz's molecular-weight correction to affinity.")
    use_potentials: bool = Field(False, description="Inference-time physical potentials (steering); slower.")
    seed: int = Field(42, ge=0, le=2**31 - 1, description="Seed of the diffusion noise of this ligand.")
    output_format: Literal["mmcif", "pdb"] = Field("mmcif", description="Structure file: structure.cif or structure.pdb.")
    msa: Literal["auto", "empty", "server"] = Field(
        "auto",
        description="auto: the target's uploaded .a3m if any, else single-sequence; empty: single-sequence; "
        "server: the configured MSA server (OMTX_MSA_SERVER_URL), once per target.",
    )


PARAM_MODELS: dict[str, type[BaseModel]] = {"vina": VinaParams, "boltz2": Boltz2Params}

# The documented primary score of each shipped predictor (the same as its ``primary_score``): what a
# batch is ranked by. Boltz-2: the binder probability (hit finding); for lead optimisation sort by
# ``affinity_pred_value`` ascending instead.
PRIMARY_SCORES: dict[str, tuple[str, str]] = {"vina": ("vina_score_kcal_mol", "asc"),
                                              "boltz2": ("affinity_probability_binary", "desc")}


def validate_params(predictor: str, params: dict[str, Any]) -> dict[str, Any]:
    """Return the params with defaults filled in, or raise InvalidInput listing every problem."""
    model = PARAM_MODELS.get(predictor)
    if model is None:
        return dict(params)
    try:
        return model.model_validate(params).model_dump()
    except ValidationError as exc:
        problems = [{"param": ".".join(str(p) for p in e["loc"]), "reason": e["msg"]} for e in exc.errors()]
        raise InvalidInput(
            f"invalid parameters for predictor {predictor!r}: "
            + "; ".join(f"{p['param']}: {p['reason']}" for p in problems),
            code="invalid_params",
            details={"params": problems, "allowed": sorted(model.model_fields)},
        ) from exc
