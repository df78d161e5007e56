"""Job records (database rows) rendered as documents: for the API's JSON and the web UI's pages alike."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, timezone
from typing import Any

from omtx_hub.domain import JobType
from omtx_hub.errors import InvalidInput

__all__ = [
    "child_view",
    "decode_cursor",
    "encode_cursor",
    "full_view",
    "iso",
    "progress",
    "status_view",
    "summary_view",
]

Record = dict[str, Any]


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, tz=timezone.utc).isoformat()


def encode_cursor(value: int) -> str:
    return base64.urlsafe_b64encode(str(value).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return int(base64.urlsafe_b64decode(padded.encode()).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidInput("cursor is not one this API issued", code="invalid_cursor") from exc


def progress(r: Record) -> dict[str, int] | None:
    if r["job_type"] != JobType.BATCH_PARENT.value:
        return None
    return {k: r[f"n_{k}"] for k in ("total", "pending", "running", "completed", "failed", "cancelled")}


def summary_view(r: Record) -> dict[str, Any]:
    return {
        "job_id": r["job_id"],
        "job_type": r["job_type"],
        "status": r["status"],
        "name": r["name"],
        "predictor": r["predictor"],
        "created_at": iso(r["created_at"]),
        "completed_at": iso(r["completed_at"]),
        "progress": progress(r),
    }


def status_view(r: Record, warnings: list[str]) -> dict[str, Any]:
    return {
        **summary_view(r),
        "batch_id": r["batch_parent_id"],
        "started_at": iso(r["started_at"]),
        "cancel_requested": bool(r["cancel_requested"]),
        "results": r["results"],
        "error": r["error"],
        "warnings": warnings,
    }


def child_view(r: Record) -> dict[str, Any]:
    return {
        "job_id": r["job_id"],
        "batch_index": r["batch_index"],
        "ligand_name": r["input"]["ligand_name"],
        "ligand_smiles": r["input"]["ligand_smiles"],
        "status": r["status"],
        "attempts": r["attempts"],
        "results": r["results"],
        "error": r["error"],
    }


def full_view(r: Record) -> dict[str, Any]:
    out = {k: v for k, v in r.items() if k not in {"id"} and not k.startswith("n_")}
    for key in (
        "created_at",
        "started_at",
        "completed_at",
        "run_after",
        "lease_expires_at",
        "last_claimed_at",
        "aggregated_at",
    ):
        out[key] = iso(r[key])
    out["cancel_requested"] = bool(r["cancel_requested"])
    out["batch_id"] = out.pop("batch_parent_id")
    out["progress"] = progress(r)
    return out
