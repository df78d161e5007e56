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
    # boltz-2 (the names are boltz's own; docs/boltz2.md)
    "affinity_probability_binary": "Boltz-2: probability that the ligand is a binder (0–1). Rank by this, "
    "descending, for hit finding in a screen.",
    "affinity_pred_value": "Boltz-2: predicted log10(IC50 / µM); lower binds tighter. Rank by this, "
    "ascending, for lead optimisation among known binders.",
    "confidence_score": "Boltz-2: (4·complex_plddt + iptm) / 5, the structure's overall confidence (0–1).",
    "affinity_pred_value1": "Boltz-2: affinity_pred_value of ensemble member 1.",
    "affinity_pred_value2": "Boltz-2: affinity_pred_value of ensemble member 2.",
    "affinity_probability_binary1": "Boltz-2: binder probability of ensemble member 1.",
    "affinity_probability_binary2": "Boltz-2: binder probability of ensemble member 2.",
    "ptm": "Boltz-2: predicted TM-score of the whole complex (0–1).",
    "iptm": "Boltz-2: interface pTM between the chains (0–1); how confident the protein–ligand placement is.",
    "ligand_iptm": "Boltz-2: interface pTM of the ligand with the protein (0–1).",
    "protein_iptm": "Boltz-2: interface pTM between protein chains (0 with one protein chain).",
    "complex_plddt": "Boltz-2: mean predicted lDDT over the complex (0–1); local structure confidence.",
    "complex_iplddt": "Boltz-2: pLDDT averaged with interface atoms weighted up (0–1).",
    "complex_pde": "Boltz-2: mean predicted distance error over all token pairs, Å.",
    "complex_ipde": "Boltz-2: mean predicted distance error over interface token pairs, Å.",
    "pic50_derived": "Derived by the hub: 6 − affinity_pred_value (pIC50, higher binds tighter).",
    "delta_g_kcal_mol_derived": "Derived by the hub: −RT·ln(10)·pIC50 at 298.15 K, kcal/mol; reads IC50 as a "
    "dissociation constant (an approximation, for ranking).",
    "msa_mode": "Boltz-2: the MSA used: empty (single sequence), upload (the target's .a3m) or server.",
    "msa_warning": "Boltz-2 ran without an MSA: expect lower accuracy.",
    "model_weights": "Which weights produced this: checkpoint, or random-test-fixture (meaningless numbers).",
}


def field_help(name: str) -> str:
    return FIELD_HELP.get(name, "")
