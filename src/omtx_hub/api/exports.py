"""Batch analytics over HTTP: streamed exports (CSV, JSON, SDF, ZIP, Parquet), statistics, and ligand-file parsing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.responses import StreamingResponse
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from omtx_hub.access import authenticate, get_hub, scope_of
from omtx_hub.analytics import EXPORT_FORMATS, Ranking, batch_stats, export_stream
from omtx_hub.api.schemas import ERROR_RESPONSES
from omtx_hub.api.uploads import read_ligand_upload
from omtx_hub.hub import Hub
from omtx_hub.services import batch_record, default_ranking, ranking_for, ranking_rules

__all__ = ["router"]

REQUIRED_INTERACTIONS = Query(
    None,
    description="Rank only ligands whose pose makes every one of these contacts: CHAIN:RESIDUE "
    "(any type) or CHAIN:RESIDUE:TYPE, e.g. A:MET318:HBAcceptor (repeatable; default: the batch's own).",
)
POSE_CHECKS = Query(
    None,
    pattern="^(require|any)$",
    description="require: rank only poses that passed the PoseBusters checks (default: the batch's own, else any).",
)

router = APIRouter(tags=["exports"], dependencies=[Depends(authenticate)], responses=ERROR_RESPONSES)


@router.get(
    "/api/v1/jobs/{batch_id}/export",
    summary="Export a batch: csv, json, sdf, zip or parquet (streamed)",
    response_class=StreamingResponse,
)
def export(
    batch_id: str,
    request: Request,
    format: str = Query("csv", pattern="^(csv|json|sdf|zip|parquet)$", description="csv, json, sdf, zip, parquet"),
    sort: str | None = Query(None, description="Field to rank by (default: the predictor's primary score)."),
    order: str | None = Query(None, pattern="^(asc|desc)$", description="asc: lower is better."),
    status: str | None = Query(None, pattern="^(pending|running|completed|failed|cancelled)$"),
    top: int | None = Query(None, ge=1, description="Only the best N rows."),
    after: str | None = Query(
        None,
        max_length=200,
        description="The next top=N rows of the ranking by the primary score: the next_cursor that the "
        "previous page (format=json) ended with.",
    ),
    required_interactions: list[str] | None = REQUIRED_INTERACTIONS,
    pose_checks: str | None = POSE_CHECKS,
) -> StreamingResponse:
    hub = get_hub(request)
    parent = batch_record(hub, batch_id, scope_of(request))
    rules = ranking_rules(parent, required_interactions, pose_checks)
    ranking = ranking_for(hub, parent, sort, order, status, top, rules, after)
    return _streamed(hub, batch_id, format, ranking)


def _streamed(hub: Hub, batch_id: str, fmt: str, ranking: Ranking) -> StreamingResponse:
    name = {
        "csv": "results.csv",
        "json": "results.json",
        "sdf": "best_poses.sdf",
        "zip": "structures.zip",
        "parquet": "results.parquet",
    }[fmt]
    return StreamingResponse(
        _closed_after(export_stream(fmt, hub.manager, hub.store, batch_id, ranking, hub.settings)),
        media_type=EXPORT_FORMATS[fmt],
        headers={"Content-Disposition": f'attachment; filename="{batch_id}_{name}"'},
    )


async def _closed_after(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """The chunks, made in the thread pool; closed there once the response ends, also when the client
    went away: an export's pool processes (analytics.fanout) then stop without holding up the event
    loop, where the generator's garbage collection would have closed it."""
    try:
        async for chunk in iterate_in_threadpool(chunks):
            yield chunk
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(close)


def _default_export(request: Request, batch_id: str, fmt: str) -> StreamingResponse:
    """A batch's export in its own ranking (its primary score and rules), every row."""
    hub = get_hub(request)
    parent = batch_record(hub, batch_id, scope_of(request))
    return _streamed(hub, batch_id, fmt, ranking_for(hub, parent, None, None, None, None))


@router.get(
    "/api/v1/jobs/{batch_id}/export/poses.sdf",
    summary="Best pose of every completed ligand, ranked, as SDF",
    response_class=StreamingResponse,
)
def export_poses(batch_id: str, request: Request) -> StreamingResponse:
    return _default_export(request, batch_id, "sdf")


@router.get(
    "/api/v1/jobs/{batch_id}/export/structures.zip",
    summary="Structure files of a batch as a ZIP with a manifest",
    response_class=StreamingResponse,
)
def export_structures(batch_id: str, request: Request) -> StreamingResponse:
    return _default_export(request, batch_id, "zip")


@router.get(
    "/api/v1/jobs/{batch_id}/stats", summary="Batch statistics: counts, score summaries and histograms, top N, cost"
)
def stats(
    batch_id: str,
    request: Request,
    top: int = Query(10, ge=1, le=1000),
    required_interactions: list[str] | None = REQUIRED_INTERACTIONS,
    pose_checks: str | None = POSE_CHECKS,
    fields: str = Query(
        "all",
        pattern="^(all|primary)$",
        description="all: a summary of every numeric field (reads every child); primary: of the primary "
        "score only, from its index (fast at any batch size)",
    ),
) -> Any:
    hub = get_hub(request)
    parent = batch_record(hub, batch_id, scope_of(request))
    key, direction = default_ranking(parent)
    rules = ranking_rules(parent, required_interactions, pose_checks)
    return batch_stats(
        hub.manager,
        batch_id,
        primary=key or "",
        direction=direction,
        settings=hub.settings,
        top=top,
        rules=rules,
        fields=fields,
    )


@router.post("/api/v1/ligands/parse", summary="Read a ligand file (.csv, .smi, .sdf) into names and SMILES")
async def parse_ligands(request: Request, file: Annotated[UploadFile, File()]) -> Any:
    hub = get_hub(request)
    ligands = await run_in_threadpool(read_ligand_upload, file, hub.settings.max_upload_bytes)
    return {"ligands": [{"name": n, "smiles": s} for n, s in ligands], "count": len(ligands)}
