"""Jobs and batches: submit, status, children, list, record, cancel, retry, events, files."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from omtx_hub.access import authenticate, get_hub, principal_of, scope_of
from omtx_hub.analytics import RankingRules
from omtx_hub.api.schemas import (
    ERROR_RESPONSES,
    BatchRequest,
    BatchSubmitted,
    ChildrenPage,
    JobPage,
    JobStatusOut,
    JobSubmitted,
    PredictRequest,
    RescoreRequest,
)
from omtx_hub.api.uploads import json_object_field, read_ligand_upload
from omtx_hub.auth import Limits
from omtx_hub.errors import NotFound, PayloadTooLarge
from omtx_hub.hub import Hub
from omtx_hub.interactions import parse_requirements
from omtx_hub.presenters import (
    child_view,
    decode_cursor,
    encode_cursor,
    full_view,
    iso,
    status_view,
    summary_view,
)
from omtx_hub.services import batch_record, estimate, job_folder, rescore_choice, status_warnings, target_residues
from omtx_hub.storage import is_safe_file_name
from omtx_hub.submission import build_batch_submission, build_job_submission

__all__ = ["router"]

router = APIRouter(
    prefix="/api/v1/jobs", tags=["jobs"], dependencies=[Depends(authenticate)], responses=ERROR_RESPONSES
)

_MEDIA = {
    "json": "application/json",
    "csv": "text/csv",
    "cif": "chemical/x-mmcif",
    "sdf": "chemical/x-mdl-sdfile",
    "pdb": "chemical/x-pdb",
    "pdbqt": "text/plain",
    "txt": "text/plain",
    "zip": "application/zip",
}
StatusFilter = Query(None, pattern="^(pending|running|completed|failed|cancelled)$")


def _submitter(request: Request) -> tuple[Hub, str, Limits]:
    """The hub, the submitting owner and its limits, after the owner's rate limit is counted."""
    hub = get_hub(request)
    owner = principal_of(request).owner
    limits = hub.limits_for(owner)
    size = request.headers.get("content-length", "")
    if size.isdigit() and int(size) > limits.max_body_bytes:  # the hub-wide ceiling ran before parsing
        raise PayloadTooLarge(
            f"request body is larger than this owner's limit of {limits.max_body_bytes} bytes",
            code="payload_too_large",
            details={"limit": limits.max_body_bytes},
        )
    hub.rate.hit(owner, limits.submissions_per_minute)
    return hub, owner, limits


@router.post("/predict", status_code=202, response_model=JobSubmitted, summary="Submit one prediction")
def submit_job(body: PredictRequest, request: Request) -> Any:
    hub, owner, limits = _submitter(request)
    sub = build_job_submission(
        hub.settings,
        owner=owner,
        limits=limits,
        new_jobs=1,
        pending_jobs=hub.manager.unfinished_count(owner),
        target=hub.targets.get(body.target_id, scope_of(request)) if body.target_id else None,
        protein_sequence=body.protein_sequence,
        ligand_smiles=body.ligand_smiles,
        ligand_name=body.ligand_name,
        predictor=body.predictor,
        params=body.params,
        priority=body.priority,
        idempotency_key=body.idempotency_key,
    )
    result = hub.manager.submit_job(sub)
    r = result.record
    content = {"job_id": r["job_id"], "status": r["status"], "created_at": iso(r["created_at"])}
    return JSONResponse(status_code=202 if result.created else 200, content=content)


@router.post("/predict/batch", status_code=202, response_model=BatchSubmitted, summary="Submit a batch screen")
def submit_batch(
    body: BatchRequest,
    request: Request,
    dry_run: bool = Query(False, description="Validate and estimate time and cost; queue nothing (answer 200)."),
) -> Any:
    return _submit_batch(request, body, [(lig.name, lig.smiles) for lig in body.ligands], dry_run=dry_run)


