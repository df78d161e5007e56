"""Submitting a 100,000-ligand batch through the HTTP API: JSON body and CSV upload, SQLite and
PostgreSQL side by side. Each measurement gets a fresh `omtx-hub serve` process; its memory growth
is the peak resident size during the request (VmHWM) minus the resident size before it (VmRSS).

    .venv/bin/python bench/submit_large.py [--ligands 100000]

Goal (issue 9): ≤ 10 s wall, ≤ 1 GB server memory growth. Writes bench/results/submit_large.json.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PG_URL = os.environ.get("OMTX_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
SEQ = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQFEVVHSLAKWKRQTLGQHDFSAG"
SMILES = [
    "CCO",
    "c1ccccc1O",
    "CC(=O)Oc1ccccc1C(=O)O",
    "CC(C)Cc1ccc(cc1)C(C)C(=O)O",
    "CN1CCC[C@H]1c1cccnc1",
    "Cc1ccc(NC(=O)c2ccc(CN3CCN(C)CC3)cc2)cc1Nc1nccc(-c2cccnc2)n1",
]


def memory(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            name, value = line.split(":")
            fields[name] = int(value.split()[0]) * 1024
    return fields


def reset_peak(pid: int) -> None:
    # writing 5 to clear_refs resets VmHWM to the current RSS (Linux ≥ 4.0)
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        pass


def start_server(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    """`omtx-hub serve --no-worker` on a free loopback port, once it answers /readyz; returns it and its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [str(BIN / "omtx-hub"), "serve", "--no-worker", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/readyz").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return server, base


def measure(db: str, mode: str, n: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        schema = None
        if db == "sqlite":
            url = f"sqlite:///{tmp}/hub.db"
        else:
            schema = f"bench_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{schema}"')
            url = f"{PG_URL}?options=-csearch_path%3D{schema}"
        env = {
            **os.environ,
            "OMTX_HOME": f"{tmp}/home",
            "OMTX_DATABASE_URL": url,
            "OMTX_DEFAULT_PREDICTOR": "test",
            "OMTX_PREDICTOR_PLUGINS": json.dumps({"test": "omtx_test_predictor:make_test_predictor"}),
            "OMTX_SUBMISSIONS_PER_MINUTE": "100000",
        }
        server, base = start_server(env)
        try:
            key = Path(f"{tmp}/home/local_api_key").read_text().strip()
            headers = {"Authorization": f"Bearer {key}"}
            ligands = [(f"cpd{i}", SMILES[i % len(SMILES)]) for i in range(n)]
            before = memory(server.pid)["VmRSS"]
            reset_peak(server.pid)
            t0 = time.perf_counter()
            if mode == "json":
                body = {
                    "batch_name": "big",
                    "protein_sequence": SEQ,
                    "ligands": [{"name": a, "smiles": b} for a, b in ligands],
                }
                r = httpx.post(f"{base}/api/v1/jobs/predict/batch", json=body, headers=headers, timeout=300)
            else:
                csv = "name,smiles\n" + "".join(f"{a},{b}\n" for a, b in ligands)
                r = httpx.post(
                    f"{base}/api/v1/jobs/predict/batch/upload",
                    headers=headers,
                    timeout=300,
                    data={"batch_name": "big", "protein_sequence": SEQ},
                    files={"file": ("ligands.csv", csv.encode())},
                )
            seconds = time.perf_counter() - t0
            assert r.status_code == 202, r.text[:300]
            assert r.json()["total"] == n
            peak = memory(server.pid)["VmHWM"]
        finally:
            server.terminate()
            server.wait(30)
            if schema:
                with psycopg.connect(PG_URL, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    return {
        "db": db,
        "mode": mode,
        "ligands": n,
        "seconds": round(seconds, 2),
        "memory_growth_mb": round((peak - before) / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ligands", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "submit_large.json")
    args = parser.parse_args()
    os.environ["PYTHONPATH"] = str(ROOT / "tests" / "support")
    rows = [measure(db, mode, args.ligands) for mode in ("json", "csv") for db in ("sqlite", "postgresql")]
    print(f"\nSubmit {args.ligands} ligands through the API (validation + one transaction)")
    print(f"{'mode':<6}{'db':<12}{'seconds':>10}{'memory growth MB':>18}")
    for r in rows:
        print(f"{r['mode']:<6}{r['db']:<12}{r['seconds']:>10}{r['memory_growth_mb']:>18}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2))
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
