"""Hub-core figures: submit time of a large batch, and jobs/s through real worker processes.

Runs SQLite and PostgreSQL side by side in one run (machines here are noisy; compare within a run).
The predictor is the test predictor from tests/support at zero delay, so the figures are the hub's
own cost: claim, three result files written atomically, guarded completion, counters, events.
Throughput is timed until the last completion; the batch's aggregation that follows (ligand
properties, ranked files) is reported beside it.

    .venv/bin/python bench/hub_core.py [--ligands 100000] [--jobs 20000] [--workers 1,2,4] [--claim-batch 64]

Prints a table and writes bench/results/hub_core.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))

from omtx_hub.hub import open_hub
from omtx_hub.settings import Settings
from omtx_hub.submission import build_batch_submission

PG_URL = os.environ.get("OMTX_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
SEQ = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQFEVVHSLAKWKRQTLGQHDFSAGEGLYTHMKALRPDEDRLSP"
SMILES = [
    "CCO",
    "c1ccccc1O",
    "CC(=O)Oc1ccccc1C(=O)O",
    "CC(C)Cc1ccc(cc1)C(C)C(=O)O",
    "CN1CCC[C@H]1c1cccnc1",
    "Cc1ccc(cc1Nc1nccc(n1)c1cccnc1)NC(=O)c1ccc(cc1)CN1CCN(C)CC1",
]


CLAIM_BATCH = 64
# Every run's files stay until the whole bench is over. Deleting a run's ~16,000 files right before
# the next run slows that run's file creation several-fold on a journal-less ext4 like this machine's
# (it skips recently freed inodes one by one): a cost of the bench, not of the hub.
RUNS: list[Path] = []


def run_folder() -> Path:
    if not RUNS:
        RUNS.append(Path(tempfile.mkdtemp(prefix="omtx-bench-")))
    return Path(tempfile.mkdtemp(dir=RUNS[0]))


def settings_for(db: str, workdir: Path) -> tuple[Settings, str | None]:
    schema = None
    if db == "sqlite":
        url = f"sqlite:///{workdir / 'hub.db'}"
    else:
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    settings = Settings(
        home=workdir,
        database_url=url,
        storage_url=str(workdir / "results"),
        default_predictor="test",
        predictor_plugins={"test": "omtx_test_predictor:make_test_predictor"},
        poll_seconds=0.05,
        max_batch_size=1_000_000,
        claim_batch_size=CLAIM_BATCH,
    )
    return settings, schema


def drop_schema(schema: str | None) -> None:
    if schema:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def bench_submit(db: str, n: int) -> dict[str, Any]:
    settings, schema = settings_for(db, run_folder())
    try:
        hub = open_hub(settings)
        ligands = [(f"cpd{i}", SMILES[i % len(SMILES)]) for i in range(n)]
        t0 = time.perf_counter()
        sub = build_batch_submission(settings, owner="local", batch_name="bench", protein_sequence=SEQ, ligands=ligands)
        t1 = time.perf_counter()
        hub.manager.submit_batch(sub)
        t2 = time.perf_counter()
        hub.close()
    finally:
        drop_schema(schema)
    return {
        "db": db,
        "ligands": n,
        "validate_s": round(t1 - t0, 3),
        "insert_s": round(t2 - t1, 3),
        "total_s": round(t2 - t0, 3),
    }


def _worker_process(settings_json: str, start: Any) -> None:
    from omtx_hub.worker import Worker
    from omtx_test_predictor import TestPredictor

    settings = Settings.model_validate_json(settings_json)
    hub = open_hub(settings, run_migrations=False)
    start.wait()
    Worker(settings, hub.manager, hub.store, {"test": TestPredictor()}).run(exit_when_idle=True)
    hub.close()


def bench_throughput(db: str, jobs: int, workers: int) -> dict[str, Any]:
    settings, schema = settings_for(db, run_folder())
    try:
        hub = open_hub(settings)
        ligands = [(f"cpd{i}", SMILES[i % len(SMILES)]) for i in range(jobs)]
        sub = build_batch_submission(settings, owner="local", batch_name="bench", protein_sequence=SEQ, ligands=ligands)
        batch_id = hub.manager.submit_batch(sub).record["job_id"]
        ctx = mp.get_context("spawn")
        start = ctx.Event()
        procs = [ctx.Process(target=_worker_process, args=(settings.model_dump_json(), start)) for _ in range(workers)]
        for p in procs:
            p.start()
        time.sleep(3.0)  # let every process import and connect before the clock starts
        t0 = time.perf_counter()
        start.set()
        while hub.manager.get(batch_id)["n_completed"] < jobs and any(p.is_alive() for p in procs):
            time.sleep(0.02)
        elapsed = time.perf_counter() - t0  # claim → complete of every job
        for p in procs:
            p.join()
        aggregation = time.perf_counter() - t0 - elapsed  # the batch's end: properties, ranked files
        parent = hub.manager.get(batch_id)
        hub.close()
    finally:
        drop_schema(schema)
    assert parent["n_completed"] == jobs, parent
    return {
        "db": db,
        "jobs": jobs,
        "workers": workers,
        "seconds": round(elapsed, 2),
        "jobs_per_s": round(jobs / elapsed, 1),
        "aggregation_s": round(aggregation, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ligands", type=int, default=100_000)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--claim-batch", type=int, default=64, help="OMTX_CLAIM_BATCH_SIZE of the workers")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "hub_core.json")
    args = parser.parse_args()
    global CLAIM_BATCH
    CLAIM_BATCH = args.claim_batch

    submit = [bench_submit(db, args.ligands) for db in ("sqlite", "postgresql")]
    print(f"\nSubmit one batch of {args.ligands} ligands (validation with RDKit + one transaction)")
    print(f"{'db':<12}{'validate s':>12}{'insert s':>12}{'total s':>12}")
    for r in submit:
        print(f"{r['db']:<12}{r['validate_s']:>12}{r['insert_s']:>12}{r['total_s']:>12}")

    throughput = [
        bench_throughput(db, args.jobs, int(w)) for w in args.workers.split(",") for db in ("sqlite", "postgresql")
    ]
    print(f"\nClaim ({args.claim_batch} at a time) → predict (test, 0 s) → 3 files → complete, {args.jobs} jobs")
    print(f"{'db':<12}{'workers':>8}{'seconds':>10}{'jobs/s':>10}{'then aggregation s':>20}")
    for r in throughput:
        print(f"{r['db']:<12}{r['workers']:>8}{r['seconds']:>10}{r['jobs_per_s']:>10}{r['aggregation_s']:>20}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                },
                "claim_batch": args.claim_batch,
                "submit": submit,
                "throughput": throughput,
            },
            indent=2,
        )
    )
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    try:
        main()
    finally:
        for folder in RUNS:
            shutil.rmtree(folder, ignore_errors=True)