def _submit_batch(
    request: Request,
    body: BatchRequest,
    ligands: list[tuple[str, str]],
    *,
    dry_run: bool = False,
    source: dict[str, Any] | None = None,
    endpoint: str | None = None,
) -> Any:
    hub, owner, limits = _submitter(request)
    target = hub.targets.get(body.target_id, scope_of(request)) if body.target_id else None
    sub = build_batch_submission(
        hub.settings,
        owner=owner,
        limits=limits,
        pending_jobs=hub.manager.unfinished_count(owner),
        target=target,
        batch_name=body.batch_name,
        protein_sequence=body.protein_sequence,
        ligands=ligands,
        predictor=body.predictor,
        params=body.params,
        max_concurrent=body.max_concurrent,
        priority=body.priority,
        idempotency_key=body.idempotency_key,
        skip_invalid=body.skip_invalid,
        filters=body.filters,
        defer_checks=not dry_run,  # the queue writes the rows while the ligands' checks run
    )
    try:
        if body.required_interactions or body.pose_checks:
            residues = target_residues(hub, sub.predictor, target, sub.protein_sequence)
            required = parse_requirements(body.required_interactions or [], residues)
            rules = RankingRules(tuple(required), body.pose_checks or "any")
            sub = dataclasses.replace(sub, ranking=rules.as_document())
        if dry_run:
            return JSONResponse(status_code=200, content=estimate(hub, sub))
        if source is not None:
            sub = dataclasses.replace(sub, source=source)
        if endpoint is not None:
            sub = dataclasses.replace(sub, endpoint=endpoint)
        result = hub.manager.submit_batch(sub)
    finally:
        if sub.check is not None:
            sub.check.cancel()  # a refusal before the queue waited on the checks: stop them
    r = result.record
    content = {
        "batch_id": r["job_id"],
        "job_id": r["job_id"],
        "status": r["status"],
        "total": r["n_total"],
        "skipped": r["input"].get("skipped", []),
        "filtered": r["input"].get("filtered", []),
        "created_at": iso(r["created_at"]),
    }
    return JSONResponse(status_code=202 if result.created else 200, content=content)


@router.post(
    "/predict/batch/upload",
    status_code=202,
    response_model=BatchSubmitted,
    summary="Submit a batch screen from a ligand file (.csv, .smi, .sdf)",
)
async def submit_batch_file(
    request: Request,
    file: Annotated[UploadFile, File(description="Ligands: CSV with a smiles column, SMILES file, or SDF.")],
    batch_name: Annotated[str, Form()],
    protein_sequence: Annotated[str | None, Form()] = None,
    target_id: Annotated[str | None, Form()] = None,
    predictor: Annotated[str | None, Form()] = None,
    params: Annotated[str, Form(description="Predictor parameters as a JSON object.")] = "{}",
    max_concurrent: Annotated[int | None, Form(ge=1)] = None,
    priority: Annotated[int, Form(ge=-100, le=100)] = 0,
    skip_invalid: Annotated[bool, Form()] = False,
    idempotency_key: Annotated[str | None, Form(max_length=200)] = None,
    filters: Annotated[str | None, Form(description="Pre-filters as a JSON object (see the JSON endpoint).")] = None,
    required_interactions: Annotated[
        str | None, Form(description="Required contacts, comma-separated: A:MET318:HBAcceptor,A:THR315")
    ] = None,
    pose_checks: Annotated[Literal["require", "any"] | None, Form()] = None,
    dry_run: bool = Query(False, description="Validate and estimate time and cost; queue nothing."),
) -> Any:
    hub = get_hub(request)
    parsed_params = json_object_field(params, "params", "invalid_params")
    parsed_filters = json_object_field(filters, "filters", "invalid_filters") if filters else None
    ligands = await run_in_threadpool(read_ligand_upload, file, hub.settings.max_upload_bytes)
    body = BatchRequest(
        batch_name=batch_name,
        protein_sequence=protein_sequence,
        target_id=target_id,
        ligands=[],
        predictor=predictor,
        params=parsed_params,
        max_concurrent=max_concurrent,
        priority=priority,
        idempotency_key=idempotency_key,
        skip_invalid=skip_invalid,
        filters=parsed_filters,
        required_interactions=[r for r in (required_interactions or "").split(",") if r.strip()] or None,
        pose_checks=pose_checks,
    )
    return await run_in_threadpool(
        lambda: _submit_batch(
            request, body, ligands, dry_run=dry_run, endpoint="POST /api/v1/jobs/predict/batch/upload"
        )
    )


@router.post(
    "/batch/{batch_id}/rescore",
    status_code=202,
    response_model=BatchSubmitted,
    summary="Funnel: send the top K of a batch to another predictor as a new, linked batch",
)
def rescore(batch_id: str, body: RescoreRequest, request: Request) -> Any:
    hub = get_hub(request)
    parent = batch_record(hub, batch_id, scope_of(request))
    key, direction, chosen = rescore_choice(hub, parent, body.sort, body.order, body.top_k)
    source_target = (parent["input"].get("target") or {}).get("target_id")
    target_id = body.target_id or source_target
    request_body = BatchRequest(
        batch_name=body.batch_name or f"{parent['name']} top {len(chosen)} → {body.predictor}",
        protein_sequence=body.protein_sequence or (None if target_id else parent["input"]["protein_sequence"]),
        target_id=target_id,
        ligands=[],
        predictor=body.predictor,
        params=body.params,
        max_concurrent=body.max_concurrent,
        priority=body.priority,
    )
    source = {"batch_id": batch_id, "rank_by": key, "direction": direction, "top_k": body.top_k, "sent": len(chosen)}
    return _submit_batch(request, request_body, chosen, source=source)


