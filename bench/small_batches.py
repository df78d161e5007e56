"""Small batches before and after a change: a 10- and a 10,000-ligand Vina batch, on SQLite and
PostgreSQL, measured with the code of two commits side by side in one run.

For each commit (a ``git worktree`` of it), database and size, a fresh process with that commit's
``src`` first on its path:

- submits the batch through the queue manager (``submit_s``);
- drains it as a worker does, claiming 16 at a time and completing them with realistic Vina results
  in one ``complete_many`` (``drain_ms_per_job``: claim and completion per job);
- then, through the app (``create_app`` behind Starlette's test client, no network): the batch's
  status, the batch page's best 100 (JSON export, ``top=100``), its statistics, and the whole CSV
  export (median of 5 each, seconds).

The two commits alternate ``--rounds`` times (default 3) and each figure is the median of its
rounds, so a slow minute of this shared machine falls on both.

    .venv/bin/python bench/small_batches.py [--before d5e0aa5] [--after HEAD] [--rounds 3]

``--before`` defaults to the last commit before the million-ligand work (issue 20: migration 0007,
the score index, LISTEN/NOTIFY). Prints a table and writes bench/results/small_batches.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get("OMTX_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
SIZES = (10, 10_000)
CLAIM = 16
SAMPLES = 5


def measure(db: str, n: int) -> dict[str, float]:
    """One commit, one database, one size: runs in a process whose ``omtx_hub`` is that commit's."""
    import psycopg
    from fastapi.testclient import TestClient

    sys.path.insert(0, str(ROOT / "bench"))
    from omtx_hub.app import create_app
    from omtx_hub.domain import Ligand
    from omtx_hub.hub import open_hub
    from omtx_hub.queue import BatchSubmission
    from omtx_hub.settings import Settings
    from submit_large import SEQ, SMILES

    out: dict[str, float] = {}
    schema = None
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/hub.db"
        if db == "postgresql":
            schema = f"bench_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{schema}"')
            url = f"{PG_URL}?options=-csearch_path%3D{schema}"
        settings = Settings(home=Path(tmp) / "home", database_url=url, storage_url=f"{tmp}/results", owner="local")
        hub = open_hub(settings)
        try:
            ligands = [Ligand(f"cpd{i}", SMILES[i % len(SMILES)]) for i in range(n)]
            t0 = time.perf_counter()
            batch_id = hub.manager.submit_batch(
                BatchSubmission(
                    owner="local",
                    predictor="vina",
                    protein_sequence=SEQ,
                    batch_name=f"small {n}",
                    ligands=ligands,
                    max_attempts=3,
                )
            ).record["job_id"]
            out["submit_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            done = 0
            while claimed := hub.manager.claim("bench-worker", ["vina"], limit=CLAIM):
                items = []
                for job in claimed:
                    score = -4.0 - (job.batch_index or 0) * 7919 % 1000 / 100
                    results = {
                        "vina_score_kcal_mol": score,
                        "pose_scores_kcal_mol": [score, score + 0.4],
                        "ligand_efficiency_kcal_mol_per_heavy_atom": round(score / 20, 4),
                        "heavy_atoms": 20,
                        "docked_smiles": job.input["ligand_smiles"],
                        "docking_seconds": 6.5,
                    }
                    items.append((job, results, 6.6, 6.5))
                hub.manager.complete_many(items, "bench-worker")
                done += len(items)
            assert done == n, (done, n)
            out["drain_ms_per_job"] = (time.perf_counter() - t0) / n * 1000
            key, _ = hub.keys.create("local")
            with TestClient(create_app(hub=hub), headers={"Authorization": f"Bearer {key}"}) as api:
                for name, path, params in (
                    ("status_s", f"/api/v1/jobs/{batch_id}/status", {}),
                    ("top100_s", f"/api/v1/jobs/{batch_id}/export", {"format": "json", "top": 100}),
                    ("stats_s", f"/api/v1/jobs/{batch_id}/stats", {"top": 5}),
                    ("export_csv_s", f"/api/v1/jobs/{batch_id}/export", {"format": "csv"}),
                ):
                    samples = []
                    for _ in range(SAMPLES):
                        t0 = time.perf_counter()
                        r = api.get(path, params=params)
                        samples.append(time.perf_counter() - t0)
                        assert r.status_code == 200, (path, r.status_code, r.text[:300])
                    out[name] = statistics.median(samples)
        finally:
            hub.close()
            if schema:
                with psycopg.connect(PG_URL, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    return out


def worktree(rev: str, where: Path) -> Path:
    path = where / rev.replace("/", "_")
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(path), rev], check=True)
    return path


def run_one(tree: Path, db: str, n: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    done = subprocess.run(
        [sys.executable, __file__, "--measure", db, str(n)], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"{tree} {db} {n}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="d5e0aa5")
    parser.add_argument("--after", default="HEAD")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--measure", nargs=2, metavar=("DB", "LIGANDS"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "small_batches.json")
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure[0], int(args.measure[1]))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"before": worktree(args.before, Path(tmp)), "after": worktree(args.after, Path(tmp))}
        try:
            samples: dict[tuple[str, int, str], list[dict[str, float]]] = {}
            for _ in range(args.rounds):
                for db in ("sqlite", "postgresql"):
                    for n in SIZES:
                        for label, tree in trees.items():
                            samples.setdefault((db, n, label), []).append(run_one(tree, db, n))
        finally:
            for tree in trees.values():
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)
    rows = []
    for (db, n, label), runs in samples.items():
        rows.append(
            {"db": db, "ligands": n, "code": label, **{k: statistics.median(r[k] for r in runs) for k in runs[0]}}
        )
    keys = [k for k in rows[0] if k not in ("db", "ligands", "code")]
    print(f"\n{'':<24}" + "".join(f"{k:>17}" for k in keys))
    for row in rows:
        name = f"{row['db']} {row['ligands']} {row['code']}"
        print(f"{name:<24}" + "".join(f"{row[k]:>17.4f}" for k in keys))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "machine": platform.platform(),
                "cpus": os.cpu_count(),
                "before": args.before,
                "after": args.after,
                "rounds": args.rounds,
                "rows": rows,
            },
            indent=2,
        )
    )
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
