"""Boltz-2 throughput three ways, side by side in one run: what a resident model saves.

The same screen (N ligands against the ≈290-residue Abl kinase chain of the bundled 1IEP target,
single-sequence MSA, Boltz defaults unless --fast) runs as

  (a) one `boltz predict` process per ligand (what a job-per-task design pays: start, imports,
      model loading, for every ligand);
  (b) one `boltz predict` on a directory of all N inputs (boltz's own batch mode);
  (c) the hub: `omtx-hub serve --no-worker` + one `omtx-hub worker --predictor boltz2` process, the
      batch submitted through the API; timed from the worker's start to the batch's completion.

Each arm's time includes its process start and model loading. Reported: seconds per ligand, and,
on a GPU, mean GPU utilisation and peak GPU memory sampled with nvidia-smi every 0.5 s.
Goal (issue 4): (c) ≤ 1.05 × (b) per ligand, and (c) ≥ 3× faster than (a).

Weights cannot be downloaded here: the checkpoints are random-weight ones at the published sizes
(--size full, ≈507 M parameters each; built in ≈40 s) or tiny ones (--size tiny, to check the
script on a CPU). They time the model; their outputs mean nothing.

    .venv/bin/python bench/boltz_gpu.py --ligands 24 --per-process 4            # on a GPU machine
    .venv/bin/python bench/boltz_gpu.py --size tiny --accelerator cpu --fast --residues 40 --ligands 3 --per-process 2

Prints a table and writes bench/results/boltz_gpu.json, rewritten after each arm so that a run cut
short keeps the arms it finished; an arm that fails is recorded with its error and the others still run.
On the lent GPU machine, which lacks boltz and the hub's packages, run it through
bench/boltz_gpu_device.sh after packing with bench/device_kit.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))
BIN = Path(sys.executable).parent
LIGANDS_CSV = ROOT / "src" / "omtx_hub" / "demo" / "ligands.csv"
RECEPTOR = ROOT / "src" / "omtx_hub" / "demo" / "1iep" / "1iep_receptorH.pdb"
FAST = {"recycling_steps": 0, "sampling_steps": 2, "sampling_steps_affinity": 2, "diffusion_samples_affinity": 1}


def _sequence() -> str:
    import gemmi

    structure = gemmi.read_structure(str(RECEPTOR))
    polymer = structure[0]["A"].get_polymer()
    return gemmi.one_letter_code([r.name for r in polymer]).upper()


def _ligands(n: int) -> list[tuple[str, str]]:
    rows = [line.split(",", 1) for line in LIGANDS_CSV.read_text().splitlines()[1:] if line.strip()]
    return [(f"{rows[i % len(rows)][0]}_{i}", rows[i % len(rows)][1].strip()) for i in range(n)]


class GpuSampler:
    """nvidia-smi every 0.5 s while an arm runs: mean utilisation (%) and peak memory (MiB)."""

    def __init__(self) -> None:
        self.available = shutil.which("nvidia-smi") is not None
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            out = (
                subprocess.run(
                    ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits"],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                .stdout.strip()
                .splitlines()
            )
            if out:
                util, mem = (float(v) for v in out[0].split(","))
                self.samples.append((util, mem))

    def __enter__(self) -> GpuSampler:
        if self.available:
            self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        if self.available:
            self._thread.join()

    def summary(self) -> dict[str, Any]:
        if not self.samples:
            return {"gpu_util_mean_pct": None, "gpu_mem_peak_mib": None}
        return {
            "gpu_util_mean_pct": round(sum(u for u, _ in self.samples) / len(self.samples), 1),
            "gpu_mem_peak_mib": max(m for _, m in self.samples),
        }


def _exe(name: str) -> str:
    """A console script of this environment, or else from PATH (wheels installed with --target)."""
    found = shutil.which(name, path=os.pathsep.join([str(BIN), os.environ.get("PATH", "")]))
    if found is None:
        raise RuntimeError(f"{name} is neither in {BIN} nor on PATH")
    return found


def _yaml(path: Path, sequence: str, smiles: str) -> None:
    doc = {
        "version": 1,
        "sequences": [
            {"protein": {"id": "A", "sequence": sequence, "msa": "empty"}},
            {"ligand": {"id": "B", "smiles": smiles}},
        ],
        "properties": [{"affinity": {"binder": "B"}}],
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def _boltz_cli(inputs: Path, out: Path, cache: Path, accelerator: str, fast: bool, env: dict[str, str]) -> None:
    args = [
        _exe("boltz"),
        "predict",
        str(inputs),
        "--out_dir",
        str(out),
        "--cache",
        str(cache),
        "--accelerator",
        accelerator,
        "--seed",
        "0",
        "--override",
    ]
    if fast:
        args += [
            "--recycling_steps",
            "0",
            "--sampling_steps",
            "2",
            "--sampling_steps_affinity",
            "2",
            "--diffusion_samples_affinity",
            "1",
        ]
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"boltz predict failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def arm_per_process(
    ligands: list[tuple[str, str]],
    sequence: str,
    work: Path,
    cache: Path,
    accelerator: str,
    fast: bool,
    env: dict[str, str],
) -> dict[str, Any]:
    with GpuSampler() as gpu:
        started = time.perf_counter()
        for name, smiles in ligands:
            folder = work / "a" / name
            folder.mkdir(parents=True)
            _yaml(folder / f"{name}.yaml", sequence, smiles)
            _boltz_cli(folder / f"{name}.yaml", folder / "out", cache, accelerator, fast, env)
        seconds = time.perf_counter() - started
    return {"ligands": len(ligands), "seconds": seconds, "s_per_ligand": seconds / len(ligands), **gpu.summary()}


def arm_directory(
    ligands: list[tuple[str, str]],
    sequence: str,
    work: Path,
    cache: Path,
    accelerator: str,
    fast: bool,
    env: dict[str, str],
) -> dict[str, Any]:
    inputs = work / "b" / "inputs"
    inputs.mkdir(parents=True)
    for name, smiles in ligands:
        _yaml(inputs / f"{name}.yaml", sequence, smiles)
    with GpuSampler() as gpu:
        started = time.perf_counter()
        _boltz_cli(inputs, work / "b" / "out", cache, accelerator, fast, env)
        seconds = time.perf_counter() - started
    done = len(list((work / "b" / "out").glob("boltz_results_inputs/predictions/*/affinity_*.json")))
    return {
        "ligands": len(ligands),
        "completed": done,
        "seconds": seconds,
        "s_per_ligand": seconds / len(ligands),
        **gpu.summary(),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def arm_hub(
    ligands: list[tuple[str, str]],
    sequence: str,
    work: Path,
    cache: Path,
    accelerator: str,
    fast: bool,
    env: dict[str, str],
    micro_batch: int,
    logs: Path | None,
) -> dict[str, Any]:
    from omtx_hub.client import HubClient

    home = work / "c"
    hub_env = {
        **env,
        "OMTX_HOME": str(home),
        "OMTX_BOLTZ_CACHE": str(cache),
        "OMTX_BOLTZ_ACCELERATOR": accelerator,
        "OMTX_CLAIM_BATCH_SIZE": str(micro_batch),
        "OMTX_POLL_SECONDS": "0.1",
    }
    port = _free_port()
    serve_log = (home / "serve.log", home / "worker.log")
    home.mkdir(parents=True)
    server = subprocess.Popen(
        [_exe("omtx-hub"), "serve", "--no-worker", "--port", str(port)],
        env=hub_env,
        stdout=serve_log[0].open("w"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while not (home / "local_api_key").exists() or not _ready(url):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(serve_log[0].read_text())
            time.sleep(0.2)
        with HubClient(url, api_key=(home / "local_api_key").read_text().strip()) as client:
            batch = client.submit_batch("bench", sequence, ligands, predictor="boltz2", params=FAST if fast else {})
            with GpuSampler() as gpu:
                started = time.perf_counter()
                worker = subprocess.run(
                    [_exe("omtx-hub"), "worker", "--predictor", "boltz2", "--exit-when-idle"],
                    env=hub_env,
                    stdout=serve_log[1].open("w"),
                    stderr=subprocess.STDOUT,
                    check=False,
                )
                seconds = time.perf_counter() - started
            status = client.status(batch["batch_id"])
        if worker.returncode != 0 or status["status"] != "completed":
            raise RuntimeError(f"hub arm failed ({status['status']}):\n{serve_log[1].read_text()[-3000:]}")
        loads = serve_log[1].read_text().count("boltz2 models loaded")
    finally:
        server.terminate()
        server.wait(timeout=30)
        if logs is not None:
            for log in serve_log:
                if log.exists():
                    shutil.copy(log, logs / f"hub_{log.name}")
    return {
        "ligands": len(ligands),
        "completed": status["progress"]["completed"],
        "seconds": seconds,
        "s_per_ligand": seconds / len(ligands),
        "model_loads": loads,
        "micro_batch": micro_batch,
        **gpu.summary(),
    }


def _ready(url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _versions() -> dict[str, Any]:
    """What the arms ran on: package versions, the GPU, and whether boltz's cuequivariance kernels exist."""
    import importlib.metadata as metadata
    import importlib.util

    import torch

    names = ("torch", "boltz-community", "pytorch-lightning", "numpy", "rdkit", "omtx-hub")
    found: dict[str, Any] = {name: metadata.version(name) for name in names}
    found["python"] = platform.python_version()
    found["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    found["cuequivariance_kernels"] = importlib.util.find_spec("cuequivariance_torch") is not None
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ligands", type=int, default=24, help="ligands in arms (b) and (c)")
    parser.add_argument("--per-process", type=int, default=4, help="ligands in arm (a) (each a full process)")
    parser.add_argument("--size", choices=["full", "tiny"], default="full")
    parser.add_argument("--accelerator", choices=["gpu", "cpu"], default="gpu")
    parser.add_argument("--fast", action="store_true", help="2 sampling steps, no recycling (plumbing check only)")
    parser.add_argument(
        "--residues",
        type=int,
        default=0,
        help="keep only the first N residues of the target (CPU plumbing checks); 0 = all",
    )
    parser.add_argument("--micro-batch", type=int, default=8, help="OMTX_CLAIM_BATCH_SIZE of the hub's worker")
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="boltz cache to build/reuse (default: a temp dir); CCD mols already there are kept",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "boltz_gpu.json")
    parser.add_argument("--logs", type=Path, default=None, help="copy the hub arm's serve and worker logs here")
    args = parser.parse_args()

    from boltz_fixtures import build_cache

    work = Path(tempfile.mkdtemp(prefix="boltz-bench-"))
    cache = args.cache or work / "cache"
    started = time.perf_counter()
    build_cache(cache, size=args.size)
    build_seconds = time.perf_counter() - started
    threads = (
        "1" if args.accelerator == "cpu" and (os.cpu_count() or 1) <= 2 else str(max(1, (os.cpu_count() or 2) - 1))
    )
    env = {**os.environ, "OMP_NUM_THREADS": threads, "OMTX_BOLTZ_CPU_THREADS": threads}
    sequence = _sequence()[: args.residues or None]
    ligands = _ligands(args.ligands)
    print(
        f"target: 1IEP chain A ({len(sequence)} residues); {len(ligands)} ligands; {args.size} random-weight "
        f"checkpoints built in {build_seconds:.1f} s; accelerator {args.accelerator}"
    )
    versions = _versions()
    print(f"versions: {json.dumps(versions)}", flush=True)
    common = (sequence, work, cache, args.accelerator, args.fast, env)
    arms = {
        "b_directory": lambda: arm_directory(ligands, *common),
        "c_hub": lambda: arm_hub(ligands, *common, args.micro_batch, args.logs),
        "a_per_process": lambda: arm_per_process(ligands[: args.per_process], *common),
    }
    document: dict[str, Any] = {
        "benchmark": "boltz_gpu",
        "size": args.size,
        "accelerator": args.accelerator,
        "fast": args.fast,
        "residues": len(sequence),
        "checkpoint_build_seconds": build_seconds,
        "results": {},
        "summary": None,
        "versions": versions,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results = document["results"]
    for name, arm in arms.items():
        print(f"arm {name} …", flush=True)
        try:
            results[name] = arm()
        except Exception as error:
            results[name] = {"error": str(error)[-4000:]}
            print(f"arm {name} failed: {error}", flush=True)
        args.out.write_text(json.dumps(document, indent=2))

    print(f"{'arm':<16}{'ligands':>8}{'s/ligand':>10}{'GPU util %':>12}{'GPU MiB':>10}")
    for name, row in results.items():
        if "error" in row:
            print(f"{name:<16}failed")
            continue
        print(
            f"{name:<16}{row['ligands']:>8}{row['s_per_ligand']:>10.2f}{row['gpu_util_mean_pct']!s:>12}"
            f"{row['gpu_mem_peak_mib']!s:>10}"
        )
    if not any("error" in row for row in results.values()):
        b, c, a = (results[k]["s_per_ligand"] for k in ("b_directory", "c_hub", "a_per_process"))
        document["summary"] = {
            "hub_vs_directory": c / b,
            "per_process_vs_hub": a / c,
            "goal_hub_le_1_05_directory": c / b <= 1.05,
            "goal_hub_3x_faster_than_per_process": a / c >= 3,
        }
        print(f"hub / directory = {c / b:.3f} (goal ≤ 1.05); per-process / hub = {a / c:.2f}× (goal ≥ 3)")
    args.out.write_text(json.dumps(document, indent=2))
    print(f"wrote {args.out}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
