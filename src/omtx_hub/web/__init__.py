"""The web UI: server-rendered pages (Jinja2) with a little JavaScript over the JSON API. It never
imports the API's routers: what both need lives below them (:mod:`omtx_hub.presenters`,
:mod:`omtx_hub.access`, :mod:`omtx_hub.services`)."""

from omtx_hub.web.views import STATIC_DIR, LoginRequired, router

__all__ = ["STATIC_DIR", "LoginRequired", "router"]
