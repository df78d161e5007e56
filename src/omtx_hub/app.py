"""``create_app(settings)``: the one application, the REST API and the web UI over one hub, its parts
built explicitly (no globals). The only module that imports both :mod:`omtx_hub.api` and
:mod:`omtx_hub.web`."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry

import omtx_hub
from omtx_hub import web
from omtx_hub.api import exports, jobs, ops, targets, webhooks
from omtx_hub.api.errors import install_error_handlers
from omtx_hub.api.limits import BodyLimitMiddleware
from omtx_hub.hub import Hub, open_hub
from omtx_hub.settings import Settings

__all__ = ["create_app"]


def create_app(settings: Settings | None = None, *, hub: Hub | None = None) -> FastAPI:
    """Build the API over ``hub`` (or a hub opened from ``settings``, migrations included)."""
    if hub is None:
        hub = open_hub(settings or Settings())
    app = FastAPI(
        title="OMTX-Hub",
        version=omtx_hub.__version__,
        description="Protein–ligand prediction jobs and batch screens: submit, watch, rank, download.",
    )
    app.state.hub = hub
    registry = CollectorRegistry()  # no auto_describe: it would run a scrape (and fill its reused sums) at start-up
    registry.register(
        ops.QueueCollector(hub.manager, hub.settings.worker_seen_seconds, hub.settings.metrics_history_seconds)
    )
    app.state.metrics_registry = registry
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=hub.settings.max_body_bytes)
    app.include_router(jobs.router)
    app.include_router(targets.router)
    app.include_router(exports.router)
    app.include_router(webhooks.router)
    app.include_router(ops.router)
    app.include_router(web.router)

    @app.exception_handler(web.LoginRequired)
    async def _login(_: Request, exc: web.LoginRequired) -> RedirectResponse:
        return RedirectResponse(f"/login?next={quote(exc.next_path, safe='')}", status_code=303)

    app.mount("/static", StaticFiles(directory=str(web.STATIC_DIR)), name="static")
    return app
