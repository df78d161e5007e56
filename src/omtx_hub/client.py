"""A typed HTTP client for OMTX-Hub. It imports nothing of the server: ``httpx`` is all it needs.

from omtx_hub.client import HubClient
hub = HubClient("http://127.0.0.1:8000")
batch = hub.submit_batch("screen-1", sequence, [("aspirin", "CC(=O)Oc1ccccc1C(=O)O")], predictor="vina")
final = hub.wait(batch["batch_id"])
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

__all__ = ["HubClient", "HubError"]

_CONNECT_RETRIES = 2  # httpx retries a failed connect at once, then after 0.5 s, 1 s, ...

TERMINAL = {"completed", "failed", "cancelled"}


class HubError(Exception):
    """An error answer of the hub: ``status`` (HTTP), ``code``, ``message`` and ``details``."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details


class HubClient:
    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # a connection that cannot be made is retried by httpx itself: nothing reached the server, so
        # this is safe for every method
        transport = transport or httpx.HTTPTransport(retries=_CONNECT_RETRIES)
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HubClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                err = response.json()["error"]
                raise HubError(response.status_code, err["code"], err["message"], err.get("details"))
            except (ValueError, KeyError, TypeError):
                raise HubError(response.status_code, "http_error", response.text[:500]) from None
        return response.json() if response.content else None

    # submission -----------------------------------------------------------

    def submit(
        self,
        protein_sequence: str | None,
        ligand_smiles: str,
        ligand_name: str = "ligand",
        *,
        target_id: str | None = None,
        predictor: str | None = None,
        params: dict[str, Any] | None = None,
        priority: int = 0,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        body = {
            "protein_sequence": protein_sequence,
            "ligand_smiles": ligand_smiles,
            "ligand_name": ligand_name,
            "target_id": target_id,
            "predictor": predictor,
            "params": params or {},
            "priority": priority,
            "idempotency_key": idempotency_key,
        }
        result: dict[str, Any] = self._request("POST", "/api/v1/jobs/predict", json=body)
        return result

    def submit_batch(
        self,
        batch_name: str,
        protein_sequence: str | None,
        ligands: Sequence[tuple[str, str]],
        *,
        target_id: str | None = None,
        predictor: str | None = None,
        params: dict[str, Any] | None = None,
        max_concurrent: int | None = None,
        priority: int = 0,
        skip_invalid: bool = False,
        idempotency_key: str | None = None,
        filters: dict[str, Any] | None = None,
        required_interactions: Sequence[str] | None = None,
        pose_checks: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """``ligands`` are (name, smiles) pairs. ``dry_run`` returns a time/cost estimate and queues nothing.
        ``required_interactions`` (``A:MET318:HBAcceptor``, ``A:MET318``) and ``pose_checks="require"``
        say what a pose must show to be ranked."""
        body = {
            "batch_name": batch_name,
            "protein_sequence": protein_sequence,
            "target_id": target_id,
            "ligands": [{"name": n, "smiles": s} for n, s in ligands],
            "predictor": predictor,
            "params": params or {},
            "max_concurrent": max_concurrent,
            "priority": priority,
            "skip_invalid": skip_invalid,
            "idempotency_key": idempotency_key,
            "filters": filters,
            "required_interactions": list(required_interactions) if required_interactions else None,
            "pose_checks": pose_checks,
        }
        query = {"dry_run": "true"} if dry_run else None
        result: dict[str, Any] = self._request("POST", "/api/v1/jobs/predict/batch", json=body, params=query)
        return result

    def stats(self, batch_id: str, top: int = 10, **query: Any) -> dict[str, Any]:
        """Counts, summary and histogram of every numeric field, the top N, how often each contact
        occurs among them, cost (``required_interactions=``, ``pose_checks=`` as for :meth:`export`;
        ``fields="primary"``: the primary score's summary only, from its index)."""
        params = {"top": top, **{k: v for k, v in query.items() if v is not None}}
        result: dict[str, Any] = self._request("GET", f"/api/v1/jobs/{batch_id}/stats", params=params)
        return result

    def rescore(self, batch_id: str, top_k: int, predictor: str, **options: Any) -> dict[str, Any]:
        """Send the best ``top_k`` ligands of a batch to ``predictor`` as a new, linked batch."""
        body = {"top_k": top_k, "predictor": predictor, **options}
        result: dict[str, Any] = self._request("POST", f"/api/v1/jobs/batch/{batch_id}/rescore", json=body)
        return result

    def create_webhook(self, url: str, events: list[str] | None = None, secret: str | None = None) -> dict[str, Any]:
        """Register a webhook; the answer holds its ``secret`` (shown once)."""
        result: dict[str, Any] = self._request(
            "POST", "/api/v1/webhooks", json={"url": url, "events": events, "secret": secret}
        )
        return result

    def webhooks(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._request("GET", "/api/v1/webhooks")["items"]
        return result

    def delete_webhook(self, webhook_id: str) -> None:
        self._request("DELETE", f"/api/v1/webhooks/{webhook_id}")

    def webhook_deliveries(self, webhook_id: str, limit: int = 100) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._request(
            "GET", f"/api/v1/webhooks/{webhook_id}/deliveries", params={"limit": limit}
        )["items"]
        return result

    def export(self, batch_id: str, dest: Path, fmt: str = "csv", **query: Any) -> Path:
        """Stream an export (csv, json, sdf, zip, parquet; sort=, order=, status=, top=,
        required_interactions=[...], pose_checks="require") to ``dest``."""
        params = {"format": fmt, **{k: v for k, v in query.items() if v is not None}}
        return self._stream_to(f"/api/v1/jobs/{batch_id}/export", dest, params)

    def parse_ligands(self, path: Path) -> list[tuple[str, str]]:
        """(name, SMILES) of every record of a ligand file, read by the hub (an SDF without RDKit here)."""
        with open(path, "rb") as fh:
            result = self._request("POST", "/api/v1/ligands/parse", files={"file": (path.name, fh)})
        return [(item["name"], item["smiles"]) for item in result["ligands"]]

    def ranked(self, batch_id: str, top: int, **query: Any) -> dict[str, Any]:
        """The batch's best ``top`` rows, ranked by the hub (the JSON export: ``rank_by``, ``direction``,
        ``results``); sort=, order=, status= as for :meth:`export`."""
        params = {"format": "json", "top": top, **{k: v for k, v in query.items() if v is not None}}
        result: dict[str, Any] = self._request("GET", f"/api/v1/jobs/{batch_id}/export", params=params)
        return result

    def create_target(
        self,
        name: str,
        receptor: Path | None = None,
        binding_site: dict[str, Any] | None = None,
        *,
        reference_ligand: Path | None = None,
        protein_sequence: str | None = None,
        msa: Path | list[Path] | None = None,
        repair: bool = False,
        chains: list[dict[str, Any]] | None = None,
        cofactors: list[str] | None = None,
        keep_hetero: list[str] | None = None,
    ) -> dict[str, Any]:
        """Create a target: a receptor (.pdb/.cif/.pdbqt) with its binding site, a ``protein_sequence``,
        or ``chains`` (``[{"id": "A", "sequence": "…", "copies": 2}]``); each with optional MSAs
        (.a3m, one per distinct chain) and Boltz-2 ``cofactors`` (CCD codes or SMILES). ``keep_hetero``
        keeps those hetero residues of the receptor file as cofactors; ``repair`` rebuilds missing
        side-chain atoms (PDBFixer). Returns the target (``target_id``)."""
        files: list[tuple[str, tuple[str, bytes]]] = []
        if receptor is not None:
            files.append(("receptor", (receptor.name, receptor.read_bytes())))
        if reference_ligand is not None:
            files.append(("reference_ligand", (reference_ligand.name, reference_ligand.read_bytes())))
        for path in [msa] if isinstance(msa, Path) else msa or []:
            files.append(("msa", (path.name, path.read_bytes())))
        data = {"name": name}
        if chains is not None:
            data["chains"] = json.dumps(chains)
        if cofactors:
            data["cofactors"] = json.dumps(cofactors)
        if keep_hetero:
            data["keep_hetero"] = json.dumps(keep_hetero)
        if binding_site is not None:
            data["binding_site"] = json.dumps(binding_site)
        if protein_sequence is not None:
            data["protein_sequence"] = protein_sequence
        if repair:
            data["repair"] = "true"
        result: dict[str, Any] = self._request("POST", "/api/v1/targets", data=data, files=files or None)
        return result

    def target(self, target_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", f"/api/v1/targets/{target_id}")
        return result

    def targets(self, limit: int = 50) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._request("GET", "/api/v1/targets", params={"limit": limit})["items"]
        return result

    # reading --------------------------------------------------------------

    def status(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", f"/api/v1/jobs/{job_id}/status")
        return result

    def job(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", f"/api/v1/jobs/{job_id}")
        return result

    def events(self, job_id: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._request("GET", f"/api/v1/jobs/{job_id}/events")["events"]
        return result

    def jobs(self, *, job_type: str | None = None, status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        params = {k: v for k, v in {"job_type": job_type, "status": status, "limit": limit}.items() if v is not None}
        result: list[dict[str, Any]] = self._request("GET", "/api/v1/jobs", params=params)["items"]
        return result

    def children(self, batch_id: str, *, status: str | None = None, page_size: int = 500) -> Iterator[dict[str, Any]]:
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": page_size}
            if status:
                params["status"] = status
            if cursor:
                params["cursor"] = cursor
            page = self._request("GET", f"/api/v1/jobs/batch/{batch_id}/children", params=params)
            yield from page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                return

    def files(self, job_id: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._request("GET", f"/api/v1/jobs/{job_id}/files")["files"]
        return result

    def download(self, job_id: str, name: str, dest: Path) -> Path:
        return self._stream_to(f"/api/v1/jobs/{job_id}/files/{name}", dest)

    def _stream_to(self, path: str, dest: Path, params: dict[str, Any] | None = None) -> Path:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with self._http.stream("GET", path, params=params) as response:
            if response.status_code >= 400:
                response.read()
                err = response.json().get("error", {})
                raise HubError(response.status_code, err.get("code", "http_error"), err.get("message", ""))
            with open(dest, "wb") as fh:
                for chunk in response.iter_bytes():
                    fh.write(chunk)
        return dest

    def download_all(self, job_id: str, out_dir: Path) -> list[Path]:
        """Every file of a job; for a batch, its own files and each child's under ``jobs/{child}/``."""
        written = [self.download(job_id, f["name"], out_dir / f["name"]) for f in self.files(job_id)]
        if self.status(job_id)["job_type"] == "BATCH_PARENT":
            for child in self.children(job_id, status="completed"):
                child_dir = out_dir / "jobs" / child["job_id"]
                written += [
                    self.download(child["job_id"], f["name"], child_dir / f["name"])
                    for f in self.files(child["job_id"])
                ]
        return written

    # control --------------------------------------------------------------

    def cancel(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("POST", f"/api/v1/jobs/{job_id}/cancel")
        return result

    def retry(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("POST", f"/api/v1/jobs/{job_id}/retry")
        return result

    def wait(
        self,
        job_id: str,
        *,
        poll_seconds: float = 1.0,
        timeout: float | None = None,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll until the job is finished (a batch: finished and its results aggregated)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.status(job_id)
            if on_progress:
                on_progress(status)
            done = status["status"] in TERMINAL
            if done and status["job_type"] == "BATCH_PARENT" and status["progress"]["completed"]:
                done = status["results"] is not None
            if done:
                return status
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{job_id} is still {status['status']} after {timeout} s")
            time.sleep(poll_seconds)
