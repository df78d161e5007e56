"""Batch analytics over HTTP: streamed exports (CSV, JSON, SDF, ZIP, Parquet), statistics, and ligand-file parsing."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from omtx_hub.api.schemas import ERROR_RESPONSES
from omtx_hub.api.security import authenticate, scope_of
from omtx_hub.api.uploads import read_ligand_upload
from omtx_hub.domain import JobType
from omtx_hub.analytics import EXPORT_FORMATS, Ranking, batch_stats, export_stream, plan_rows
from omtx_hub.errors import InvalidInput, NotFound
from omtx_hub.hub import Hub
from omtx_hub.params import PRIMARY_SCORES

__all__ = ["router"]

router = APIRouter(tags=["exports"], dependencies=[Depends(authenticate)], responses=ERROR_RESPONSES)


def batch_record(hub: Hub, batch_id: str, scope: str | None) -> dict[str, Any]:
    """The batch's record, or 404 when the id is unknown, another owner's, or not a batch."""
    parent = hub.manager.get(batch_id, scope)
    if parent["job_type"] != JobType.BATCH_PARENT.value:
        raise NotFound(f"{batch_id} is not a batch", code="batch_not_found")
    return parent


def default_ranking(parent: dict[str, Any]) -> tuple[str | None, str]:
    """The batch's primary score and direction: from its aggregation, else the predictor's documented one."""
    summary = parent["results"] or {}
    if summary.get("rank_by"):
        return summary["rank_by"], summary.get("direction", "asc")
    return PRIMARY_SCORES.get(parent["predictor"], (None, "asc"))


def _ranking(hub: Hub, parent: dict[str, Any], sort: str | None, order: str | None, status: str | None,
             top: int | None) -> Ranking:  # fmt: skip
    key, direction = default_ranking(parent)
    if sort:
        key = sort
    if key is None:
        raise InvalidInput(f"predictor {parent['predictor']!r} has no documented primary score: pass sort=FIELD",
                           code="sort_required")  # fmt: skip
    return plan_rows(hub.manager, parent["job_id"], sort_key=key, direction=(order or direction), status=status, top=top)


@router.get("/api/v1/jobs/{batch_id}/export", summary="Export a batch: csv, json, sdf, zip or parquet (streamed)",
            response_class=StreamingResponse)  # fmt: skip
def export(
    batch_id: str,
    request: Request,
    format: str = Query("csv", pattern="^(csv|json|sdf|zip|parquet)$", description="csv, json, sdf, zip, parquet"),  # noqa: A002
    sort: str | None = Query(None, description="Field to rank by (default: the predictor's primary score)."),
    order: str | None = Query(None, pattern="^(asc|desc)$", description="asc: lower is better."),
    status: str | None = Query(None, pattern="^(pending|running|completed|failed|cancelled)$"),
    top: int | None = Query(None, ge=1, description="Only the best N rows."),
) -> StreamingResponse:
    hub: Hub = request.app.state.hub
    parent = batch_record(hub, batch_id, scope_of(request))
    ranking = _ranking(hub, parent, sort, order, status, top)
    stream = export_stream(format, hub.manager, hub.store, batch_id, ranking, hub.settings)
    name = {"csv": "results.csv", "json": "results.json", "sdf": "best_poses.sdf", "zip": "structures.zip",
            "parquet": "results.parquet"}[format]  # fmt: skip
    return StreamingResponse(stream, media_type=EXPORT_FORMATS[format],
                             headers={"Content-Disposition": f'attachment; filename="{batch_id}_{name}"'})  # fmt: skip


@router.get("/api/v1/jobs/{batch_id}/export/poses.sdf", summary="Best pose of every completed ligand, ranked, as SDF",
            response_class=StreamingResponse)  # fmt: skip
def export_poses(batch_id: str, request: Request) -> StreamingResponse:
    return export(batch_id, request, format="sdf", sort=None, order=None, status=None, top=None)


@router.get("/api/v1/jobs/{batch_id}/export/structures.zip", summary="Structure files of a batch as a ZIP with a manifest",
            response_class=StreamingResponse)  # fmt: skip
def export_structures(batch_id: str, request: Request) -> StreamingResponse:
    return export(batch_id, request, format="zip", sort=None, order=None, status=None, top=None)


@router.get("/api/v1/jobs/{batch_id}/stats", summary="Batch statistics: counts, score summaries and histograms, top N, cost")
def stats(batch_id: str, request: Request, top: int = Query(10, ge=1, le=1000)) -> Any:
    hub: Hub = request.app.state.hub
    parent = batch_record(hub, batch_id, scope_of(request))
    key, direction = default_ranking(parent)
    return batch_stats(hub.manager, batch_id, primary=key or "", direction=direction, settings=hub.settings, top=top)


@router.post("/api/v1/ligands/parse", summary="Read a ligand file (.csv, .smi, .sdf) into names and SMILES")
async def parse_ligands(request: Request, file: Annotated[UploadFile, File()]) -> Any:
    hub: Hub = request.app.state.hub
    ligands = await run_in_threadpool(read_ligand_upload, file, hub.settings.max_upload_bytes)
    return {"ligands": [{"name": n, "smiles": s} for n, s in ligands], "count": len(ligands)}
