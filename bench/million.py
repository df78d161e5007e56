"""A screen of a million ligands after it finished: what a user waits for, on SQLite and PostgreSQL
side by side in one run.

A finished Vina batch of N children (default 1,000,000; realistic results and the RDKit properties
of six drug-like molecules, each child with its own InChIKey; 1 in 20 failed) is written straight
into the table, with the ``score`` and ``inchikey`` columns and the ``job_scores`` rows (its ligand
efficiency) that a worker and a submission write. Then,
through ``omtx-hub serve --no-worker`` in its own process:

- status of the batch (p50/p99 of 200);
- the batch page's first paint: the best 100 by the primary score (JSON export, ``top=100``) and
  ``/stats?fields=primary&top=5``, and the page's own table of the best 2,000;
- the best 100 by another score of Vina's (ligand efficiency: ``job_scores``), and by a ligand
  property (QED): first by the database's pass over every child's JSON, as before the batch's
  aggregation; then, after timing the aggregation's step that keeps the best 2,000 each way by
  each numeric property in ``job_scores`` (``index_properties_s``), from there;
- ``/stats?fields=primary&top=5`` again once the batch's aggregation has kept its primary score's
  summary (``stats_primary_kept_s``: no scan of the index);
- ``/stats`` of every field (reads every child);
- whole-batch exports, CSV and Parquet: first byte (and the CSV's first row after its header) and
  last byte (``--exports``);
- ``omtx-hub db prune`` of the batch while a client polls the status of another job: prune time and
  the status p99 meanwhile;
- and, on a fresh server, the submission of N ligands as a CSV upload (N distinct substituted
  benzenes; the test predictor, whose checks are the hub's own RDKit validation): seconds and the
  server's memory growth (peak resident size during the request minus before).

    .venv/bin/python bench/million.py [--children 1000000] [--exports] [--no-upload]

Prints a table and writes bench/results/million.json.
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
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests" / "support"))

from omtx_hub.aggregate import PROPERTY_ENDS, indexed_properties
from omtx_hub.db.schema import job_scores, jobs
from omtx_hub.domain import Ligand, scalar_results
from omtx_hub.hub import Hub, open_hub
from omtx_hub.ligands import ligand_properties
from omtx_hub.queue import BatchSubmission, JobSubmission
from omtx_hub.queue.score_bins import count_scores
from omtx_hub.settings import Settings
from submit_large import BIN, PG_URL, SEQ, SMILES, memory, reset_peak, start_server

CHUNK = 20_000
EFFICIENCY = "ligand_efficiency_kcal_mol_per_heavy_atom"
# 100 substituents: ten heads, each with one to ten carbons
SUBSTITUENTS = [
    head + "C" * k
    for head in ("", "O", "N", "S", "C(=O)", "C(=O)N", "C(=O)O", "NC(=O)", "OC(=O)", "CC(C)")
    for k in range(1, 11)
]


def library_csv(n: int) -> bytes:
    """n distinct trisubstituted benzenes (up to 1,000,000) as name,smiles lines."""
    s = SUBSTITUENTS
    lines = ["name,smiles"] + [
        f"cpd{i},c1c({s[i % 100]})cc({s[i // 100 % 100]})cc1{s[i // 10_000 % 100]}" for i in range(n)
    ]
    return ("\n".join(lines) + "\n").encode()


def upload(db: str, n: int) -> dict[str, Any]:
    """Submit n ligands as a CSV upload to a fresh server on an empty database."""
    with tempfile.TemporaryDirectory() as tmp:
        hub, schema = open_db(db, Path(tmp))
        hub.close()
        env = {
            **os.environ,
            "OMTX_HOME": str(Path(tmp) / "home"),
            "OMTX_DATABASE_URL": hub.settings.resolved_database_url(),
            "OMTX_DEFAULT_PREDICTOR": "test",
            "OMTX_PREDICTOR_PLUGINS": json.dumps({"test": "omtx_test_predictor:make_test_predictor"}),
            "OMTX_MAX_BATCH_SIZE": str(n),
            "OMTX_MAX_UPLOAD_BYTES": str(200 * 2**20),
        }
        body = library_csv(n)
        server, url = start_server(env)
        try:
            key = (Path(tmp) / "home" / "local_api_key").read_text().strip()
            before = memory(server.pid)["VmRSS"]
            reset_peak(server.pid)
            t0 = time.perf_counter()
            r = httpx.post(
                f"{url}/api/v1/jobs/predict/batch/upload",
                headers={"Authorization": f"Bearer {key}"},
                data={"batch_name": "library", "protein_sequence": SEQ},
                files={"file": ("library.csv", body)},
                timeout=1200,
            )
            seconds = time.perf_counter() - t0
            assert r.status_code == 202, r.text[:300]
            assert r.json()["total"] == n
            growth = (memory(server.pid)["VmHWM"] - before) / 2**20
        finally:
            server.terminate()
            server.wait(30)
            if schema:
                with psycopg.connect(PG_URL, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    return {
        "upload_mb": round(len(body) / 2**20, 1),
        "upload_s": round(seconds, 1),
        "upload_memory_growth_mb": round(growth),
    }


def open_db(db: str, tmp: Path) -> tuple[Hub, str | None]:
    schema = None
    if db == "sqlite":
        url = f"sqlite:///{tmp / 'hub.db'}"
    else:
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    settings = Settings(home=tmp / "home", database_url=url, storage_url=str(tmp / "results"), owner="local")
    return open_hub(settings), schema


def seed(hub: Hub, n: int) -> str:
    """A finished Vina batch of n children, inserted directly (executemany on SQLite, COPY on PostgreSQL)."""
    props = [ligand_properties(s) for s in SMILES]
    batch_id = hub.manager.submit_batch(
        BatchSubmission(
            owner="local",
            predictor="vina",
            protein_sequence=SEQ,
            batch_name=f"million {n}",
            ligands=[Ligand("seed", "CCO")],
            max_attempts=3,
        )
    ).record["job_id"]
    parent = hub.manager.get(batch_id)
    now = time.time() - 7200  # finished two hours ago: what the prune below deletes
    common = {
        "job_type": "BATCH_CHILD",
        "owner": "local",
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
    postgres = hub.engine.dialect.name == "postgresql"
    binned = []  # (batch, score): the fine bins the completions would have counted
    with hub.engine.begin() as conn:
        conn.execute(jobs.delete().where(jobs.c.batch_parent_id == batch_id))
        for start in range(0, n, CHUNK):
            rows, scores = [], []  # jobs, and job_scores as each completion writes them
            for i in range(start, min(n, start + CHUNK)):
                ok = i % 20 != 0
                score = -4.0 - (i * 7919 % 1000) / 100
                prop = {**props[i % 6], "inchikey": f"{props[i % 6]['inchikey'][:14]}-{i:010d}"}
                results = {
                    "vina_score_kcal_mol": score,
                    "pose_scores_kcal_mol": [score, score + 0.4],
                    EFFICIENCY: round(score / prop["heavy_atoms"], 4),
                    "heavy_atoms": prop["heavy_atoms"],
                    "docked_smiles": SMILES[i % 6],
                    "rmsd_to_reference_angstrom": None,
                    "docking_seconds": 6.5,
                }
                if ok:
                    binned.append((batch_id, score))
                    efficiency = results["ligand_efficiency_kcal_mol_per_heavy_atom"]
                    scores.append(
                        {"batch_parent_id": batch_id, "field": EFFICIENCY, "value": efficiency, "batch_index": i}
                    )
                rows.append(
                    {
                        **common,
                        "job_id": f"job_m{i:010d}",
                        "name": f"cpd{i}",
                        "batch_index": i,
                        "input": {"ligand_name": f"cpd{i}", "ligand_smiles": SMILES[i % 6], "properties": prop},
                        "status": "completed" if ok else "failed",
                        "results": results if ok else None,
                        "score": score if ok else None,
                        "inchikey": prop["inchikey"],
                        "error": None if ok else {"code": "ligand_preparation_failed", "message": "seeded"},
                        "wall_seconds": 6.6 if ok else 0.1,
                        "accelerator_seconds": 6.5 if ok else None,
                    }
                )
            for table, table_rows in ((jobs, rows), (job_scores, scores)):
                if postgres:
                    names = list(table_rows[0])
                    as_json = [isinstance(table.c[name].type, sa.JSON) for name in names]
                    raw: Any = conn.connection.dbapi_connection
                    with raw.cursor() as cur, cur.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
                        for row in table_rows:
                            copy.write_row(
                                [json.dumps(row[k]) if j else row[k] for k, j in zip(names, as_json, strict=True)]
                            )
                else:
                    conn.execute(table.insert(), table_rows)
        count_scores(conn, postgres, binned)
        failed = (n + 19) // 20
        conn.execute(
            jobs.update()
            .where(jobs.c.job_id == batch_id)
            .values(
                n_total=n,
                n_pending=0,
                n_completed=n - failed,
                n_failed=failed,
                status="completed",
                completed_at=now,
                aggregated_at=now,
                # what the completions would have kept: every one-cell result field (exports list them)
                result_columns=list(scalar_results(results)),
            )
        )
    if postgres:
        with hub.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in ("jobs", "job_scores", "score_bins"):
                conn.execute(sa.text(f"VACUUM ANALYZE {table}"))  # as autovacuum does after a bulk load
    return batch_id


def timed(client: httpx.Client, path: str, **params: Any) -> float:
    t0 = time.perf_counter()
    r = client.get(path, params=params)
    assert r.status_code == 200, (path, r.status_code, r.text[:300])
    return time.perf_counter() - t0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)


def streamed(client: httpx.Client, path: str, **params: Any) -> tuple[float, float, float, int]:
    """(first byte s, first row s, last byte s, bytes) of a streamed GET; the first row: for CSV,
    when the line after the header has come; otherwise the first byte."""
    t0 = time.perf_counter()
    first = first_row = None
    size, lines = 0, 0
    csv = params.get("format") == "csv"
    with client.stream("GET", path, params=params) as r:
        assert r.status_code == 200, r.read()[:300]
        for chunk in r.iter_bytes():
            now = time.perf_counter() - t0
            first = first or now
            lines += chunk.count(b"\n") if csv else 2
            if first_row is None and lines >= 2:
                first_row = now
            size += len(chunk)
    total = time.perf_counter() - t0
    return round(first or total, 3), round(first_row or total, 3), round(total, 2), size


def prune_while_polling(hub: Hub, env: dict[str, str], client: httpx.Client, other_job: str) -> dict[str, Any]:
    """``omtx-hub db prune --older-than 1h`` (the seeded batch finished 2 h ago) while one client polls
    the status of a job prune keeps."""
    times: list[float] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            times.append(timed(client, f"/api/v1/jobs/{other_job}/status"))
            time.sleep(0.02)

    poller = threading.Thread(target=poll)
    poller.start()
    t0 = time.perf_counter()
    subprocess.run(
        [str(BIN / "omtx-hub"), "db", "prune", "--older-than", "1h", "--keep-files"],
        env=env,
        check=True,
        capture_output=True,
    )
    seconds = time.perf_counter() - t0
    done.set()
    poller.join()
    with hub.engine.connect() as conn:
        left = conn.execute(sa.select(sa.func.count()).select_from(jobs)).scalar_one()
    return {
        "prune_seconds": round(seconds, 1),
        "rows_left": left,
        "status_during_prune_p50_ms": pct(times, 0.5),
        "status_during_prune_p99_ms": pct(times, 0.99),
        "status_during_prune_max_ms": pct(times, 1.0),
        "status_requests_during_prune": len(times),
    }


def run_db(db: str, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"db": db, "children": args.children}
    with tempfile.TemporaryDirectory() as tmp:
        hub, schema = open_db(db, Path(tmp))
        server = None
        try:
            t0 = time.perf_counter()
            batch = seed(hub, args.children)
            out["seed_seconds"] = round(time.perf_counter() - t0, 1)
            other = hub.manager.submit_job(
                JobSubmission(
                    owner="local", predictor="vina", protein_sequence=SEQ, ligand=Ligand("kept", "CCO"), max_attempts=1
                )
            ).record["job_id"]
            env = {
                **os.environ,
                "OMTX_HOME": str(hub.settings.home),
                "OMTX_DATABASE_URL": hub.settings.resolved_database_url(),
                "OMTX_STORAGE_URL": hub.settings.storage_url,
            }
            server, url = start_server(env)
            key = (hub.settings.home / "local_api_key").read_text().strip()
            client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=1200)
            export, stats = f"/api/v1/jobs/{batch}/export", f"/api/v1/jobs/{batch}/stats"
            status = [timed(client, f"/api/v1/jobs/{batch}/status") for _ in range(200)]
            out["status_p50_ms"], out["status_p99_ms"] = pct(status, 0.5), pct(status, 0.99)

            def best(samples: int, path: str, **params: Any) -> float:
                return round(statistics.median(timed(client, path, **params) for _ in range(samples)), 3)

            out["top100_primary_s"] = best(5, export, format="json", top=100)
            out["stats_primary_s"] = best(5, stats, fields="primary", top=5)
            out["first_paint_s"] = round(out["top100_primary_s"] + out["stats_primary_s"], 3)
            out["page_table_top2000_s"] = best(3, export, format="json", top=2000)
            out["top100_other_score_s"] = best(3, export, format="json", top=100, sort=EFFICIENCY)
            # a property: by the JSON pass until the batch's aggregation indexes its properties
            out["top100_property_unindexed_s"] = best(1, export, format="json", top=100, sort="qed")
            t0 = time.perf_counter()
            fields = indexed_properties(hub.manager, "vina")
            hub.manager.index_properties(batch, fields, PROPERTY_ENDS)
            out["index_properties_s"] = round(time.perf_counter() - t0, 1)
            # what the aggregation keeps besides (its files are not written here)
            kept = {"property_index": {"fields": fields, "ends": PROPERTY_ENDS}}
            hub.manager.mark_aggregated(batch, {**kept, "score_summary": hub.manager.score_summary(batch)})
            out["top100_property_s"] = best(3, export, format="json", top=100, sort="qed")
            out["stats_primary_kept_s"] = best(5, stats, fields="primary", top=5)
            out["stats_all_fields_s"] = best(1, stats, top=5)
            if args.exports:
                for fmt in ("csv", "parquet"):
                    first, first_row, total, size = streamed(client, export, format=fmt)
                    out[f"export_{fmt}_first_byte_s"], out[f"export_{fmt}_s"] = first, total
                    if fmt == "csv":
                        out["export_csv_first_row_s"] = first_row
                    out[f"export_{fmt}_mb"] = round(size / 2**20, 1)
            out.update(prune_while_polling(hub, env, client, other))
            client.close()
        finally:
            if server is not None:
                server.terminate()
                server.wait(30)
            hub.close()
            if schema:
                with psycopg.connect(PG_URL, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=1_000_000)
    parser.add_argument("--exports", action="store_true", help="also time whole-batch CSV and Parquet exports")
    parser.add_argument("--no-upload", action="store_true", help="skip the CSV upload of as many ligands")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "million.json")
    args = parser.parse_args()
    rows = [run_db(db, args) for db in ("sqlite", "postgresql")]
    if not args.no_upload:
        for row in rows:
            row.update(upload(row["db"], args.children))
    keys = [k for k in rows[0] if k != "db"]
    print(f"\n{'':<34}{'sqlite':>14}{'postgresql':>14}")
    for k in keys:
        print(f"{k:<34}{rows[0].get(k)!s:>14}{rows[1].get(k)!s:>14}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"machine": platform.platform(), "cpus": os.cpu_count(), "children": args.children, "rows": rows}, indent=2
        )
    )
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
