"""The predictors' declarations (read without importing a predictor) must say what the predictors say."""

from __future__ import annotations

from omtx_hub.predictors.boltz2 import Boltz2Predictor
from omtx_hub.predictors.catalog import SPECS, field_help, primary_score, table_fields
from omtx_hub.predictors.vina import VinaPredictor


def test_primary_scores_match_the_predictors() -> None:
    for predictor in (VinaPredictor, Boltz2Predictor):
        declared = primary_score(predictor.name)
        assert declared is not None
        assert (declared.name, declared.direction) == (predictor.primary_score, predictor.score_direction)


def test_every_declared_field_says_what_it_means() -> None:
    for spec in SPECS.values():
        names = [f.name for f in spec.fields]
        assert len(names) == len(set(names)), spec.name
        for f in spec.fields:
            assert field_help(f.name) == f.meaning and len(f.meaning) > 20, f.name
    assert primary_score("a-plugin-that-declares-nothing") is None and field_help("no_such_field") == ""
    assert table_fields() == {
        "ligand_efficiency_kcal_mol_per_heavy_atom": "LE kcal/mol/HA",
        "rmsd_to_reference_angstrom": "RMSD to ref Å",
    }
