"""What a fleet of idle workers costs while it waits, and how fast it reacts when work comes.

N worker processes (default 50, the test predictor at zero delay) wait on one PostgreSQL server
(LISTEN/NOTIFY), and a few on SQLite (probing every 10 ms; 50 would need more cores than this
machine has) for comparison. Over a quiet window: CPU per worker (/proc) and, on PostgreSQL,
transactions per second per worker (pg_stat_database). Then submission → first claim of single
jobs submitted one at a time.

    .venv/bin/python bench/idle_workers.py [--workers 50] [--sqlite-workers 4] [--window 20] [--jobs 20]

Prints a table and writes bench/results/idle_workers.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests" / "support"))

from control_plane import _worker, cpu_seconds
from omtx_hub.domain import Ligand
from omtx_hub.hub import Hub, open_hub
from omtx_hub.queue import JobSubmission
from omtx_hub.settings import Settings
from submit_large import PG_URL, SEQ


def transactions(schema_url: str) -> int:
    with psycopg.connect(schema_url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    assert row is not None
    return int(row[0])


def claim_delays(hub: Hub, n: int) -> list[float]:
    delays = []
    for i in range(n):
        job_id = hub.manager.submit_job(
            JobSubmission(
                owner="bench", predictor="test", protein_sequence=SEQ, ligand=Ligand(f"j{i}", "CCO"), max_attempts=1
            )
        ).record["job_id"]
        deadline = time.monotonic() + 10
        at = None
        while at is None and time.monotonic() < deadline:
            time.sleep(0.05)
            at = next((e["at"] for e in hub.manager.events(job_id) if e["to_status"] == "running"), None)
        assert at is not None, f"job {job_id} not claimed within 10 s"
        delays.append(at - hub.manager.get(job_id)["created_at"])
        time.sleep(0.3)  # the worker finishes it and is idle again
    return delays


def run_db(db: str, workers: int, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"db": db, "workers": workers}
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        schema = None
        if db == "sqlite":
            url = f"sqlite:///{tmp}/hub.db"
        else:
            schema = f"bench_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{schema}"')
            url = f"{PG_URL}?options=-csearch_path%3D{schema}"
        settings = Settings(
            home=Path(tmp) / "home",
            database_url=url,
            storage_url=f"{tmp}/results",
            default_predictor="test",
            predictor_plugins={"test": "omtx_test_predictor:make_test_predictor"},
        )
        hub = open_hub(settings)
        ctx = mp.get_context("spawn")
        procs = [ctx.Process(target=_worker, args=(settings.model_dump_json(),), daemon=True) for _ in range(workers)]
        try:
            for p in procs:
                p.start()
            deadline = time.monotonic() + 300
            while len(hub.manager.live_workers(60)) < workers and time.monotonic() < deadline:
                time.sleep(0.5)
            out["registered"] = len(hub.manager.live_workers(60))
            time.sleep(5)  # past start-up
            cpu0 = {p.pid: cpu_seconds(p.pid) for p in procs if p.pid}
            tx0 = transactions(url) if schema else None
            t0 = time.monotonic()
            time.sleep(args.window)
            elapsed = time.monotonic() - t0
            cpu = sum(cpu_seconds(pid) - before for pid, before in cpu0.items())
            out["cpu_percent_per_worker"] = round(cpu / elapsed / workers * 100, 3)
            if tx0 is not None:
                # the two reads of the counter are in the window: not the workers'
                out["transactions_per_second_per_worker"] = round((transactions(url) - tx0 - 1) / elapsed / workers, 3)
            delays = claim_delays(hub, args.jobs)
            out["submit_to_claim_median_ms"] = round(statistics.median(delays) * 1000, 1)
            out["submit_to_claim_max_ms"] = round(max(delays) * 1000, 1)
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.join(10)
            hub.close()
            if schema:
                with psycopg.connect(PG_URL, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=50)
    parser.add_argument("--sqlite-workers", type=int, default=4)
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "idle_workers.json")
    args = parser.parse_args()
    rows = [run_db("postgresql", args.workers, args), run_db("sqlite", args.sqlite_workers, args)]
    keys = list(dict.fromkeys(k for r in rows for k in r if k != "db"))
    print(f"\n{'':<38}{'postgresql':>14}{'sqlite':>14}")
    for k in keys:
        print(f"{k:<38}{rows[0].get(k)!s:>14}{rows[1].get(k)!s:>14}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": platform.platform(), "cpus": os.cpu_count(), "rows": rows}, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