@router.get("", response_model=JobPage, summary="List jobs and batches, newest first")
def list_jobs(
    request: Request,
    job_type: str | None = Query(None, pattern="^(INDIVIDUAL|BATCH_PARENT|BATCH_CHILD)$"),
    status: str | None = StatusFilter,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = None,
) -> Any:
    hub = get_hub(request)
    rows = hub.manager.list_jobs(
        owner=scope_of(request), job_type=job_type, status=status, limit=limit + 1, before_id=decode_cursor(cursor)
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": [summary_view(r) for r in rows], "next_cursor": encode_cursor(rows[-1]["id"]) if more else None}


@router.get("/batch/{batch_id}/children", response_model=ChildrenPage, summary="Children of a batch")
def list_children(
    batch_id: str,
    request: Request,
    status: str | None = StatusFilter,
    limit: int = Query(100, ge=1, le=1000),
    cursor: str | None = None,
) -> Any:
    hub = get_hub(request)
    batch_record(hub, batch_id, scope_of(request))
    after = decode_cursor(cursor)
    rows = hub.manager.list_children(
        batch_id, status=status, limit=limit + 1, after_index=-1 if after is None else after
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "batch_id": batch_id,
        "items": [child_view(r) for r in rows],
        "next_cursor": encode_cursor(rows[-1]["batch_index"]) if more else None,
    }


@router.get("/{job_id}/status", response_model=JobStatusOut, summary="Status, progress and results")
def job_status(job_id: str, request: Request) -> Any:
    hub = get_hub(request)
    r = hub.manager.get(job_id, scope_of(request))
    return status_view(r, status_warnings(hub, r))


@router.get("/{job_id}", summary="The full job record")
def job_record(job_id: str, request: Request) -> Any:
    hub = get_hub(request)
    return full_view(hub.manager.get(job_id, scope_of(request)))


@router.get("/{job_id}/events", summary="Audit trail: every state transition")
def job_events(job_id: str, request: Request) -> Any:
    hub = get_hub(request)
    hub.manager.get(job_id, scope_of(request))
    items = [
        {
            "from": e["from_status"],
            "to": e["to_status"],
            "at": iso(e["at"]),
            "worker_id": e["worker_id"],
            "attempt": e["attempt"],
            "reason": e["reason"],
        }
        for e in hub.manager.events(job_id)
    ]
    return {"job_id": job_id, "events": items}


@router.post("/{job_id}/cancel", response_model=JobStatusOut, summary="Cancel a job or a whole batch")
def cancel(job_id: str, request: Request) -> Any:
    hub = get_hub(request)
    return status_view(hub.manager.cancel(job_id, scope_of(request)), [])


@router.post("/{job_id}/retry", response_model=JobStatusOut, summary="Retry a failed job or a batch's failed children")
def retry(job_id: str, request: Request) -> Any:
    hub = get_hub(request)
    return status_view(hub.manager.retry(job_id, scope_of(request)), [])


@router.get("/{job_id}/files", summary="Files stored for a job or batch")
def list_files(job_id: str, request: Request) -> Any:
    hub = get_hub(request)
    folder = job_folder(hub, job_id, scope_of(request))
    return {
        "job_id": job_id,
        "files": [{"name": n, "size": hub.store.size(f"{folder}/{n}")} for n in hub.store.list_files(folder)],
    }


@router.get("/{job_id}/files/{name}", summary="Download one file", response_class=StreamingResponse)
def download(job_id: str, name: str, request: Request) -> Any:
    hub = get_hub(request)
    folder = job_folder(hub, job_id, scope_of(request))
    if not is_safe_file_name(name) or name not in hub.store.list_files(folder):
        raise NotFound(f"job {job_id} has no file named {name!r}", code="file_not_found")
    media = _MEDIA.get(name.rsplit(".", 1)[-1].lower(), "application/octet-stream")
    return StreamingResponse(
        hub.store.iter_bytes(f"{folder}/{name}"),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
