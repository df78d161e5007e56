"""Request and response bodies of the API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ERROR_RESPONSES",
    "BatchRequest",
    "BatchSubmitted",
    "ChildrenPage",
    "JobPage",
    "JobStatusOut",
    "JobSubmitted",
    "LigandIn",
    "PredictRequest",
    "Progress",
    "RescoreRequest",
    "StrictModel",
]


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in [
        (400, "Malformed JSON"),
        (401, "No valid API key or session"),
        (403, "Not allowed"),
        (404, "Unknown id, or another owner's"),
        (409, "State conflict"),
        (413, "Too large"),
        (422, "Invalid input"),
        (429, "Rate limit or quota"),
        (503, "Database or storage down"),
    ]
}


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PredictRequest(StrictModel):
    protein_sequence: str | None = Field(
        None, description="Target protein, one-letter amino-acid codes (optional with target_id)."
    )
    target_id: str | None = Field(None, description="A docking target (POST /api/v1/targets); needed by vina.")
    ligand_smiles: str = Field(description="Ligand as SMILES; parsed by RDKit before anything is queued.")
    ligand_name: str = Field("ligand", description="A name for the ligand, shown in results.")
    predictor: str | None = Field(None, description="Predictor name; default: the hub's OMTX_DEFAULT_PREDICTOR.")
    params: dict[str, Any] = Field(default_factory=dict, description="Predictor parameters.")
    priority: int = Field(0, ge=-100, le=100, description="Higher runs first.")
    idempotency_key: str | None = Field(
        None,
        max_length=200,
        description="The same key with the same request returns the first job (200); "
        "with a different request or endpoint it is refused (409 idempotency_key_reused).",
    )


class LigandIn(StrictModel):
    name: str
    smiles: str


class BatchRequest(StrictModel):
    batch_name: str = Field(description="A name for the screen.")
    protein_sequence: str | None = None
    target_id: str | None = None
    ligands: list[LigandIn] = Field(description="Ligands to screen; names must be unique within the batch.")
    max_concurrent: int | None = Field(None, ge=1, description="Cap on this batch's running children.")
    predictor: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    priority: int = Field(0, ge=-100, le=100)
    idempotency_key: str | None = Field(
        None,
        max_length=200,
        description="The same key with the same request returns the first batch (200); "
        "with a different request or endpoint it is refused (409 idempotency_key_reused).",
    )
    skip_invalid: bool = Field(False, description="Queue the valid ligands and report the invalid ones.")
    filters: dict[str, Any] | None = Field(
        None,
        description='Pre-filters, e.g. {"lipinski": true, "pains": "exclude", "max_mw": 600, "dedupe": true}; '
        "excluded ligands are reported as filtered, with the reason (docs/analytics.md).",
    )
    required_interactions: list[str] | None = Field(
        None,
        description="Rank only ligands whose pose makes every one of these contacts, e.g. "
        '["A:MET318:HBAcceptor"] or ["A:MET318"] (any type); each must name a residue of the target.',
    )
    pose_checks: Literal["require", "any"] | None = Field(
        None, description="require: rank only poses that pass the PoseBusters checks (default any)."
    )


class RescoreRequest(StrictModel):
    top_k: int = Field(ge=1, description="How many of the source batch's best completed ligands to send on.")
    predictor: str = Field(description="The predictor of the new batch, e.g. boltz2 after a vina screen.")
    params: dict[str, Any] = Field(default_factory=dict)
    batch_name: str | None = Field(None, description="Default: '<source name> top K → predictor'.")
    target_id: str | None = Field(None, description="Default: the source batch's target.")
    protein_sequence: str | None = Field(None, description="Default: the source batch's sequence.")
    sort: str | None = Field(None, description="Rank the source by this field (default: its primary score).")
    order: str | None = Field(None, pattern="^(asc|desc)$")
    max_concurrent: int | None = Field(None, ge=1)
    priority: int = Field(0, ge=-100, le=100)


class Progress(BaseModel):
    total: int
    pending: int
    running: int
    completed: int
    failed: int
    cancelled: int


class JobSubmitted(BaseModel):
    job_id: str
    status: str
    created_at: str


class BatchSubmitted(BaseModel):
    batch_id: str
    job_id: str
    status: str
    total: int
    skipped: list[dict[str, Any]]
    filtered: list[dict[str, Any]] = Field(default_factory=list)
    created_at: str


class JobStatusOut(BaseModel):
    job_id: str
    job_type: str
    status: str
    name: str | None
    predictor: str
    batch_id: str | None = None
    created_at: str
    started_at: str | None
    completed_at: str | None
    cancel_requested: bool
    progress: Progress | None = None
    results: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    warnings: list[str] = Field(default_factory=list)


class ChildOut(BaseModel):
    job_id: str
    batch_index: int
    ligand_name: str
    ligand_smiles: str
    status: str
    attempts: int
    results: dict[str, Any] | None
    error: dict[str, Any] | None


class ChildrenPage(BaseModel):
    batch_id: str
    items: list[ChildOut]
    next_cursor: str | None


class JobSummary(BaseModel):
    job_id: str
    job_type: str
    status: str
    name: str | None
    predictor: str
    created_at: str
    completed_at: str | None
    progress: Progress | None = None


class JobPage(BaseModel):
    items: list[JobSummary]
    next_cursor: str | None
