"""One settings object for the whole hub, read from ``OMTX_*`` environment variables.

Every field is documented in ``docs/settings.md``; a test fails when one is not.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OMTX_", extra="ignore")

    home: Path = Field(Path(".omtx"), description="Folder of the embedded default (SQLite file, results).")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL: sqlite:///path or postgresql://…; default: SQLite in `home`."
    )
    storage_url: str | None = Field(
        None, description="Result store: a local folder or an fsspec URL (s3://…); default: `home`/results."
    )
    storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description='fsspec options for the store, JSON, e.g. {"endpoint_url": "http://minio:9000"} for S3.',
    )
    log_format: Literal["text", "json"] = Field("text", description="Log lines as text or as JSON objects.")
    host: str = Field("127.0.0.1", description="Address the API binds to.")
    port: int = Field(8000, description="Port the API listens on.")
    owner: str = Field("local", description="Owner recorded on jobs submitted through this hub.")

    default_predictor: str = Field("boltz2", description="Predictor used when a submission names none.")
    predictor_plugins: dict[str, str] = Field(
        default_factory=dict,
        description='Extra predictors, JSON {"name": "module:factory"}; added to the entry points.',
    )

    lease_seconds: float = Field(60.0, description="How long a claim stays valid without a heartbeat.")
    heartbeat_seconds: float = Field(10.0, description="How often a worker renews the leases it holds.")
    max_attempts: int = Field(3, ge=1, description="Attempts per job before a transient failure is final.")
    retry_base_seconds: float = Field(5.0, description="First retry delay; doubles with each attempt.")
    retry_max_seconds: float = Field(300.0, description="Upper bound of the retry delay.")
    claim_batch_size: int = Field(
        8, ge=1, description="Micro-batch: how many jobs of one target a worker claims at once."
    )
    poll_seconds: float = Field(0.5, description="How long an idle worker waits before asking again.")
    wake_poll_seconds: float = Field(
        10.0,
        gt=0,
        description="PostgreSQL: an idle worker sleeps until a new job is announced (LISTEN/NOTIFY) and "
        "looks for due work by itself this often (a delayed retry becomes due unannounced).",
    )
    worker_seen_seconds: float = Field(
        60.0, description="A worker heard from within this window counts as alive in job status."
    )
    metrics_history_seconds: float = Field(
        60.0, ge=0, description="How long /metrics reuses its sums over finished jobs (accelerator seconds, durations)."
    )

    secret_key: str | None = Field(
        None, description="Secret for key hashing and session signing; default: a random one in `home`/secret.key."
    )
    max_pending_jobs: int = Field(1_000_000, ge=1, description="Most unfinished jobs one owner may have queued.")
    submissions_per_minute: int = Field(600, ge=1, description="Submissions one owner may make per minute.")
    max_batch_size: int = Field(100_000, ge=1, description="Largest number of ligands in one batch.")
    max_sequence_length: int = Field(4000, ge=1, description="Longest protein sequence accepted.")
    max_heavy_atoms: int = Field(128, ge=1, description="Most heavy atoms in a ligand (after salt stripping).")
    max_upload_bytes: int = Field(50 * 1024 * 1024, ge=1024, description="Largest receptor or ligand file upload.")
    vina_cpu: int = Field(0, ge=0, description="Threads one Vina docking uses; 0 = all cores.")
    pose_checks: bool = Field(
        True, description="Check every job's best pose (PoseBusters) and list its interactions (ProLIF)."
    )
    boltz_cache: Path | None = Field(
        None, description="Folder of the Boltz-2 weights and CCD molecules; default: $BOLTZ_CACHE, else ~/.boltz."
    )
    boltz_accelerator: Literal["auto", "gpu", "cpu"] = Field(
        "auto", description="Where Boltz-2 runs: gpu, cpu, or auto (gpu when CUDA is available)."
    )
    boltz_cpu_threads: int = Field(
        0, ge=0, description="Torch threads of a Boltz-2 worker on CPU; 0 = all cores but one."
    )
    boltz_timeout_seconds: float = Field(
        3600.0, gt=0, description="Longest one ligand may take in a Boltz-2 pass before it fails as timed out."
    )
    msa_server_url: str | None = Field(
        None, description="ColabFold-compatible MSA server for msa='server'; never contacted unless set."
    )
    model_mirror_url: str | None = Field(
        None, description="`omtx-hub models fetch` downloads from here ({url}/{file}) instead of the official URLs."
    )
    price_per_accelerator_hour: float = Field(
        0.0, ge=0, description="Price of one accelerator-hour (GPU or CPU) for cost figures; 0 = costs not shown."
    )
    currency: str = Field("USD", description="Currency of price_per_accelerator_hour, shown with every cost.")
    default_seconds_per_ligand: dict[str, float] = Field(
        default_factory=lambda: {"vina": 30.0, "boltz2": 60.0},
        description="Dry-run estimate per ligand when a target has no completed jobs yet, by predictor (JSON).",
    )
    webhook_max_attempts: int = Field(8, ge=1, description="Attempts per webhook delivery before it is marked failed.")
    max_body_bytes: int = Field(64 * 1024 * 1024, ge=1024, description="Largest request body accepted.")

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'hub.db').resolve()}"

    def resolved_boltz_cache(self) -> Path:
        if self.boltz_cache:
            return self.boltz_cache.expanduser()
        env = os.environ.get("BOLTZ_CACHE")
        return Path(env).expanduser() if env else Path("~/.boltz").expanduser()

    def resolved_storage_url(self) -> str:
        if self.storage_url:
            return self.storage_url
        return str((self.home / "results").resolve())
