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
from omtx_hub.queue import QueueManager
from omtx_hub.queue.retry import RetryPolicy
from omtx_hub.settings import Settings
from omtx_hub.storage import ResultStore, refusal_reason
from omtx_hub.targets import prepare_target_files, read_msa
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
        msa: bytes | None = None,
        repair: bool = False,
    ) -> dict[str, Any]:
        """Validate a target, store its files, then record it (files first, like results).

        A ``receptor`` target (structure + binding site) serves docking and co-folding; a ``sequence``
        target (protein sequence only) serves co-folding. Either may carry an MSA (.a3m) for Boltz-2.
        """
        if not name.strip():
            raise InvalidInput("target name is empty", code="invalid_target_name")
        control = control_character_in(name)
        if control:
            raise InvalidInput(
                f"target name contains a control character ({control}); names must be printable",
                code="invalid_target_name",
            )
        files: dict[str, bytes] = {}
        record: dict[str, Any] = {"name": name.strip(), "chains": [], "site": None, "warnings": []}
        if receptor is not None:
            if site is None:
                raise InvalidInput("a receptor target needs a binding_site", code="invalid_binding_site")
            prepared = prepare_target_files(
                receptor, receptor_filename, site, reference_ligand, reference_filename, repair=repair
            )
            files["receptor.pdb"] = prepared.receptor_pdb
            if prepared.receptor_pdbqt is not None:
                files["receptor.pdbqt"] = prepared.receptor_pdbqt
            if prepared.reference_ligand_sdf is not None:
                files["reference_ligand.sdf"] = prepared.reference_ligand_sdf
            sequence = prepared.protein_sequence
            record.update(kind="receptor", chains=prepared.chains, site=prepared.site, warnings=prepared.warnings)
        elif protein_sequence is not None:
            try:
                sequence = clean_protein_sequence(protein_sequence, self.settings.max_sequence_length)
            except ValueError as exc:
                raise InvalidInput(str(exc), code="invalid_protein_sequence") from exc
            record["kind"] = "sequence"
        else:
            raise InvalidInput(
                "give a receptor structure (with a binding_site) or a protein_sequence", code="invalid_target"
            )
        if protein_sequence is not None and receptor is not None:
            raise InvalidInput(
                "give a receptor or a protein_sequence, not both (the receptor's sequence is used)",
                code="invalid_target",
            )
        if msa is not None:
            files["msa.a3m"], depth = read_msa(msa, sequence)
            record["warnings"].append(f"MSA uploaded: {depth} sequences (Boltz-2 uses it with msa='auto')")
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
