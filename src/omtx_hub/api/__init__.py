"""The REST API (FastAPI). It never imports a predictor: it starts where none is installed."""

from omtx_hub.api.app import create_app

__all__ = ["create_app"]
