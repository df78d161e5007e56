"""Turning a user's request into queue submissions: every check happens here, before anything is stored."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from functools import partial
from typing import Any

from omtx_hub.auth import Limits
from omtx_hub.chem import check_smiles, clean_protein_sequence, control_character_in
from omtx_hub.domain import Ligand
from omtx_hub.errors import InvalidInput, PayloadTooLarge, RateLimited
from omtx_hub.ligands import apply_filters, ligand_properties, parse_filters
from omtx_hub.parallel import Chunks, start_chunks
from omtx_hub.predictors.boltz2_input import complex_plan, ligand_atom
from omtx_hub.predictors.catalog import validate_params
from omtx_hub.queue import BatchSubmission, JobSubmission
from omtx_hub.registry import available_predictors
from omtx_hub.settings import Settings

__all__ = ["build_batch_submission", "build_job_submission", "default_limits"]

MAX_NAME_LENGTH = 200
_CHECKS_PER_PROCESS = 10_000  # SMILES checks (≈60 µs each) per extra process worth its start-up
CCD_CODE = re.compile(r"[A-Z0-9]{1,5}")
# Predictors that dock into a receptor structure: they need a target (POST /api/v1/targets).
RECEPTOR_PREDICTORS = frozenset({"vina"})


def default_limits(settings: Settings) -> Limits:
    """The hub-wide limits, for callers without an owner override (the library, the benchmarks)."""
    return Limits(
        max_pending_jobs=settings.max_pending_jobs,
        max_batch_size=settings.max_batch_size,
        max_sequence_length=settings.max_sequence_length,
        max_heavy_atoms=settings.max_heavy_atoms,
        submissions_per_minute=settings.submissions_per_minute,
        max_body_bytes=settings.max_body_bytes,
    )


def _check_pending(limits: Limits, pending_jobs: int, new_jobs: int) -> None:
    if pending_jobs + new_jobs > limits.max_pending_jobs:
        raise RateLimited(
            f"this owner has {pending_jobs} unfinished jobs; {new_jobs} more would pass the limit of "
            f"{limits.max_pending_jobs} (OMTX_MAX_PENDING_JOBS); wait for some to finish",
            retry_after=60,
        )


def _target_input(
    limits: Limits, predictor: str, protein_sequence: str | None, target: dict[str, Any] | None
) -> tuple[str, dict[str, Any]]:
    """The protein sequence and the ``target`` dict a job carries, from the request and the target record."""
    if predictor in RECEPTOR_PREDICTORS and target is None:
        raise InvalidInput(
            f"predictor {predictor!r} docks into a receptor structure: create a target "
            "(POST /api/v1/targets or `omtx-hub target create`) and pass its target_id",
            code="target_required",
        )
    if target is None:
        if protein_sequence is None:
            raise InvalidInput(
                "give protein_sequence or target_id",
                code="invalid_protein_sequence",
                details={"field": "protein_sequence"},
            )
        return _sequence(limits, protein_sequence), {}
    if predictor in RECEPTOR_PREDICTORS and not target.get("site"):
        raise InvalidInput(
            f"predictor {predictor!r} needs a target with a receptor structure and a binding site; "
            f"target {target['target_id']} is a sequence target",
            code="target_required",
        )
    sequence = _sequence(limits, protein_sequence) if protein_sequence else target["protein_sequence"]
    found = {"target_id": target["target_id"], "name": target["name"], "files": target["files"]}
    if target.get("site"):
        found["box"] = {"center": target["site"]["center"], "size": target["site"]["size"]}
    return sequence, found


def _msa_policy(settings: Settings, predictor: str, params: dict[str, Any], target_input: dict[str, Any]) -> None:
    """Boltz-2: resolve the MSA policy into the target (it is per-target work, so part of the target key)."""
    if predictor != "boltz2":
        return
    wanted = params.get("msa", "auto")
    if wanted == "server" and not settings.msa_server_url:
        raise InvalidInput(
            "msa='server' needs an MSA server: set OMTX_MSA_SERVER_URL (ColabFold-compatible), or upload an "
            ".a3m with the target, or use msa='empty'",
            code="msa_server_not_configured",
            details={"param": "msa"},
        )
    if wanted == "auto":
        wanted = "upload" if any(name.startswith("msa") for name in target_input.get("files", {})) else "empty"
    target_input["msa"] = wanted


def _check_idempotency_key(key: str | None) -> None:
    control = control_character_in(key) if key is not None else None
    if control:
        raise InvalidInput(
            f"idempotency_key contains a control character ({control})",
            code="invalid_idempotency_key",
            details={"field": "idempotency_key"},
        )


def _name_problem(name: str) -> str | None:
    if not name.strip():
        return "ligand name is empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"ligand name is longer than {MAX_NAME_LENGTH} characters"
    control = control_character_in(name)
    if control:
        return f"ligand name contains a control character ({control}); names must be printable"
    if name.strip().startswith("$$$$"):
        return "ligand name begins with $$$$, which ends a record in SDF files"
    return None


def _ligand_problem_for(
    predictor: str, name: str, smiles: str, max_heavy_atoms: int, covalent_atom: str | int | None = None
) -> str | None:
    """Boltz-2 also takes a ligand as a CCD code, written ``ccd:ATP``; a covalent job's ligand must
    have the named atom."""
    if covalent_atom is not None:
        if smiles.strip().lower().startswith("ccd:"):
            return "a covalent job needs a SMILES ligand (the bond names one of its atoms)"
        problem = _ligand_problem(name, smiles, max_heavy_atoms)
        if problem:
            return problem
        try:
            ligand_atom(smiles.strip(), covalent_atom)
        except ValueError as exc:
            return f"covalent: {exc}"
        return None
    if predictor == "boltz2" and smiles.strip().lower().startswith("ccd:"):
        code = smiles.strip()[4:]
        if not CCD_CODE.fullmatch(code):
            return "a CCD ligand is written ccd:CODE, with 1 to 5 upper-case letters or digits (e.g. ccd:ATP)"
        return _name_problem(name)
    return _ligand_problem(name, smiles, max_heavy_atoms)


def _ligand_problems(
    predictor: str, max_heavy_atoms: int, covalent_atom: str | int | None, ligands: list[tuple[str, str]]
) -> list[str | None]:
    return [_ligand_problem_for(predictor, name, smiles, max_heavy_atoms, covalent_atom) for name, smiles in ligands]


def _covalent_atom(target_input: dict[str, Any]) -> str | int | None:
    covalent = target_input.get("covalent")
    return covalent["ligand_atom"] if covalent else None


def _predictor(settings: Settings, name: str | None) -> str:
    chosen = name or settings.default_predictor
    known = available_predictors(settings)
    if chosen not in known:
        raise InvalidInput(
            f"unknown predictor {chosen!r}; this hub knows: {', '.join(sorted(known)) or 'none installed'}",
            code="unknown_predictor",
            details={"predictor": chosen, "known": sorted(known)},
        )
    return chosen


def _sequence(limits: Limits, raw: str) -> str:
    try:
        return clean_protein_sequence(raw, limits.max_sequence_length)
    except ValueError as exc:
        raise InvalidInput(str(exc), code="invalid_protein_sequence", details={"field": "protein_sequence"}) from exc


def _ligand_problem(name: str, smiles: str, max_heavy_atoms: int) -> str | None:
    problem = _name_problem(name)
    if problem:
        return problem
    check = check_smiles(smiles, max_heavy_atoms)
    return None if check.ok else check.reason


def build_job_submission(
    settings: Settings,
    *,
    owner: str,
    protein_sequence: str | None,
    ligand_smiles: str,
    ligand_name: str,
    predictor: str | None = None,
    params: dict[str, Any] | None = None,
    priority: int = 0,
    idempotency_key: str | None = None,
    target: dict[str, Any] | None = None,
    limits: Limits | None = None,
    pending_jobs: int = 0,
    new_jobs: int = 1,
) -> JobSubmission:
    limits = limits or default_limits(settings)
    _check_idempotency_key(idempotency_key)
    chosen = _predictor(settings, predictor)
    sequence, target_input = _target_input(limits, chosen, protein_sequence, target)
    checked_params = validate_params(chosen, params or {})
    _msa_policy(settings, chosen, checked_params, target_input)
    if chosen == "boltz2":
        target_input.update(complex_plan(checked_params, target, sequence, target_input))
    problem = _ligand_problem_for(
        chosen, ligand_name, ligand_smiles, limits.max_heavy_atoms, _covalent_atom(target_input)
    )
    if problem:
        raise InvalidInput(
            f"ligand {ligand_name!r}: {problem}",
            code="invalid_ligand",
            details={"ligands": [{"index": 0, "name": ligand_name, "smiles": ligand_smiles, "reason": problem}]},
        )
    _check_pending(limits, pending_jobs, new_jobs)
    return JobSubmission(
        owner=owner,
        predictor=chosen,
        protein_sequence=sequence,
        ligand=Ligand(name=ligand_name.strip(), smiles=ligand_smiles.strip()),
        properties=ligand_properties(ligand_smiles),
        params=checked_params,
        target=target_input,
        priority=priority,
        idempotency_key=idempotency_key,
        max_attempts=settings.max_attempts,
    )


def build_batch_submission(
    settings: Settings,
    *,
    owner: str,
    batch_name: str,
    protein_sequence: str | None,
    ligands: Sequence[tuple[str, str]],
    predictor: str | None = None,
    params: dict[str, Any] | None = None,
    max_concurrent: int | None = None,
    priority: int = 0,
    idempotency_key: str | None = None,
    skip_invalid: bool = False,
    target: dict[str, Any] | None = None,
    limits: Limits | None = None,
    pending_jobs: int = 0,
    filters: dict[str, Any] | None = None,
    defer_checks: bool = False,
) -> BatchSubmission:
    """``ligands`` are (name, smiles) pairs. Every problem is reported at once, by index and name.

    ``defer_checks``: when every ligand would be queued or none (no ``skip_invalid``, no filters, no
    duplicate names) and the checks run in a process pool (a large batch), they are left running,
    and the submission carries them (``check``) for the queue to wait on while it writes the rows."""
    if not batch_name.strip():
        raise InvalidInput("batch_name is empty", code="invalid_batch_name", details={"field": "batch_name"})
    control = control_character_in(batch_name)
    if control:
        raise InvalidInput(
            f"batch_name contains a control character ({control}); names must be printable",
            code="invalid_batch_name",
            details={"field": "batch_name"},
        )
    _check_idempotency_key(idempotency_key)
    if not ligands:
        raise InvalidInput("the batch has no ligands", code="no_ligands", details={"field": "ligands"})
    limits = limits or default_limits(settings)
    if len(ligands) > limits.max_batch_size:
        raise PayloadTooLarge(
            f"the batch has {len(ligands)} ligands; the limit is {limits.max_batch_size} (OMTX_MAX_BATCH_SIZE)",
            code="batch_too_large",
            details={"count": len(ligands), "limit": limits.max_batch_size},
        )
    chosen = _predictor(settings, predictor)
    sequence, target_input = _target_input(limits, chosen, protein_sequence, target)
    checked_params = validate_params(chosen, params or {})
    _msa_policy(settings, chosen, checked_params, target_input)
    if chosen == "boltz2":
        target_input.update(complex_plan(checked_params, target, sequence, target_input))
    checked_filters = parse_filters(filters)

    seen: dict[str, list[int]] = defaultdict(list)
    for index, (name, _smiles) in enumerate(ligands):
        seen[name.strip()].append(index)
    duplicates = [
        {
            "index": i,
            "name": name,
            "smiles": ligands[i][1],
            "reason": f"duplicate ligand name (also at index {indices[0]})",
        }
        for name, indices in seen.items()
        if len(indices) > 1 and name
        for i in indices[1:]
    ]
    checks = start_chunks(
        partial(_ligand_problems, chosen, limits.max_heavy_atoms, _covalent_atom(target_input)),
        ligands,
        per_process=_CHECKS_PER_PROCESS,
        chunk=5_000,
    )
    common: dict[str, Any] = {
        "owner": owner,
        "predictor": chosen,
        "protein_sequence": sequence,
        "batch_name": batch_name.strip(),
        "params": checked_params,
        "target": target_input,
        "max_concurrent": max_concurrent,
        "priority": priority,
        "idempotency_key": idempotency_key,
        "max_attempts": settings.max_attempts,
    }
    if defer_checks and checks.pooled and not skip_invalid and checked_filters is None and not duplicates:
        # every ligand is queued unless one is refused, which refuses the batch: the queue inserts
        # them while the checks run, and commits only if they pass
        try:
            _check_pending(limits, pending_jobs, len(ligands))
        except RateLimited:
            checks.cancel()
            raise
        everyone = [Ligand(name=name.strip(), smiles=smiles.strip()) for name, smiles in ligands]
        return BatchSubmission(ligands=everyone, check=_LigandChecks(checks, ligands), **common)

    problems = sorted(_problems(ligands, checks.result()) + duplicates, key=lambda p: p["index"])
    bad = {p["index"] for p in problems}
    if problems and not skip_invalid:
        raise _refusal(problems, len(ligands))
    positions = [i for i in range(len(ligands)) if i not in bad]
    kept = [Ligand(name=ligands[i][0].strip(), smiles=ligands[i][1].strip()) for i in positions]
    if not kept:
        raise InvalidInput("no valid ligand left in the batch", code="no_valid_ligands", details={"ligands": problems})
    properties: list[dict[str, Any]] | None = None
    filtered: list[dict[str, Any]] = []
    if checked_filters is not None:
        properties, excluded = apply_filters([lig.smiles for lig in kept], checked_filters, positions)
        filtered = [
            {"index": positions[p], "name": kept[p].name, "smiles": kept[p].smiles, "reason": reason}
            for p, reason in sorted(excluded.items())
        ]
        kept = [lig for p, lig in enumerate(kept) if p not in excluded]
        properties = [props for p, props in enumerate(properties) if p not in excluded]
        if not kept:
            raise InvalidInput(
                "no ligand passed the filters; nothing was queued", code="all_filtered", details={"filtered": filtered}
            )
    _check_pending(limits, pending_jobs, len(kept))
    return BatchSubmission(
        ligands=kept,
        skipped=problems,
        filtered=filtered,
        filters=checked_filters.model_dump() if checked_filters is not None else None,
        properties=properties,
        **common,
    )


def _problems(ligands: Sequence[tuple[str, str]], checks: list[str | None]) -> list[dict[str, Any]]:
    return [
        {"index": index, "name": name, "smiles": smiles, "reason": problem}
        for index, ((name, smiles), problem) in enumerate(zip(ligands, checks, strict=True))
        if problem
    ]


def _refusal(problems: list[dict[str, Any]], total: int) -> InvalidInput:
    return InvalidInput(
        f"{len({p['index'] for p in problems})} of {total} ligands are invalid; nothing was queued "
        "(fix them, or send skip_invalid=true to queue only the valid ones)",
        code="invalid_ligands",
        details={"ligands": problems},
    )


class _LigandChecks:
    """A batch's ligand checks running in a process pool while the queue inserts its rows
    (:class:`~omtx_hub.queue.types.DeferredCheck`); any problem refuses the batch, as it does when
    the checks run first."""

    def __init__(self, checks: Chunks[str | None], ligands: Sequence[tuple[str, str]]) -> None:
        self._checks, self._ligands = checks, ligands

    def wait(self) -> None:
        problems = _problems(self._ligands, self._checks.result())
        if problems:
            raise _refusal(problems, len(self._ligands))

    def cancel(self) -> None:
        self._checks.cancel()
