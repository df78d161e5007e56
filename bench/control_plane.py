"""Control-plane latency: status of a huge batch, filtered children pages, /metrics, API under 50 pollers,
and the worker's own overhead (predictor return → next claim; submission → first claim when idle).

SQLite and PostgreSQL side by side in one run, through `omtx-hub serve --no-worker` on loopback in its
own process, as deployed (the load driver and the worker are other processes).

    .venv/bin/python bench/control_plane.py [--children 1000000] [--requests 300] [--clients 50]

Prints a table and writes bench/results/control_plane.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))

from omtx_hub.db.schema import jobs
from omtx_hub.domain import Ligand
from omtx_hub.hub import Hub, open_hub
from omtx_hub.queue import BatchSubmission, JobSubmission
from omtx_hub.settings import Settings
from submit_large import start_server

PG_URL = os.environ.get("OMTX_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
SEQ = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQFEVVHSLAKWKRQTLGQHDFSAG"


POLL_INTERVAL = 0.5  # each client asks again half a second after its answer (the UI polls every 2 s)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)


def server_env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "OMTX_HOME": str(settings.home),
        "OMTX_DATABASE_URL": settings.database_url,
        "OMTX_STORAGE_URL": str(settings.storage_url),
        "OMTX_DEFAULT_PREDICTOR": "test",
        "OMTX_PREDICTOR_PLUGINS": json.dumps(settings.predictor_plugins),
        "OMTX_SUBMISSIONS_PER_MINUTE": str(settings.submissions_per_minute),
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
    settings = Settings(
        home=tmp,
        database_url=url,
        storage_url=str(tmp / "results"),
        default_predictor="test",
        predictor_plugins={"test": "omtx_test_predictor:make_test_predictor"},
        submissions_per_minute=10**9,
        poll_seconds=0.5,
    )
    return open_hub(settings), schema


def seed_huge_batch(hub: Hub, n: int) -> str:
    """A finished-looking batch of n children written straight into the table (3/4 completed, 1/4
    failed: nothing a worker would pick up, so the later figures measure an idle hub)."""
    batch_id = hub.manager.submit_batch(
        BatchSubmission(
            owner="bench",
            predictor="test",
            protein_sequence=SEQ,
            batch_name="huge",
            ligands=[Ligand("seed", "CCO")],
            max_attempts=3,
        )
    ).record["job_id"]
    parent = hub.manager.get(batch_id)
    now = time.time()
    common = {
        "job_type": "BATCH_CHILD",
        "owner": "bench",
        "predictor": "test",
        "params": {},
        "target_key": parent["target_key"],
        "batch_parent_id": batch_id,
        "priority": 0,
        "max_attempts": 3,
        "run_after": now,
        "created_at": now,
    }
    done = 0
    with hub.engine.begin() as conn:
        for start in range(1, n, 20_000):
            rows = []
            for i in range(start, min(n, start + 20_000)):
                completed = i % 4 != 0
                done += completed
                rows.append(
                    {
                        **common,
                        "job_id": f"job_seed{i:08d}",
                        "name": f"l{i}",
                        "batch_index": i,
                        "input": {"ligand_name": f"l{i}", "ligand_smiles": "CCO"},
                        "status": "completed" if completed else "failed",
                        "results": {"test_score": -i % 97 / 10} if completed else None,
                        "error": None if completed else {"code": "seeded", "message": "seeded row"},
                        "completed_at": now,
                    }
                )
            conn.execute(jobs.insert(), rows)
        conn.execute(
            sa.update(jobs)
            .where(jobs.c.batch_parent_id == batch_id, jobs.c.status == "pending")
            .values(status="completed", completed_at=now, results={"test_score": 0.0})
        )  # the submitted seed child
        conn.execute(
            sa.update(jobs)
            .where(jobs.c.job_id == batch_id)
            .values(
                n_total=n,
                n_pending=0,
                n_completed=done,
                n_failed=n - done,
                status="completed",
                completed_at=now,
                aggregated_at=now,
            )
        )
    return batch_id


def timed_gets(client: httpx.Client, paths: list[str]) -> list[float]:
    times = []
    for path in paths:
        t0 = time.perf_counter()
        r = client.get(path)
        times.append(time.perf_counter() - t0)
        assert r.status_code == 200, (path, r.status_code, r.text[:200])
    return times


class LeanClient:
    """One keep-alive HTTP/1.1 connection that sends a GET and reads the answer, with nothing else.

    httpx's AsyncClient spends ≈3 ms of CPU per request here, about three times what the API spends
    answering it. Fifty real pollers sit on fifty other machines; in this bench they share two cores
    with the API, so the lean client is the one that shows the API's own latency under a burst.
    """

    def __init__(self, url: str, key: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)
        self.head = f"Host: {host}:{port}\r\nAuthorization: Bearer {key}\r\n\r\n".encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(f"GET {path} HTTP/1.1\r\n".encode() + self.head)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = next(int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:"))
        await self.reader.readexactly(length)
        return int(lines[0].split()[1])

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


async def pollers(
    url: str, key: str, path: str, clients: int, seconds: float, *, staggered: bool, lean: bool
) -> tuple[list[float], int]:
    """``clients`` clients each asking for ``path``, then waiting POLL_INTERVAL after every answer.

    Staggered: each starts at a random moment of the first interval (users who opened the page at
    different times, as a load tool's spawn rate does). Not staggered: all start at once and stay
    roughly in step, a burst of ``clients`` requests every interval (the worst case). ``lean``: each
    client is a LeanClient; else they share one httpx.AsyncClient.
    """
    times: list[float] = []
    errors = 0
    stop = time.monotonic() + seconds
    async with httpx.AsyncClient(
        base_url=url,
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
        limits=httpx.Limits(max_connections=clients),
    ) as client:

        async def status_of_httpx() -> int:
            return (await client.get(path)).status_code

        async def one(offset: float) -> None:
            nonlocal errors
            own = LeanClient(url, key) if lean else None
            ask = (lambda: own.get(path)) if own is not None else status_of_httpx
            await asyncio.sleep(offset)  # clients that opened the page at different moments
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                try:
                    if await asyncio.wait_for(ask(), 10) != 200:
                        errors += 1
                except (httpx.HTTPError, OSError, asyncio.IncompleteReadError, asyncio.TimeoutError):
                    errors += 1
                times.append(time.perf_counter() - t0)
                await asyncio.sleep(POLL_INTERVAL)
            if own is not None:
                await own.close()

        rng = random.Random(7)
        await asyncio.gather(*(one(rng.uniform(0, POLL_INTERVAL) if staggered else 0.0) for _ in range(clients)))
    return times, errors


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _worker(settings_json: str) -> None:
    from omtx_hub.worker import Worker
    from omtx_test_predictor import TestPredictor

    settings = Settings.model_validate_json(settings_json)
    hub = open_hub(settings, run_migrations=False)
    Worker(settings, hub.manager, hub.store, {"test": TestPredictor()}).run()


def run_db(db: str, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"db": db, "poll_interval_s": POLL_INTERVAL}
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:  # the worker may still write
        hub, schema = open_db(db, Path(tmp))
        try:
            t0 = time.perf_counter()
            huge = seed_huge_batch(hub, args.children)
            out["seed_seconds"] = round(time.perf_counter() - t0, 1)
            key, _ = hub.keys.create("bench")
            server, url = start_server(server_env(hub.settings))
            client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
            timed_gets(client, [f"/api/v1/jobs/{huge}/status"] * 20)  # warm up
            status = timed_gets(client, [f"/api/v1/jobs/{huge}/status"] * args.requests)
            out["status_p50_ms"], out["status_p99_ms"] = pct(status, 0.5), pct(status, 0.99)
            rng = random.Random(1)
            pages = [
                f"/api/v1/jobs/batch/{huge}/children?status=completed&limit=100&cursor="
                f"{_cursor(rng.randrange(args.children - 200))}"
                for _ in range(args.requests)
            ]
            page_times = timed_gets(client, pages)
            out["children_page_p50_ms"], out["children_page_p99_ms"] = pct(page_times, 0.5), pct(page_times, 0.99)
            admin_key, _ = hub.keys.create("bench", admin=True)
            scrapes = timed_gets(
                httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=60),
                ["/metrics"] * 6,
            )
            out["metrics_first_scrape_ms"] = round(scrapes[0] * 1000, 1)  # the sums over finished jobs: computed
            out["metrics_scrape_p50_ms"] = pct(scrapes[1:], 0.5)  # the sums reused (OMTX_METRICS_HISTORY_SECONDS)
            out["job_counts_from_counters_ms"], out["job_counts_by_counting_rows_ms"] = _job_counts_both_ways(hub)

            # a screen running while 50 clients poll its status
            ctx = mp.get_context("spawn")
            worker = ctx.Process(target=_worker, args=(hub.settings.model_dump_json(),), daemon=True)
            worker.start()
            time.sleep(4)
            screen = hub.manager.submit_batch(
                BatchSubmission(
                    owner="bench",
                    predictor="test",
                    protein_sequence=SEQ,
                    batch_name="live",
                    ligands=[Ligand(f"l{i}", "CCO") for i in range(6000)],
                    max_attempts=3,
                    params={"delay_seconds": 0.01},
                )
            ).record["job_id"]
            for label, staggered, lean in (
                ("load", True, False),
                ("load_lean", True, True),
                ("burst", False, False),
                ("burst_lean", False, True),
            ):
                api_cpu, driver_cpu = cpu_seconds(server.pid), time.process_time()
                times, errors = asyncio.run(
                    pollers(url, key, f"/api/v1/jobs/{screen}/status", args.clients, 10, staggered=staggered, lean=lean)
                )
                out.update(
                    {
                        f"{label}_requests": len(times),
                        f"{label}_p50_ms": pct(times, 0.5),
                        f"{label}_p99_ms": pct(times, 0.99),
                        f"{label}_errors": errors,
                        f"{label}_api_cpu_ms_per_request": round(
                            (cpu_seconds(server.pid) - api_cpu) / len(times) * 1000, 2
                        ),
                        f"{label}_driver_cpu_ms_per_request": round(
                            (time.process_time() - driver_cpu) / len(times) * 1000, 2
                        ),
                    }
                )
            out["screen_still_running"] = hub.manager.get(screen)["status"] == "running"

            # overhead: submission → first claim with an idle worker
            while hub.manager.get(screen)["status"] != "completed":
                time.sleep(0.2)
            time.sleep(1.0)
            waits = []
            for i in range(args.idle_jobs):
                job_id = hub.manager.submit_job(
                    JobSubmission(
                        owner="bench",
                        predictor="test",
                        protein_sequence=SEQ,
                        ligand=Ligand(f"idle{i}", "CCO"),
                        max_attempts=3,
                    )
                ).record["job_id"]
                deadline = time.monotonic() + 5
                claimed = None
                while claimed is None and time.monotonic() < deadline:
                    time.sleep(0.1)
                    claimed = next((e["at"] for e in hub.manager.events(job_id) if e["to_status"] == "running"), None)
                assert claimed is not None, f"{db}: job {job_id} not claimed within 5 s"
                waits.append(claimed - hub.manager.get(job_id)["created_at"])
                time.sleep(0.2)
            out["submit_to_claim_median_ms"] = round(statistics.median(waits) * 1000, 1)
            out["submit_to_claim_p90_ms"] = pct(waits, 0.9)
            # overhead: a job's completion → the same worker's next claim, inside the busy screen
            gaps = _completion_to_claim_gaps(hub, screen)
            out["completion_to_next_claim_median_ms"] = round(statistics.median(gaps) * 1000, 1)
            worker.terminate()
            worker.join(10)
            client.close()
            server.terminate()
            server.wait(30)
        finally:
            hub.close()
            if schema:
                with psycopg.connect(PG_URL, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    return out


def _job_counts_both_ways(hub: Hub) -> tuple[float, float]:
    """Median ms of the queue-depth query (batch counters) and of a GROUP BY over every row (its old form)."""
    every_row = sa.select(jobs.c.job_type, jobs.c.status, jobs.c.predictor, sa.func.count()).group_by(
        jobs.c.job_type, jobs.c.status, jobs.c.predictor
    )
    fast, slow = [], []
    for _ in range(3):
        t0 = time.perf_counter()
        hub.manager.status_counts()
        fast.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        with hub.engine.connect() as conn:
            conn.execute(every_row).all()
        slow.append(time.perf_counter() - t0)
    return round(statistics.median(fast) * 1000, 1), round(statistics.median(slow) * 1000, 1)


def _cursor(index: int) -> str:
    from omtx_hub.presenters import encode_cursor

    return encode_cursor(index)


def _completion_to_claim_gaps(hub: Hub, batch_id: str) -> list[float]:
    events = []
    for child in hub.manager.iter_children(batch_id):
        events += hub.manager.events(child["job_id"])
    by_worker: dict[str, list[tuple[float, str]]] = {}
    for e in events:
        if e["to_status"] in ("running", "completed") and e["worker_id"]:
            by_worker.setdefault(e["worker_id"], []).append((e["at"], e["to_status"]))
    gaps = []
    for seq in by_worker.values():
        seq.sort()
        last_completion = None
        for at, kind in seq:
            if kind == "completed":
                last_completion = at
            elif last_completion is not None:
                gaps.append(at - last_completion)
                last_completion = None
    return gaps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--idle-jobs", type=int, default=20)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "control_plane.json")
    args = parser.parse_args()
    rows = [run_db(db, args) for db in ("sqlite", "postgresql")]
    keys = [k for k in rows[0] if k != "db"]
    print(f"\n{'figure':<36}" + "".join(f"{r['db']:>14}" for r in rows))
    for k in keys:
        print(f"{k:<36}" + "".join(f"{r[k]!s:>14}" for r in rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"children": args.children, "clients": args.clients, "rows": rows}, indent=2))
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
