"""AutoDock Vina: parameters and result fields (the predictor itself is :mod:`omtx_hub.predictors.vina`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from omtx_hub.predictors.spec import PredictorSpec, ResultField

__all__ = ["VINA", "VinaParams"]


class VinaParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    exhaustiveness: int = Field(8, ge=1, le=64, description="Vina search effort; 8 is Vina's default.")
    n_poses: int = Field(9, ge=1, le=20, description="Most poses kept.")
    energy_range_kcal_mol: float = Field(3.0, gt=0, le=10, description="Poses kept within this of the best.")
    seed: int = Field(42, ge=1, le=2**31 - 1, description="Seed of the search and of the 3D embedding.")
    ph: float = Field(7.4, ge=0, le=14, description="pH of the ligand's dominant protonation state.")
    protonate: bool = Field(True, description="Set the protonation state at `ph`; false docks the SMILES as given.")
    protonation: Literal["dominant", "enumerate"] = Field(
        "dominant",
        description="dominant: dock the dominant state at `ph`; enumerate: dock up to `protonation_states` likely "
        "states (groups within 2 pKa units of `ph` flipped) and keep the best-scoring one.",
    )
    protonation_states: int = Field(3, ge=1, le=6, description="With protonation=enumerate: how many states to dock.")


VINA = PredictorSpec(
    name="vina",
    params=VinaParams,
    primary="vina_score_kcal_mol",
    pose_file="poses.sdf",
    fields=(
        ResultField(
            "vina_score_kcal_mol",
            "Vina score of the best pose, kcal/mol. Lower (more negative) is "
            "better; the batch ranking key. An estimate of binding free energy, good for ranking, rough in "
            "absolute terms.",
            unit="kcal/mol",
            direction="asc",
        ),
        ResultField(
            "pose_scores_kcal_mol", "Vina score of every kept pose, kcal/mol, best first.", unit="kcal/mol", kind="list"
        ),
        ResultField(
            "ligand_efficiency_kcal_mol_per_heavy_atom",
            "Best score divided by heavy atoms: favours small, "
            "efficient binders over large ones that score well by size alone (−0.3 or better is good).",
            unit="kcal/mol per heavy atom",
            direction="asc",
            label="LE kcal/mol/HA",
        ),
        ResultField(
            "rmsd_to_reference_angstrom",
            "Heavy-atom RMSD of the best pose to the target's reference "
            "ligand, Å (symmetry-aware, no superposition); below 2 Å means the reference pose was found. "
            "Empty: a different molecule.",
            unit="Å",
            direction="asc",
            label="RMSD to ref Å",
        ),
        ResultField("heavy_atoms", "Non-hydrogen atoms of the docked form."),
        ResultField("n_poses", "Poses kept (within the energy range of the best)."),
        ResultField(
            "docked_smiles",
            "The form that was docked: largest fragment, in its dominant protonation state at the job's pH.",
            kind="text",
        ),
        ResultField("formal_charge", "Net formal charge of the docked form (its dominant state at the job's pH)."),
        ResultField(
            "protonation_states",
            "With protonation=enumerate: each state docked (SMILES, formal charge, its best score); the job's "
            "result is the best-scoring one.",
            kind="list",
        ),
        ResultField("exhaustiveness", "Vina's search effort used for this job."),
        ResultField("seed", "Random seed of the search and the 3D embedding (same seed, same result)."),
        ResultField("box_center_angstrom", "Center of the docking box, Å.", unit="Å", kind="list"),
        ResultField("box_size_angstrom", "Edge lengths of the docking box, Å.", unit="Å", kind="list"),
        ResultField("docking_seconds", "Wall time of the docking step, s.", unit="s"),
    ),
)
