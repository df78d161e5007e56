"""Assembling the parts from settings: database (migrated), queue manager, result store."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from omtx_hub.auth import KeyStore, Limits, RateLimiter, load_secret
from omtx_hub.db import create_db_engine, migrate
from omtx_hub.db.targets import TargetRepository
from omtx_hub.queue.manager import QueueManager
from omtx_hub.queue.retry import RetryPolicy
from omtx_hub.settings import Settings
from omtx_hub.storage import ResultStore
from omtx_hub.targets import prepare_target_files

__all__ = ["Hub", "open_hub"]


@dataclass
class Hub:
    settings: Settings
    engine: sa.Engine
    manager: QueueManager
    store: ResultStore
    targets: TargetRepository
    keys: KeyStore
    rate: RateLimiter

    def limits_for(self, owner: str) -> Limits:
        """The hub's limits with the owner's overrides (``omtx-hub keys limits``) applied."""
        s = self.settings
        base = {"max_pending_jobs": s.max_pending_jobs, "max_batch_size": s.max_batch_size,
                "max_sequence_length": s.max_sequence_length, "max_heavy_atoms": s.max_heavy_atoms,
                "submissions_per_minute": s.submissions_per_minute, "max_body_bytes": s.max_body_bytes}  # fmt: skip
        return Limits(**{**base, **self.keys.owner_limits(owner)})

    def close(self) -> None:
        self.engine.dispose()

    def create_target(
        self,
        *,
        owner: str,
        name: str,
        receptor: bytes,
        receptor_filename: str,
        site: dict[str, Any],
        reference_ligand: bytes | None = None,
        reference_filename: str = "reference.sdf",
    ) -> dict[str, Any]:
        """Validate a docking target, store its files, then record it (files first, like results)."""
        if not name.strip():
            from omtx_hub.errors import InvalidInput

            raise InvalidInput("target name is empty", code="invalid_target_name")
        prepared = prepare_target_files(receptor, receptor_filename, site, reference_ligand, reference_filename)
        target_id = f"tgt_{secrets.token_urlsafe(12)}"
        folder = self.store.target_dir(target_id)
        files = {"receptor.pdb": f"{folder}/receptor.pdb"}
        self.store.write_bytes(files["receptor.pdb"], prepared.receptor_pdb)
        if prepared.reference_ligand_sdf is not None:
            files["reference_ligand.sdf"] = f"{folder}/reference_ligand.sdf"
            self.store.write_bytes(files["reference_ligand.sdf"], prepared.reference_ligand_sdf)
        record = {
            "target_id": target_id,
            "owner": owner,
            "name": name.strip(),
            "kind": "receptor",
            "protein_sequence": prepared.protein_sequence,
            "chains": prepared.chains,
            "site": prepared.site,
            "files": files,
            "warnings": prepared.warnings,
        }
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
    )
