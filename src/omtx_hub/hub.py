"""Assembling the parts from settings: database (migrated), queue manager, result store."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from omtx_hub.auth import KeyStore, Limits, RateLimiter, load_secret
from omtx_hub.chem import clean_protein_sequence, control_character_in
from omtx_hub.db import create_db_engine, migrate
from omtx_hub.db.targets import TargetRepository
from omtx_hub.errors import InvalidInput, StorageError
from omtx_hub.models import ccd_code_known
from omtx_hub.predictors.boltz2_input import MAX_PROTEIN_CHAINS, cofactor_entries, resolve_residues
from omtx_hub.queue import QueueManager
from omtx_hub.queue.retry import RetryPolicy
from omtx_hub.settings import Settings
from omtx_hub.storage import ResultStore, refusal_reason
from omtx_hub.targets import hetero_residues, msa_files, prepare_target_files, sequence_chains
from omtx_hub.webhooks import WebhookStore

__all__ = ["Hub", "open_hub"]

_STORE_CHECK_SECONDS = 2.0


@dataclass
class Hub:
    settings: Settings
    engine: sa.Engine
    manager: QueueManager
    store: ResultStore
    targets: TargetRepository
    keys: KeyStore
    rate: RateLimiter
    webhooks: WebhookStore
    _served: tuple[float, frozenset[str], dict[str, str]] = field(default=(0.0, frozenset(), {}), repr=False)
    _store_checked: tuple[float, str | None] = field(default=(-1e9, None), repr=False)

    def store_refusal(self) -> str | None:
        """Why the result store refuses writes (``No space left on device``), or None when a probe
        write passes. Kept for ``_STORE_CHECK_SECONDS``: ``/readyz`` is anonymous and polled, and each
        probe is a durable write."""
        at, reason = self._store_checked
        if time.monotonic() - at > _STORE_CHECK_SECONDS:
            try:
                self.store.check_writable()
                reason = None
            except StorageError as exc:
                reason = refusal_reason(exc)
            self._store_checked = (time.monotonic(), reason)
        return reason

    def served_predictors(self) -> frozenset[str]:
        """Predictors that a live worker runs (seen within ``worker_seen_seconds``).

        Kept for a second: every status request of a pending or running job asks, and a worker's
        liveness is only known to its heartbeat's precision anyway.
        """
        return self._workers()[0]

    def paused_predictors(self) -> dict[str, str]:
        """Predictors whose every live worker is paused (the result store refuses writes), with why."""
        return self._workers()[1]

    def _workers(self) -> tuple[frozenset[str], dict[str, str]]:
        at, names, paused = self._served
        if time.monotonic() - at > 1.0:
            alive = self.manager.live_workers(self.settings.worker_seen_seconds)
            names = frozenset(name for w in alive for name in w["predictors"])
            working = {name for w in alive if not w["paused_reason"] for name in w["predictors"]}
            paused = {
                name: w["paused_reason"]
                for w in alive
                if w["paused_reason"]
                for name in w["predictors"]
                if name not in working
            }
            self._served = (time.monotonic(), names, paused)
        return names, paused

    def limits_for(self, owner: str) -> Limits:
        """The hub's limits with the owner's overrides (``omtx-hub keys limits``) applied."""
        s = self.settings
        base = {
            "max_pending_jobs": s.max_pending_jobs,
            "max_batch_size": s.max_batch_size,
            "max_sequence_length": s.max_sequence_length,
            "max_heavy_atoms": s.max_heavy_atoms,
            "submissions_per_minute": s.submissions_per_minute,
            "max_body_bytes": s.max_body_bytes,
        }
        return Limits(**{**base, **self.keys.owner_limits(owner)})

    def close(self) -> None:
        self.engine.dispose()

    def create_target(
        self,
        *,
        owner: str,
        name: str,
        receptor: bytes | None = None,
        receptor_filename: str = "receptor.pdb",
        site: dict[str, Any] | None = None,
        reference_ligand: bytes | None = None,
        reference_filename: str = "reference.sdf",
        protein_sequence: str | None = None,
        msa: bytes | list[bytes] | None = None,
        repair: bool = False,
        chains: list[dict[str, Any]] | None = None,
        cofactors: list[str] | None = None,
        keep_hetero: list[str] | None = None,
    ) -> dict[str, Any]:
        """Validate a target, store its files, then record it (files first, like results).

        A ``receptor`` target (structure + binding site) serves docking and co-folding; a ``sequence``
        target (one ``protein_sequence``, or ``chains`` with copies) serves co-folding. Either may carry
        MSAs (.a3m, matched to chains by their query sequence) and cofactors for Boltz-2.
        """
        if not name.strip():
            raise InvalidInput("target name is empty", code="invalid_target_name")
        control = control_character_in(name)
        if control:
            raise InvalidInput(
                f"target name contains a control character ({control}); names must be printable",
                code="invalid_target_name",
            )
        given = sum(x is not None for x in (receptor, protein_sequence, chains))
        if given != 1:
            raise InvalidInput(
                "give one of: a receptor structure (with a binding_site), a protein_sequence, or chains",
                code="invalid_target",
            )
        files: dict[str, bytes] = {}
        record: dict[str, Any] = {"name": name.strip(), "chains": [], "site": None, "warnings": []}
        hetero: list[str] = []
        if receptor is not None:
            if site is None:
                raise InvalidInput("a receptor target needs a binding_site", code="invalid_binding_site")
            prepared = prepare_target_files(
                receptor, receptor_filename, site, reference_ligand, reference_filename, repair=repair
            )
            if keep_hetero:
                hetero = hetero_residues(receptor, receptor_filename, keep_hetero)
            files["receptor.pdb"] = prepared.receptor_pdb
            if prepared.receptor_pdbqt is not None:
                files["receptor.pdbqt"] = prepared.receptor_pdbqt
            if prepared.reference_ligand_sdf is not None:
                files["reference_ligand.sdf"] = prepared.reference_ligand_sdf
            sequence = prepared.protein_sequence
            labels, pocket, problems = [], [], []
            for label in prepared.site["pocket_residues"]:  # each to its Boltz-2 position, or why not
                position, problem = resolve_residues(prepared.chains, [label])
                labels += [label] if position else []
                pocket += position
                problems += problem
            prepared.site.update(pocket_residues=labels, pocket=pocket)
            if problems:
                prepared.warnings.append("pocket residues Boltz-2 cannot use, left out: " + "; ".join(problems))
            record.update(kind="receptor", chains=prepared.chains, site=prepared.site, warnings=prepared.warnings)
        else:
            if keep_hetero:
                raise InvalidInput("keep_hetero needs a receptor structure", code="invalid_cofactors")

            def clean(raw: str) -> str:
                return clean_protein_sequence(raw, self.settings.max_sequence_length)

            if chains is None:
                try:
                    chains = [{"id": "A", "sequence": clean(protein_sequence or "")}]
                except ValueError as exc:
                    raise InvalidInput(str(exc), code="invalid_protein_sequence") from exc
            record["chains"] = sequence_chains(chains, clean, MAX_PROTEIN_CHAINS)
            sequence = max(record["chains"], key=lambda c: c["residues"])["sequence"]
            record["kind"] = "sequence"
        cache = self.settings.resolved_boltz_cache()
        entries, problems = cofactor_entries(
            [*(cofactors or []), *(f"ccd:{code}" for code in hetero)],
            lambda code: ccd_code_known(cache, code),
            where=f"{cache / 'mols'}; `omtx-hub models fetch boltz2` fills it",
        )
        if problems:
            raise InvalidInput(
                "invalid cofactors: " + "; ".join(problems), code="invalid_cofactors", details={"problems": problems}
            )
        record["cofactors"] = entries
        if msa is not None:
            found, notes = msa_files(msa if isinstance(msa, list) else [msa], record["chains"])
            files.update(found)
            record["warnings"].extend(notes)
        target_id = f"tgt_{secrets.token_urlsafe(12)}"
        folder = self.store.target_dir(target_id)
        paths = {name: f"{folder}/{name}" for name in files}
        self.store.write_many({paths[name]: data for name, data in files.items()})
        record.update(target_id=target_id, owner=owner, protein_sequence=sequence, files=paths)
        self.store.write_bytes(f"{folder}/target.json", json.dumps(record, indent=2).encode())
        return self.targets.create(record)


def open_hub(settings: Settings, *, run_migrations: bool = True) -> Hub:
    engine = create_db_engine(settings.resolved_database_url())
    if run_migrations:
        migrate(engine)
    manager = QueueManager(
        engine,
        lease_seconds=settings.lease_seconds,
        retry=RetryPolicy(base_seconds=settings.retry_base_seconds, max_delay_seconds=settings.retry_max_seconds),
    )
    return Hub(
        settings=settings,
        engine=engine,
        manager=manager,
        store=ResultStore(settings.resolved_storage_url(), settings.storage_options),
        targets=TargetRepository(engine),
        keys=KeyStore(engine, load_secret(settings.secret_key, settings.home)),
        rate=RateLimiter(),
        webhooks=WebhookStore(engine, settings.webhook_max_attempts),
    )
