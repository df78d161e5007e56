"""Targets: a receptor with its binding site (docking, co-folding) or a protein sequence (co-folding),
optionally with an MSA; created once, then referenced by id."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from omtx_hub.access import authenticate, get_hub, principal_of, scope_of
from omtx_hub.api.schemas import ERROR_RESPONSES
from omtx_hub.api.uploads import json_list_field, json_object_field, read_upload
from omtx_hub.errors import InvalidInput, NotFound
from omtx_hub.presenters import decode_cursor, encode_cursor, iso

__all__ = ["router"]

router = APIRouter(
    prefix="/api/v1/targets", tags=["targets"], dependencies=[Depends(authenticate)], responses=ERROR_RESPONSES
)


def _view(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "target_id": r["target_id"],
        "name": r["name"],
        "kind": r["kind"],
        "protein_sequence": r["protein_sequence"],
        "chains": r["chains"],
        "cofactors": r.get("cofactors") or [],
        "binding_site": r["site"],
        "files": sorted(r["files"]),
        "warnings": r["warnings"],
        "created_at": iso(r["created_at"]),
    }


@router.post("", status_code=201, summary="Create a target: a receptor + binding site, or a protein sequence")
async def create_target(
    request: Request,
    name: Annotated[str, Form(description="A name for the target.")],
    binding_site: Annotated[
        str | None,
        Form(description='With a receptor: JSON, e.g. {"mode": "box", "center": [x,y,z], "size": [20,20,20]}'),
    ] = None,
    receptor: Annotated[
        UploadFile | None,
        File(description="Receptor structure, .pdb or .cif, or an already prepared .pdbqt (docking)."),
    ] = None,
    reference_ligand: Annotated[UploadFile | None, File(description="Reference ligand pose, .sdf.")] = None,
    protein_sequence: Annotated[
        str | None, Form(description="Instead of a receptor: the protein sequence (a sequence target, for co-folding).")
    ] = None,
    chains: Annotated[
        str | None,
        Form(
            description='Instead of a receptor: the chains of a sequence target, JSON, e.g. [{"id": "A", '
            '"sequence": "MKT…", "copies": 2}] (copies take the next free letters).'
        ),
    ] = None,
    msa: Annotated[
        list[UploadFile] | None,
        File(description="Optional MSAs (.a3m), one per distinct chain, matched by their first (query) sequence."),
    ] = None,
    cofactors: Annotated[
        str | None,
        Form(
            description="Boltz-2 cofactors and ions co-folded with every ligand: CCD codes or SMILES, JSON list or "
            'comma-separated, e.g. ["ATP", "MG"] or [Zn+2].'
        ),
    ] = None,
    keep_hetero: Annotated[
        str | None,
        Form(description="Hetero residues of the receptor file to keep as cofactors, e.g. HEM (comma-separated)."),
    ] = None,
    repair: Annotated[
        bool,
        Form(description="Rebuild the receptor's missing side-chain atoms with PDBFixer first (said in warnings)."),
    ] = False,
) -> Any:
    hub = get_hub(request)
    site = json_object_field(binding_site, "binding_site", "invalid_binding_site") if binding_site else None
    chain_list = json_list_field(chains, "chains", "invalid_chains") if chains else None
    if chain_list is not None and not all(isinstance(c, dict) for c in chain_list):
        raise InvalidInput('chains must be a JSON list of {"id", "sequence", "copies"} objects', code="invalid_chains")
    cofactor_list = (
        [str(c) for c in json_list_field(cofactors, "cofactors", "invalid_cofactors")] if cofactors else None
    )
    hetero_list = (
        [str(c) for c in json_list_field(keep_hetero, "keep_hetero", "invalid_cofactors")] if keep_hetero else None
    )
    limit = hub.settings.max_upload_bytes
    receptor_data = await run_in_threadpool(read_upload, receptor, limit) if receptor else None
    ref_data = await run_in_threadpool(read_upload, reference_ligand, limit) if reference_ligand else None
    msa_data = [await run_in_threadpool(read_upload, m, limit) for m in msa] if msa else None
    record = hub.create_target(
        owner=principal_of(request).owner,
        name=name,
        receptor=receptor_data,
        receptor_filename=(receptor.filename or "receptor") if receptor else "",
        site=site,
        reference_ligand=ref_data,
        reference_filename=(reference_ligand.filename or "reference.sdf") if reference_ligand else "reference.sdf",
        protein_sequence=protein_sequence,
        msa=msa_data,
        repair=repair,
        chains=chain_list,
        cofactors=cofactor_list,
        keep_hetero=hetero_list,
    )
    return _view(record)


@router.get("", summary="List docking targets, newest first")
def list_targets(request: Request, limit: int = Query(50, ge=1, le=500), cursor: str | None = None) -> Any:
    hub = get_hub(request)
    rows = hub.targets.list(scope_of(request), limit=limit + 1, before_id=decode_cursor(cursor))
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": [_view(r) for r in rows], "next_cursor": encode_cursor(rows[-1]["id"]) if more else None}


@router.get("/{target_id}", summary="One docking target")
def get_target(target_id: str, request: Request) -> Any:
    hub = get_hub(request)
    return _view(hub.targets.get(target_id, scope_of(request)))


@router.get(
    "/{target_id}/files/{name}", summary="Download a target file (receptor.pdb, reference_ligand.sdf, msa_A.a3m)"
)
def target_file(target_id: str, name: str, request: Request) -> Any:
    from fastapi.responses import Response

    hub = get_hub(request)
    record = hub.targets.get(target_id, scope_of(request))
    if name not in record["files"]:
        raise NotFound(f"target {target_id} has no file named {name!r}", code="file_not_found")
    media = {".pdb": "chemical/x-pdb", ".sdf": "chemical/x-mdl-sdfile"}.get(Path(name).suffix, "text/plain")
    return Response(hub.store.read_bytes(record["files"][name]), media_type=media)
