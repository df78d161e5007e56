"""Streamed exports of large batches: time to the last byte and the server's memory growth.

A finished batch of N children (Vina-like results, real RDKit properties of six drug-like
molecules cycled, 1 in 20 failed) is written straight into a SQLite hub; `omtx-hub serve
--no-worker` then answers `GET /api/v1/jobs/{batch}/export?format=F` for CSV, JSON and Parquet,
at 10,000 and 100,000 rows side by side in one run. Memory growth is the server's peak resident
size during the request (VmHWM) minus its resident size before it: flat means it does not grow
with N. Goal (issue 8): the 10,000-row CSV in under 2 s.

Also timed: what one load of the batch page asks of the API at each size. Pages of 1,000 children
up to 20,000 (how the page loads a batch whole), and the best 2,000 rows by JSON export plus
/stats (how it loads a larger batch, ranked by the server).

    .venv/bin/python bench/export_large.py [--sizes 10000,100000]

Prints a table and writes bench/results/export_large.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from omtx_hub.db.schema import jobs
from omtx_hub.domain import Ligand
from omtx_hub.hub import open_hub
from omtx_hub.ligands import ligand_properties
from omtx_hub.queue import BatchSubmission
from omtx_hub.settings import Settings
from submit_large import SEQ, SMILES, memory, reset_peak, start_server


def seed(settings: Settings, n: int) -> str:
    hub = open_hub(settings)
    props = [ligand_properties(s) for s in SMILES]
    batch_id = hub.manager.submit_batch(
        BatchSubmission(
            owner=settings.owner,
            predictor="vina",
            protein_sequence=SEQ,
            batch_name=f"export {n}",
            ligands=[Ligand("seed", "CCO")],
            max_attempts=3,
        )
    ).record["job_id"]
    parent = hub.manager.get(batch_id)
    now = time.time()
    common = {
        "job_type": "BATCH_CHILD",
        "owner": settings.owner,
        "predictor": "vina",
        "params": {},
        "target_key": parent["target_key"],
        "batch_parent_id": batch_id,
        "priority": 0,
        "max_attempts": 3,
        "run_after": now,
        "created_at": now,
        "completed_at": now,
    }
    with hub.engine.begin() as conn:
        conn.execute(jobs.delete().where(jobs.c.batch_parent_id == batch_id))
        for start in range(0, n, 20_000):
            rows = []
            for i in range(start, min(n, start + 20_000)):
                ok = i % 20 != 0
                score = -4.0 - (i * 7919 % 1000) / 100
                results = {
                    "vina_score_kcal_mol": score,
                    "pose_scores_kcal_mol": [score, score + 0.4],
                    "ligand_efficiency_kcal_mol_per_heavy_atom": round(score / 20, 4),
                    "heavy_atoms": 20,
                    "docked_smiles": SMILES[i % 6],
                    "rmsd_to_reference_angstrom": None,
                    "docking_seconds": 6.5,
                }
                rows.append(
                    {
                        **common,
                        "job_id": f"job_x{n}_{i:08d}",
                        "name": f"cpd{i}",
                        "batch_index": i,
                        "input": {"ligand_name": f"cpd{i}", "ligand_smiles": SMILES[i % 6], "properties": props[i % 6]},
                        "status": "completed" if ok else "failed",
                        "results": results if ok else None,
                        "error": None if ok else {"code": "ligand_preparation_failed", "message": "seeded"},
                        "wall_seconds": 6.6 if ok else 0.1,
                        "accelerator_seconds": 6.5 if ok else None,
                    }
                )
            conn.execute(jobs.insert(), rows)
        conn.execute(
            jobs.update()
            .where(jobs.c.job_id == batch_id)
            .values(
                n_total=n,
                n_pending=0,
                n_completed=n - (n + 19) // 20,
                n_failed=(n + 19) // 20,
                status="completed",
                completed_at=now,
                aggregated_at=now,
            )
        )
    hub.close()
    return batch_id


def page_load_seconds(client: httpx.Client, batch_id: str) -> dict[str, float]:
    """The requests of one batch-page load, loaded whole (as for ≤ 20,000 ligands) and ranked by the server."""
    t0 = time.perf_counter()
    cursor, loaded = None, 0
    while loaded < 20_000:
        page = client.get(
            f"/api/v1/jobs/batch/{batch_id}/children", params={"limit": 1000, **({"cursor": cursor} if cursor else {})}
        ).json()
        loaded += len(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    whole = time.perf_counter() - t0
    t0 = time.perf_counter()
    assert client.get(f"/api/v1/jobs/{batch_id}/export", params={"format": "json", "top": 2000}).status_code == 200
    assert client.get(f"/api/v1/jobs/{batch_id}/stats", params={"top": 5}).status_code == 200
    return {"whole_seconds": round(whole, 2), "ranked_seconds": round(time.perf_counter() - t0, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "export_large.json")
    args = parser.parse_args()
    sizes = [int(v) for v in args.sizes.split(",")]
    rows: list[dict[str, Any]] = []
    page_loads: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp) / "home", database_url=f"sqlite:///{tmp}/hub.db", owner="local")
        batches = {n: seed(settings, n) for n in sizes}
        env = {**os.environ, "OMTX_HOME": str(settings.home), "OMTX_DATABASE_URL": settings.resolved_database_url()}
        server, base = start_server(env)
        try:
            headers = {"Authorization": f"Bearer {(settings.home / 'local_api_key').read_text().strip()}"}
            with httpx.Client(base_url=base, headers=headers, timeout=600) as client:
                client.get(f"/api/v1/jobs/{batches[sizes[0]]}/export", params={"format": "csv", "top": 10})  # warm-up
                for fmt in ("csv", "json", "parquet"):
                    for n in sizes:
                        before = memory(server.pid)["VmRSS"]
                        reset_peak(server.pid)
                        t0 = time.perf_counter()
                        first = None
                        size = 0
                        with client.stream("GET", f"/api/v1/jobs/{batches[n]}/export", params={"format": fmt}) as r:
                            assert r.status_code == 200, r.read()[:300]
                            for chunk in r.iter_bytes():
                                first = first or time.perf_counter() - t0
                                size += len(chunk)
                        seconds = time.perf_counter() - t0
                        growth = (memory(server.pid)["VmHWM"] - before) / 2**20
                        rows.append(
                            {
                                "format": fmt,
                                "rows": n,
                                "seconds": round(seconds, 3),
                                "first_byte_seconds": round(first or seconds, 3),
                                "mb": round(size / 2**20, 1),
                                "rows_per_second": round(n / seconds),
                                "memory_growth_mb": round(growth, 1),
                            }
                        )
                for n in sizes:
                    page_loads.append({"rows": n, **page_load_seconds(client, batches[n])})
        finally:
            server.terminate()
            server.wait(30)
    print(f"\n{'format':<9}{'rows':>8}{'seconds':>9}{'first byte s':>14}{'MB':>7}{'rows/s':>9}{'mem growth MB':>15}")
    for r in rows:
        print(
            f"{r['format']:<9}{r['rows']:>8}{r['seconds']:>9}{r['first_byte_seconds']:>14}{r['mb']:>7}"
            f"{r['rows_per_second']:>9}{r['memory_growth_mb']:>15}"
        )
    print(
        f"\n{'batch page load':<16}{'rows':>8}{'whole (20 pages of 1,000) s':>30}{'ranked (top 2,000 + stats) s':>30}"
    )
    for r in page_loads:
        print(f"{'':<16}{r['rows']:>8}{r['whole_seconds']:>30}{r['ranked_seconds']:>30}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "benchmark": "export_large",
                "rows": rows,
                "page_loads": page_loads,
                "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
            },
            indent=2,
        )
    )
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
