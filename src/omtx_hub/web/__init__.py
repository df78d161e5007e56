"""The web UI: server-rendered pages (Jinja2) with a little JavaScript over the JSON API."""

from omtx_hub.web.views import STATIC_DIR, LoginRequired, router

__all__ = ["STATIC_DIR", "LoginRequired", "router"]
