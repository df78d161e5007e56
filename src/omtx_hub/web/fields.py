"""What each result field means: shown beside the value on the job page, and in docs/results.md."""

from __future__ import annotations

__all__ = ["FIELD_HELP", "field_help"]

FIELD_HELP: dict[str, str] = {
    # vina
    "vina_score_kcal_mol": "Vina score of the best pose, kcal/mol. Lower (more negative) is better; "
    "the batch ranking key. An estimate of binding free energy, good for ranking, rough in absolute terms.",
    "pose_scores_kcal_mol": "Vina score of every kept pose, kcal/mol, best first.",
    "ligand_efficiency_kcal_mol_per_heavy_atom": "Best score divided by heavy atoms: favours small, "
    "efficient binders over large ones that score well by size alone (−0.3 or better is good).",
    "rmsd_to_reference_angstrom": "Heavy-atom RMSD of the best pose to the target's reference ligand, Å "
    "(symmetry-aware, no superposition); below 2 Å means the reference pose was found. Empty: "
    "a different molecule.",
    "heavy_atoms": "Non-hydrogen atoms of the docked form.",
    "n_poses": "Poses kept (within the energy range of the best).",
    "docked_smiles": "The form that was docked: largest fragment, protonated at the job's pH.",
    "exhaustiveness": "Vina's search effort used for this job.",
    "seed": "Random seed of the search and the 3D embedding (same seed, same result).",
    "box_center_angstrom": "Center of the docking box, Å.",
    "box_size_angstrom": "Edge lengths of the docking box, Å.",
    "docking_seconds": "Wall time of the docking step, s.",
    # boltz-2 (for when its predictor lands; the names are boltz's own)
    "affinity_probability_binary": "Boltz-2: probability that the ligand is a binder (0–1). Rank by this, "
    "descending, for hit finding in a screen.",
    "affinity_pred_value": "Boltz-2: predicted log10(IC50 / µM); lower binds tighter. Rank by this, "
    "ascending, for lead optimisation among known binders.",
    "confidence_score": "Boltz-2: (4·complex_plddt + iptm) / 5, the structure's overall confidence (0–1).",
}


def field_help(name: str) -> str:
    return FIELD_HELP.get(name, "")
