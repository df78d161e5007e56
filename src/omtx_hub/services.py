"""What the API and the web UI both do with a hub beyond one queue call: find a caller's batch, rank
it by default, estimate a screen's time and cost, choose the ligands a rescoring funnel sends on, say
why a job waits, and find a job's folder. No HTTP here: routers and pages call these."""

from __future__ import annotations

import dataclasses
from typing import Any

from omtx_hub.analytics import Position, Ranking, RankingRules, rank_batch, stream_rows
from omtx_hub.domain import ACTIVE, JobType, target_key_for
from omtx_hub.errors import InvalidInput, NotFound
from omtx_hub.hub import Hub
from omtx_hub.interactions import parse_requirements
from omtx_hub.predictors.catalog import SPECS, primary_score
from omtx_hub.queue import BatchSubmission

__all__ = [
    "batch_record",
    "default_ranking",
    "estimate",
    "job_folder",
    "ranking_for",
    "ranking_rules",
    "rescore_choice",
    "status_warnings",
    "target_residues",
]

Record = dict[str, Any]


def batch_record(hub: Hub, batch_id: str, scope: str | None) -> Record:
    """The batch's record, or 404 when the id is unknown, another owner's, or not a batch."""
    parent = hub.manager.get(batch_id, scope)
    if parent["job_type"] != JobType.BATCH_PARENT.value:
        raise NotFound(f"{batch_id} is not a batch", code="batch_not_found")
    return parent


def default_ranking(parent: Record) -> tuple[str | None, str]:
    """The batch's primary score and direction: from its aggregation, else the predictor's declared one."""
    summary = parent["results"] or {}
    if summary.get("rank_by"):
        return summary["rank_by"], summary.get("direction", "asc")
    declared = primary_score(parent["predictor"])
    if declared is None or declared.direction is None:
        return None, "asc"
    return declared.name, declared.direction


def ranking_rules(parent: Record, required_interactions: list[str] | None, pose_checks: str | None) -> RankingRules:
    """The rules a request asked for (``required_interactions``, ``pose_checks``), the batch's own
    (from its submission) where it did not say."""
    rules = RankingRules.of_batch(parent)
    if required_interactions:
        rules = dataclasses.replace(rules, required_interactions=tuple(parse_requirements(required_interactions)))
    if pose_checks:
        rules = dataclasses.replace(rules, pose_checks=pose_checks)
    return rules


def ranking_for(
    hub: Hub,
    parent: Record,
    sort: str | None,
    order: str | None,
    status: str | None,
    top: int | None,
    rules: RankingRules | None = None,
    after: str | None = None,
) -> Ranking:
    """The ranking an export or a listing asked for, the batch's default where it did not say;
    ``after``: a page of it, after the cursor the previous page ended with."""
    key, direction = default_ranking(parent)
    if sort:
        key = sort
    if key is None:
        raise InvalidInput(
            f"predictor {parent['predictor']!r} has no documented primary score: pass sort=FIELD", code="sort_required"
        )
    chosen = rules if rules is not None else RankingRules.of_batch(parent)
    start = Position.of_cursor(after) if after is not None else None
    return _ranking(hub, parent, key, order or direction, status, top, chosen, start)


def _ranking(
    hub: Hub,
    parent: Record,
    key: str,
    direction: str,
    status: str | None,
    top: int | None,
    rules: RankingRules,
    after: Position | None = None,
) -> Ranking:
    return rank_batch(
        hub.manager, parent, sort_key=key, direction=direction, status=status, top=top, rules=rules, after=after
    )


def rescore_choice(
    hub: Hub, parent: Record, sort: str | None, order: str | None, top_k: int
) -> tuple[str, str, list[tuple[str, str]]]:
    """The ranking key, its direction and the (name, SMILES) of the best ``top_k`` completed ligands."""
    key, direction = default_ranking(parent)
    key, direction = sort or key, order or direction
    if key is None:
        raise InvalidInput("the source batch has no primary score: pass sort", code="sort_required")
    batch_id = parent["job_id"]
    # a funnel sends on what the batch ranks
    ranking = _ranking(hub, parent, key, direction, "completed", top_k, RankingRules.of_batch(parent))
    chosen = [
        (r["ligand_name"], r["ligand_smiles"])
        for r in stream_rows(hub.manager, batch_id, ranking, 0.0)
        if r["rank"] is not None
    ]
    if not chosen:
        raise InvalidInput(
            f"batch {batch_id} has no completed ligand with a {key!r} value to send on", code="nothing_to_rescore"
        )
    return key, direction, chosen


