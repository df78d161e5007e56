"""Pages of the web UI. Each reads through the hub's manager, like the API, and renders a template."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from omtx_hub.api.views import iso, progress
from omtx_hub.chem import check_smiles
from omtx_hub.domain import JobType
from omtx_hub.errors import InvalidInput
from omtx_hub.hub import Hub
from omtx_hub.registry import available_predictors
from omtx_hub.web.fields import field_help

__all__ = ["STATIC_DIR", "router"]

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.globals.update(iso=iso, field_help=field_help)
router = APIRouter(include_in_schema=False)


def _hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


def _viewer_installed() -> bool:
    return (STATIC_DIR / "vendor" / "3Dmol-min.js").exists()


@router.get("/", response_class=HTMLResponse)
def index(request: Request) -> Any:
    hub = _hub(request)
    return templates.TemplateResponse(request, "index.html", {
        "predictors": sorted(available_predictors(hub.settings)),
        "default_predictor": hub.settings.default_predictor,
        "targets": hub.targets.list(hub.settings.owner, limit=100),
        "recent": hub.manager.list_jobs(owner=hub.settings.owner, limit=10),
        "progress": progress,
    })  # fmt: skip


@router.get("/jobs", response_class=HTMLResponse)
def jobs_page(
    request: Request,
    job_type: str | None = Query(None, pattern="^(INDIVIDUAL|BATCH_PARENT)$"),
    status: str | None = Query(None, pattern="^(pending|running|completed|failed|cancelled)$"),
    before: int | None = None,
) -> Any:
    hub = _hub(request)
    rows = hub.manager.list_jobs(owner=hub.settings.owner, job_type=job_type, status=status, limit=26,
                                 before_id=before)  # fmt: skip
    more = len(rows) > 25
    rows = rows[:25]
    return templates.TemplateResponse(request, "jobs.html", {
        "rows": rows, "job_type": job_type, "status": status, "progress": progress,
        "next_before": rows[-1]["id"] if more else None,
    })  # fmt: skip


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(job_id: str, request: Request) -> Any:
    hub = _hub(request)
    record = hub.manager.get(job_id, hub.settings.owner)
    if record["job_type"] == JobType.BATCH_PARENT.value:
        return templates.TemplateResponse(request, "batch.html", {"batch": record, "progress": progress(record)})
    folder = hub.store.job_dir(job_id, record["batch_parent_id"])
    files = hub.store.list_files(folder)
    return templates.TemplateResponse(request, "job.html", {
        "job": record, "files": files, "has_structure": "structure.cif" in files,
        "viewer_installed": _viewer_installed(),
    })  # fmt: skip


@router.get("/targets/{target_id}", response_class=HTMLResponse)
def target_page(target_id: str, request: Request) -> Any:
    hub = _hub(request)
    return templates.TemplateResponse(request, "target.html", {
        "target": hub.targets.get(target_id, hub.settings.owner),
    })  # fmt: skip


@router.get("/depict.svg")
def depict(smiles: str = Query(..., max_length=1000), width: int = Query(300, ge=100, le=800)) -> Response:
    """A 2D depiction of a ligand, drawn by RDKit."""
    from rdkit import Chem
    from rdkit.Chem.Draw import rdMolDraw2D

    if not check_smiles(smiles, max_heavy_atoms=500).ok:
        raise InvalidInput("not a valid SMILES", code="invalid_ligand")
    mol = Chem.MolFromSmiles(smiles)
    drawer = rdMolDraw2D.MolDraw2DSVG(width, int(width * 0.75))
    drawer.drawOptions().clearBackground = False
    rdMolDraw2D.PrepareAndDrawMolecule(drawer, mol)
    drawer.FinishDrawing()
    return Response(drawer.GetDrawingText(), media_type="image/svg+xml",
                    headers={"Cache-Control": "max-age=86400"})  # fmt: skip


