"""Who is calling: an API key (``Authorization: Bearer`` or ``X-API-Key``) or a browser session.

Every API route depends on ``authenticate`` except ``/healthz``, ``/readyz`` and the OpenAPI docs.
A session cookie authenticates only with its CSRF token on requests that change state.
"""

from __future__ import annotations

from fastapi import Request

from omtx_hub.auth import Principal
from omtx_hub.errors import Forbidden, Unauthorized
from omtx_hub.hub import Hub

__all__ = [
    "SESSION_COOKIE",
    "authenticate",
    "get_hub",
    "principal_of",
    "require_admin",
    "scope_of",
    "session_principal",
]

SESSION_COOKIE = "omtx_session"
CSRF_HEADER = "x-csrf-token"
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def get_hub(request: Request) -> Hub:
    """The hub the application was built over (a FastAPI dependency, or called with the request)."""
    hub: Hub = request.app.state.hub
    return hub


def _key_from_headers(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return request.headers.get("x-api-key")


def session_principal(request: Request) -> Principal | None:
    hub = get_hub(request)
    token = request.cookies.get(SESSION_COOKIE)
    return hub.keys.session_principal(token) if token else None


def authenticate(request: Request) -> Principal:
    hub = get_hub(request)
    key = _key_from_headers(request)
    if key is not None:
        principal = hub.keys.verify(key)
        if principal is None:
            raise Unauthorized("the API key is not valid or has been revoked")
    else:
        token = request.cookies.get(SESSION_COOKIE)
        principal = hub.keys.session_principal(token) if token else None
        if principal is None or token is None:
            raise Unauthorized("send an API key: Authorization: Bearer <key> (or X-API-Key: <key>)")
        if request.method not in _SAFE_METHODS and request.headers.get(CSRF_HEADER) != hub.keys.csrf_token(token):
            raise Forbidden("missing or wrong CSRF token", code="csrf_failed")
    request.state.principal = principal
    return principal


def principal_of(request: Request) -> Principal:
    principal: Principal = request.state.principal
    return principal


def scope_of(request: Request) -> str | None:
    """The owner whose objects the caller may see (None: an admin, who sees all)."""
    return principal_of(request).scope


def require_admin(request: Request) -> None:
    if not authenticate(request).admin:
        raise Forbidden("this needs an admin key", code="admin_only")
