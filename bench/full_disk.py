"""A screen on a full result disk: how many jobs it burns, and how it recovers once space is freed.

The store is a small tmpfs filled to ENOSPC with a ballast file (a real filesystem, a real "No space
left on device"); one worker (the test predictor, in this process) works a screen for a fixed window,
then the ballast is deleted and the screen is timed to its end. With ``--baseline-src DIR`` the same
scenario also runs on another checkout's ``src`` (say, a worktree of an older commit), side by side
in one run. Needs root (it mounts tmpfs).

    .venv/bin/python bench/full_disk.py [--ligands 300] [--window 25] [--baseline-src /tmp/old/src]

Prints a table and writes bench/results/full_disk.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def arm(ligands: int, window: float) -> dict[str, Any]:
    """One run of the scenario with whatever ``omtx_hub`` this interpreter imports."""
    sys.path.insert(0, str(ROOT / "tests" / "support"))
    from hub_testing import fill_disk
    from omtx_hub.domain import Ligand
    from omtx_hub.hub import open_hub
    from omtx_hub.queue import BatchSubmission
    from omtx_hub.settings import Settings
    from omtx_hub.worker import Worker
    from omtx_test_predictor import TestPredictor

    work = Path(tempfile.mkdtemp(prefix="omtx-full-disk-"))
    disk = work / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], check=True)
    try:
        settings = Settings(
            home=work / "home",
            database_url=f"sqlite:///{work / 'hub.db'}",
            storage_url=str(disk / "results"),
            predictor_plugins={"test": "omtx_test_predictor:make_test_predictor"},
        )
        hub = open_hub(settings)
        smiles = ["CCO", "c1ccccc1O", "CC(=O)Oc1ccccc1C(=O)O", "CC(C)Cc1ccc(cc1)C(C)C(=O)O"]
        batch = BatchSubmission(
            owner="local",
            predictor="test",
            protein_sequence="MKTAYIAKQRQISFVKSHFSRQ",
            batch_name="full disk",
            max_attempts=settings.max_attempts,
            ligands=[Ligand(f"l{i}", smiles[i % 4]) for i in range(ligands)],
        )
        batch_id = hub.manager.submit_batch(batch).record["job_id"]
        fill_disk(disk / "ballast")
        worker = Worker(settings, hub.manager, hub.store, {"test": TestPredictor()})
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        time.sleep(window)

        def counts() -> dict[str, Any]:
            children = list(hub.manager.iter_children(batch_id))
            by_status = {
                s: sum(c["status"] == s for c in children) for s in ("pending", "running", "completed", "failed")
            }
            return {
                **by_status,
                "attempts_spent": sum(c["attempts"] for c in children),
                "tmp_files_left": sum(1 for p in disk.rglob("*") if ".tmp-" in p.name),
            }

        during = counts()
        (disk / "ballast").unlink()
        freed = time.monotonic()
        while hub.manager.get(batch_id)["status"] not in ("completed", "failed") and time.monotonic() - freed < 120:
            time.sleep(0.1)
        after = {
            **counts(),
            "seconds_to_finish_after_space_freed": round(time.monotonic() - freed, 1),
            "batch_status": hub.manager.get(batch_id)["status"],
        }
        worker.stop(grace_seconds=1)
        thread.join(timeout=10)
        hub.close()
        return {"during_full_disk": during, "after_space_freed": after}
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ligands", type=int, default=300)
    parser.add_argument("--window", type=float, default=25.0, help="seconds the screen runs on the full disk")
    parser.add_argument("--baseline-src", type=Path, help="another checkout's src folder to run beside this one")
    parser.add_argument("--arm", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.arm:
        print(json.dumps(arm(args.ligands, args.window)))
        return
    arms = {"this checkout": ROOT / "src"}
    if args.baseline_src:
        arms = {"baseline": args.baseline_src.resolve(), **arms}
    results: dict[str, Any] = {"ligands": args.ligands, "window_seconds": args.window, "arms": {}}
    for name, src in arms.items():
        env = {**os.environ, "PYTHONPATH": str(src)}
        done = subprocess.run(
            [sys.executable, __file__, "--arm", "--ligands", str(args.ligands), "--window", str(args.window)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        results["arms"][name] = {"src": str(src), **json.loads(done.stdout.strip().splitlines()[-1])}
    print(f"{args.ligands} ligands, {args.window:g} s on a full disk, then the ballast deleted")
    print(
        f"{'arm':<15} {'failed':>7} {'pending':>8} {'attempts':>9} {'.tmp left':>10} | {'final':>10} {'failed':>7} {'s to end':>9}"
    )
    for name, r in results["arms"].items():
        d, a = r["during_full_disk"], r["after_space_freed"]
        print(
            f"{name:<15} {d['failed']:>7} {d['pending']:>8} {d['attempts_spent']:>9} {d['tmp_files_left']:>10} | "
            f"{a['batch_status']:>10} {a['failed']:>7} {a['seconds_to_finish_after_space_freed']:>9}"
        )
    out = ROOT / "bench" / "results" / "full_disk.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
