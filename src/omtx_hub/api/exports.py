"""Batch exports beyond the result tables (best poses as one SDF, structures as a ZIP) and ligand-file parsing."""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
import zipfile
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Request, UploadFile
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from omtx_hub.api.schemas import ERROR_RESPONSES
from omtx_hub.api.security import authenticate, scope_of
from omtx_hub.api.uploads import read_ligand_upload
from omtx_hub.domain import JobType
from omtx_hub.errors import NotFound
from omtx_hub.hub import Hub

__all__ = ["router"]

router = APIRouter(tags=["exports"], dependencies=[Depends(authenticate)], responses=ERROR_RESPONSES)
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _ranked_children(hub: Hub, batch_id: str, scope: str | None) -> list[dict[str, Any]]:
    """Completed children, best first when the batch has been ranked, else in batch order."""
    parent = hub.manager.get(batch_id, scope)
    if parent["job_type"] != JobType.BATCH_PARENT.value:
        raise NotFound(f"{batch_id} is not a batch", code="batch_not_found")
    children = [c for c in hub.manager.iter_children(batch_id) if c["status"] == "completed"]
    summary = parent["results"] or {}
    key, direction = summary.get("rank_by"), summary.get("direction", "asc")
    if key:
        scored = [c for c in children if isinstance((c["results"] or {}).get(key), (int, float))]
        rest = [c for c in children if c not in scored]
        scored.sort(key=lambda c: c["results"][key], reverse=direction == "desc")
        children = scored + rest
    return children


@router.get("/api/v1/jobs/{batch_id}/export/poses.sdf", summary="Best pose of every completed ligand, ranked, as SDF")
def export_poses(batch_id: str, request: Request) -> StreamingResponse:
    hub: Hub = request.app.state.hub
    children = _ranked_children(hub, batch_id, scope_of(request))

    def records() -> Iterator[bytes]:
        for rank, child in enumerate(children, start=1):
            folder = hub.store.job_dir(child["job_id"], batch_id)
            if "poses.sdf" not in hub.store.list_files(folder):
                continue
            text = hub.store.read_bytes(f"{folder}/poses.sdf").decode()
            first = text.split("$$$$", 1)[0].rstrip("\n")
            extra = {"batch_rank": rank, "job_id": child["job_id"], "ligand_name": child["input"]["ligand_name"],
                     "ligand_smiles": child["input"]["ligand_smiles"]}  # fmt: skip
            props = "".join(f">  <{k}>\n{v}\n\n" for k, v in extra.items())
            yield f"{first}\n{props}$$$$\n".encode()

    return StreamingResponse(records(), media_type="chemical/x-mdl-sdfile",
                             headers={"Content-Disposition": f'attachment; filename="{batch_id}_poses.sdf"'})  # fmt: skip


@router.get("/api/v1/jobs/{batch_id}/export/structures.zip", summary="Structure files of a batch as a ZIP with a manifest")
def export_structures(batch_id: str, request: Request) -> StreamingResponse:
    hub: Hub = request.app.state.hub
    children = _ranked_children(hub, batch_id, scope_of(request))
    spool = tempfile.SpooledTemporaryFile(max_size=64 * 1024 * 1024)
    manifest = io.StringIO()
    writer = csv.writer(manifest, lineterminator="\n")
    writer.writerow(["rank", "job_id", "ligand_name", "ligand_smiles", "file"])
    with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for rank, child in enumerate(children, start=1):
            folder = hub.store.job_dir(child["job_id"], batch_id)
            if "structure.cif" not in hub.store.list_files(folder):
                continue
            name = f"{rank:05d}_{_SAFE.sub('_', child['input']['ligand_name'])[:60]}_{child['job_id']}.cif"
            archive.writestr(f"structures/{name}", hub.store.read_bytes(f"{folder}/structure.cif"))
            writer.writerow([rank, child["job_id"], child["input"]["ligand_name"], child["input"]["ligand_smiles"],
                             f"structures/{name}"])  # fmt: skip
        archive.writestr("manifest.csv", manifest.getvalue())
        archive.writestr("batch.json", json.dumps({"batch_id": batch_id, "structures": len(children)}))
    spool.seek(0)

    def chunks() -> Iterator[bytes]:
        with spool:
            while chunk := spool.read(1 << 20):
                yield chunk

    return StreamingResponse(chunks(), media_type="application/zip",
                             headers={"Content-Disposition": f'attachment; filename="{batch_id}_structures.zip"'})  # fmt: skip


@router.post("/api/v1/ligands/parse", summary="Read a ligand file (.csv, .smi, .sdf) into names and SMILES")
async def parse_ligands(request: Request, file: Annotated[UploadFile, File()]) -> Any:
    hub: Hub = request.app.state.hub
    ligands = await run_in_threadpool(read_ligand_upload, file, hub.settings.max_upload_bytes)
    return {"ligands": [{"name": n, "smiles": s} for n, s in ligands], "count": len(ligands)}
