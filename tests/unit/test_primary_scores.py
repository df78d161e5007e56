"""The API's table of primary scores (params.PRIMARY_SCORES, used without importing predictors) must say
what the predictors themselves say."""

from __future__ import annotations

from omtx_hub.params import PRIMARY_SCORES
from omtx_hub.predictors.boltz2 import Boltz2Predictor
from omtx_hub.predictors.vina import VinaPredictor


def test_primary_scores_match_the_predictors() -> None:
    for predictor in (VinaPredictor, Boltz2Predictor):
        assert PRIMARY_SCORES[predictor.name] == (predictor.primary_score, predictor.score_direction)
