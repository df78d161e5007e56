"""Predictors: the interface and the registry. Concrete predictors live in their own modules."""

from omtx_hub.predictors.base import Outcome, PredictionTask, Predictor, TargetArtifacts

__all__ = ["Outcome", "PredictionTask", "Predictor", "TargetArtifacts"]
