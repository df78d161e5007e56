"""Boltz-2: parameters and result fields (the predictor itself is :mod:`omtx_hub.predictors.boltz2`).
The field names are boltz's own; docs/boltz2.md says how they are computed."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from omtx_hub.predictors.spec import PredictorSpec, ResultField

__all__ = ["BOLTZ2", "METHODS", "Boltz2Params", "Covalent"]

#: boltz-community 2.13's method types (``boltz.data.const.method_types_ids``; the placeholders left
#: out): the experimental method the structure is conditioned on. ``boltz predict`` uses x-ray
#: diffraction when none is given; a test checks this list against boltz's.
METHODS = (
    "md",
    "x-ray diffraction",
    "electron microscopy",
    "solution nmr",
    "solid-state nmr",
    "neutron diffraction",
    "electron crystallography",
    "fiber diffraction",
    "powder diffraction",
    "infrared spectroscopy",
    "fluorescence transfer",
    "epr",
    "theoretical model",
    "solution scattering",
    "other",
    "afdb",
    "boltz-1",
)


class Covalent(BaseModel):
    """A covalent bond between a receptor atom and the ligand (experimental)."""

    model_config = ConfigDict(extra="forbid")

    chain: str = Field(description="Receptor chain id.", min_length=1, max_length=4)
    residue: str = Field(description="Residue number in the target's numbering (author numbering of a structure).")
    atom: str = Field(description="Receptor atom name, e.g. SG of a cysteine.", min_length=1, max_length=4)
    ligand_atom: str | int = Field(
        description="The ligand atom: a heavy-atom index of the SMILES, or a SMARTS whose first matched atom is it."
    )

    @field_validator("residue", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) else value


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
    output_format: Literal["mmcif", "pdb"] = Field(
        "mmcif", description="Structure file: structure.cif or structure.pdb."
    )
    msa: Literal["auto", "empty", "server"] = Field(
        "auto",
        description="auto: the target's uploaded .a3m if any, else single-sequence; empty: single-sequence; "
        "server: the configured MSA server (OMTX_MSA_SERVER_URL), once per target.",
    )
    pocket: Literal["auto", "off"] = Field(
        "auto",
        description="auto: condition on the target's pocket (its binding site's residues, or pocket_residues); "
        "off: no pocket.",
    )
    pocket_residues: list[str] | None = Field(
        None,
        max_length=200,
        description="Pocket residues instead of the target's site, CHAIN:NUMBER in the target's numbering.",
    )
    pocket_max_distance: float = Field(
        6.0, ge=4.0, le=20.0, description="Pocket contact distance, Å (boltz's trained range: 4–20)."
    )
    pocket_force: bool = Field(False, description="Enforce the pocket with a steering potential (slower).")
    template: Literal["off", "on", "force"] = Field(
        "off", description="Use the target's receptor structure as a template: off, on, or force (within threshold)."
    )
    template_threshold: float = Field(
        2.0, gt=0, le=20.0, description="template=force: how far (Å) the structure may move from the template."
    )
    method: Literal[METHODS] | None = Field(  # type: ignore[valid-type]
        None, description="Experimental method to condition on (boltz's method types); none = x-ray diffraction."
    )
    covalent: Covalent | None = Field(
        None, description="Experimental: a covalent bond from a receptor atom to the ligand (needs affinity=false)."
    )

    @model_validator(mode="after")
    def _covalent_without_affinity(self) -> Boltz2Params:
        if self.covalent is not None and self.affinity:
            raise ValueError(
                "covalent needs affinity=false: Boltz-2's affinity head was trained on non-covalent binders"
            )
        return self


# The primary score is the binder probability (hit finding); for lead optimisation sort by
# ``affinity_pred_value`` ascending instead.
BOLTZ2 = PredictorSpec(
    name="boltz2",
    params=Boltz2Params,
    primary="affinity_probability_binary",
    pose_file="structure.cif",
    fields=(
        ResultField(
            "affinity_probability_binary",
            "Boltz-2: probability that the ligand is a binder (0–1). Rank by "
            "this, descending, for hit finding in a screen.",
            unit="probability",
            direction="desc",
        ),
        ResultField(
            "affinity_pred_value",
            "Boltz-2: predicted log10(IC50 / µM); lower binds tighter. Rank by "
            "this, ascending, for lead optimisation among known binders.",
            unit="log10(IC50/µM)",
            direction="asc",
        ),
        ResultField(
            "confidence_score",
            "Boltz-2: (4·complex_plddt + iptm) / 5, the structure's overall confidence (0–1).",
            direction="desc",
        ),
        ResultField(
            "affinity_pred_value1", "Boltz-2: affinity_pred_value of ensemble member 1.", unit="log10(IC50/µM)"
        ),
        ResultField(
            "affinity_pred_value2", "Boltz-2: affinity_pred_value of ensemble member 2.", unit="log10(IC50/µM)"
        ),
        ResultField(
            "affinity_probability_binary1", "Boltz-2: binder probability of ensemble member 1.", unit="probability"
        ),
        ResultField(
            "affinity_probability_binary2", "Boltz-2: binder probability of ensemble member 2.", unit="probability"
        ),
        ResultField("ptm", "Boltz-2: predicted TM-score of the whole complex (0–1)."),
        ResultField(
            "iptm", "Boltz-2: interface pTM between the chains (0–1); how confident the protein–ligand placement is."
        ),
        ResultField("ligand_iptm", "Boltz-2: interface pTM of the ligand with the protein (0–1)."),
        ResultField("protein_iptm", "Boltz-2: interface pTM between protein chains (0 with one protein chain)."),
        ResultField(
            "complex_plddt", "Boltz-2: mean predicted lDDT over the complex (0–1); local structure confidence."
        ),
        ResultField("complex_iplddt", "Boltz-2: pLDDT averaged with interface atoms weighted up (0–1)."),
        ResultField("complex_pde", "Boltz-2: mean predicted distance error over all token pairs, Å.", unit="Å"),
        ResultField("complex_ipde", "Boltz-2: mean predicted distance error over interface token pairs, Å.", unit="Å"),
        ResultField(
            "pic50_derived",
            "Derived by the hub: 6 − affinity_pred_value (pIC50, higher binds tighter).",
            unit="pIC50",
            direction="desc",
        ),
        ResultField(
            "delta_g_kcal_mol_derived",
            "Derived by the hub: −RT·ln(10)·pIC50 at 298.15 K, kcal/mol; reads "
            "IC50 as a dissociation constant (an approximation, for ranking).",
            unit="kcal/mol",
            direction="asc",
        ),
        ResultField(
            "msa_mode",
            "Boltz-2: the MSA used: empty (single sequence), upload (the target's .a3m) or server.",
            kind="text",
        ),
        ResultField("msa_warning", "Boltz-2 ran without an MSA: expect lower accuracy.", kind="text"),
        ResultField(
            "tokens",
            "Boltz-2: tokens of the co-folded complex (one per standard residue, one per atom of anything "
            "else); GPU time and memory grow with it.",
        ),
        ResultField("ligand_chain", "Boltz-2: the chain id of the screened ligand in structure.cif.", kind="text"),
        ResultField("template_residues", "Boltz-2: residues of the protein chains matched to the template structure."),
        ResultField(
            "model_weights",
            "Which weights produced this: checkpoint, or random-test-fixture (meaningless numbers).",
            kind="text",
        ),
    ),
)
