"""The REST API's routers (FastAPI). They never import a predictor, so the API starts where none is
installed, and never import the web UI: :mod:`omtx_hub.app` assembles both."""

__all__: list[str] = []  # routers only: omtx_hub.app includes them