def target_residues(hub: Hub, predictor: str, target: Record | None, protein_sequence: str | None) -> set[str] | None:
    """The ``CHAIN:RESIDUE`` keys a pose of this predictor can touch, for checking required
    interactions at submission: the receptor's own (author numbering) for a predictor that docks into
    it, each chain of the target's sequences (1-based, as a co-folded structure numbers them; chain A
    of ``protein_sequence`` without a target) for one that co-folds. None when it cannot be known (a
    plugin without a declared pose file)."""
    import gemmi

    spec = SPECS.get(predictor)
    if spec is None or spec.pose_file is None:
        return None
    if spec.pose_file == "poses.sdf":
        if target is None or "receptor.pdb" not in (target.get("files") or {}):
            return set()
        structure = gemmi.read_pdb_string(hub.store.read_bytes(target["files"]["receptor.pdb"]).decode())
        return {
            f"{chain.name}:{res.name}{res.seqid.num}{res.seqid.icode.strip()}"
            for chain in structure[0]
            for res in chain
        }
    chains = [(c["chain"], c["sequence"]) for c in (target or {}).get("chains") or []]
    if not chains or (protein_sequence and target and protein_sequence != target["protein_sequence"]):
        chains = [("A", protein_sequence or (target or {}).get("protein_sequence") or "")]
    return {
        f"{chain}:{name}{i}"
        for chain, sequence in chains
        for i, name in enumerate(gemmi.expand_one_letter_sequence(sequence, gemmi.ResidueKind.AA), start=1)
    }


def estimate(hub: Hub, sub: BatchSubmission) -> dict[str, Any]:
    """Accelerator time and cost of a batch, from this target's observed throughput or the documented default."""
    key = target_key_for(sub.predictor, sub.protein_sequence, sub.target)
    observed = hub.manager.observed_seconds_per_job(sub.predictor, key)
    per_ligand: float | None
    if observed is not None:
        per_ligand, basis = observed[0], f"median of the last {observed[1]} completed jobs of this predictor and target"
    else:
        per_ligand = hub.settings.default_seconds_per_ligand.get(sub.predictor)
        basis = "OMTX_DEFAULT_SECONDS_PER_LIGAND (no completed job of this target yet)"
    n = len(sub.ligands)
    price = hub.settings.price_per_accelerator_hour
    total = per_ligand * n if per_ligand is not None else None
    workers = sum(
        1 for w in hub.manager.live_workers(hub.settings.worker_seen_seconds) if sub.predictor in w["predictors"]
    )
    return {
        "dry_run": True,
        "predictor": sub.predictor,
        "ligands": n,
        "skipped": sub.skipped,
        "filtered": sub.filtered,
        "seconds_per_ligand": per_ligand,
        "basis": basis if per_ligand is not None else "no estimate for this predictor",
        "estimated_accelerator_seconds": total,
        "estimated_cost": round(total / 3600 * price, 4) if total is not None and price else None,
        "price_per_accelerator_hour": price or None,
        "currency": hub.settings.currency,
        "live_workers": workers,
        "estimated_wall_seconds": (total / workers) if total is not None and workers else None,
    }


def status_warnings(hub: Hub, record: Record) -> list[str]:
    """Why an unfinished job may not move: no live worker runs its predictor, or every one is paused."""
    if record["status"] not in ACTIVE:
        return []
    predictor = record["predictor"]
    if predictor not in hub.served_predictors():
        return [
            f"no worker that runs predictor {predictor!r} has been seen in the last "
            f"{hub.settings.worker_seen_seconds:g} s; the job waits until one starts "
            f"(omtx-hub worker --predictor {predictor})"
        ]
    paused = hub.paused_predictors()
    if predictor in paused:
        return [
            f"every worker of predictor {predictor!r} is paused: {paused[predictor]}; "
            "jobs wait (no attempt is spent) and resume when the store accepts writes again"
        ]
    return []


def job_folder(hub: Hub, job_id: str, scope: str | None) -> str:
    """The store folder of a job or batch the caller may see."""
    r = hub.manager.get(job_id, scope)
    if r["job_type"] == JobType.BATCH_PARENT.value:
        return hub.store.batch_dir(job_id)
    return hub.store.job_dir(job_id, r["batch_parent_id"])
