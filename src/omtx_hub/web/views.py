"""Pages of the web UI. Each reads through the hub's manager, like the API, and renders a template."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from omtx_hub.access import SESSION_COOKIE, get_hub, session_principal
from omtx_hub.analytics import RankingRules
from omtx_hub.auth import SESSION_SECONDS, Principal
from omtx_hub.chem import check_smiles
from omtx_hub.domain import JobType
from omtx_hub.errors import InvalidInput
from omtx_hub.hub import Hub
from omtx_hub.predictors.boltz2_spec import METHODS
from omtx_hub.predictors.catalog import field_help
from omtx_hub.presenters import iso, progress
from omtx_hub.registry import available_predictors
from omtx_hub.services import default_ranking

__all__ = ["STATIC_DIR", "LoginRequired", "router"]

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.globals.update(iso=iso, field_help=field_help)
router = APIRouter(include_in_schema=False)


LOGIN_CSRF_COOKIE = "omtx_login_csrf"


class LoginRequired(Exception):
    """Raised by a page without a session; the app answers with a redirect to /login."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


def _page(request: Request) -> tuple[Hub, Principal]:
    """The hub and the signed-in user of a page (or a redirect to the login page)."""
    principal = session_principal(request)
    if principal is None:
        raise LoginRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    return get_hub(request), principal


def _render(request: Request, principal: Principal, template: str, context: dict[str, Any]) -> Any:
    hub = get_hub(request)
    token = request.cookies.get(SESSION_COOKIE, "")
    context = {**context, "principal": principal, "csrf_token": hub.keys.csrf_token(token)}
    return templates.TemplateResponse(request, template, context)


def _safe_next(path: str) -> str:
    return path if path.startswith("/") and not path.startswith("//") and "\\" not in path else "/"


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> Any:
    token = secrets.token_urlsafe(24)
    response = templates.TemplateResponse(
        request, "login.html", {"next": _safe_next(next), "login_csrf": token, "error": None}
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", path="/login", secure=request.url.scheme == "https"
    )
    return response


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, api_key: str = Form(...), csrf: str = Form(...), next: str = Form("/")) -> Any:
    hub = get_hub(request)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE)
    principal = hub.keys.verify(api_key.strip()) if expected and secrets.compare_digest(csrf, expected) else None
    if principal is None:
        token = secrets.token_urlsafe(24)
        response = templates.TemplateResponse(
            request,
            "login.html",
            {
                "next": _safe_next(next),
                "login_csrf": token,
                "error": "That key is not valid (or has been revoked)." if expected else "Your login form expired.",
            },
            status_code=401,
        )
        response.set_cookie(
            LOGIN_CSRF_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            path="/login",
            secure=request.url.scheme == "https",
        )
        return response
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        hub.keys.session_token(principal),
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, csrf: str = Form(...)) -> Any:
    hub = get_hub(request)
    token = request.cookies.get(SESSION_COOKIE, "")
    response = RedirectResponse("/login", status_code=303)
    if token and secrets.compare_digest(csrf, hub.keys.csrf_token(token)):
        response.delete_cookie(SESSION_COOKIE)
    return response


def _viewer_installed() -> bool:
    return (STATIC_DIR / "vendor" / "3Dmol-min.js").exists()


@router.get("/", response_class=HTMLResponse)
def index(request: Request) -> Any:
    hub, principal = _page(request)
    return _render(
        request,
        principal,
        "index.html",
        {
            "predictors": sorted(available_predictors(hub.settings)),
            "default_predictor": hub.settings.default_predictor,
            "targets": hub.targets.list(principal.scope, limit=100),
            "boltz2_methods": METHODS,
            "recent": hub.manager.list_jobs(owner=principal.scope, limit=10),
            "progress": progress,
        },
    )


@router.get("/jobs", response_class=HTMLResponse)
def jobs_page(
    request: Request,
    job_type: str | None = Query(None, pattern="^(INDIVIDUAL|BATCH_PARENT)$"),
    status: str | None = Query(None, pattern="^(pending|running|completed|failed|cancelled)$"),
    before: int | None = None,
) -> Any:
    hub, principal = _page(request)
    rows = hub.manager.list_jobs(owner=principal.scope, job_type=job_type, status=status, limit=26, before_id=before)
    more = len(rows) > 25
    rows = rows[:25]
    return _render(
        request,
        principal,
        "jobs.html",
        {
            "rows": rows,
            "job_type": job_type,
            "status": status,
            "progress": progress,
            "next_before": rows[-1]["id"] if more else None,
        },
    )


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(job_id: str, request: Request) -> Any:
    hub, principal = _page(request)
    record = hub.manager.get(job_id, principal.scope)
    if record["job_type"] == JobType.BATCH_PARENT.value:
        rank_by, direction = default_ranking(record)  # the predictor's declared primary score
        rules = RankingRules.of_batch(record).as_document()  # what a pose must show to be ranked
        context = {
            "batch": record,
            "progress": progress(record),
            "rank_by": rank_by or "",
            "direction": direction,
            "required_interactions": ",".join(rules["required_interactions"]),
            "pose_checks": rules["pose_checks"],
        }
        return _render(request, principal, "batch.html", context)
    folder = hub.store.job_dir(job_id, record["batch_parent_id"])
    files = hub.store.list_files(folder)
    contacts = json.loads(hub.store.read_bytes(f"{folder}/interactions.json")) if "interactions.json" in files else []
    return _render(
        request,
        principal,
        "job.html",
        {
            "job": record,
            "files": files,
            "has_structure": "structure.cif" in files,
            "viewer_installed": _viewer_installed(),
            "contacts": contacts,
            # the residues the viewer highlights: each once, with its polar contact types
            "contact_residues": json.dumps(_contact_residues(contacts)),
            "hydrogen_bonds": json.dumps(
                [{"start": c["ligand_xyz"], "end": c["protein_xyz"]} for c in contacts if "ligand_xyz" in c]
            ),
        },
    )


def _contact_residues(contacts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    residues: dict[tuple[str, int], dict[str, Any]] = {}
    for c in contacts:
        entry = residues.setdefault(
            (c["chain"], c["number"]),
            {"chain": c["chain"], "resi": c["number"], "label": f"{c['residue']}{c['number']}", "types": []},
        )
        if c["interaction"] != "Hydrophobic":
            entry["types"].append(c["interaction"])
    return list(residues.values())


@router.get("/targets/{target_id}", response_class=HTMLResponse)
def target_page(target_id: str, request: Request) -> Any:
    hub, principal = _page(request)
    return _render(request, principal, "target.html", {"target": hub.targets.get(target_id, principal.scope)})


@router.get("/depict.svg")
def depict(
    request: Request, smiles: str = Query(..., max_length=1000), width: int = Query(300, ge=100, le=800)
) -> Response:
    """A 2D depiction of a ligand, drawn by RDKit (for signed-in users)."""
    _page(request)
    from rdkit import Chem
    from rdkit.Chem.Draw import rdMolDraw2D

    if not check_smiles(smiles, max_heavy_atoms=500).ok:
        raise InvalidInput("not a valid SMILES", code="invalid_ligand")
    mol = Chem.MolFromSmiles(smiles)
    drawer = rdMolDraw2D.MolDraw2DSVG(width, int(width * 0.75))
    drawer.drawOptions().clearBackground = False
    rdMolDraw2D.PrepareAndDrawMolecule(drawer, mol)
    drawer.FinishDrawing()
    return Response(drawer.GetDrawingText(), media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})
