"""Pack what the lent GPU machine lacks for bench/boltz_gpu.py, so that one device call runs it.

The H200 that some sessions are lent has Python 3.12 with PyTorch, Lightning, numpy, pandas, SciPy,
numba, scikit-learn and more (the device tool's KINDS.md lists them), but no boltz-community,
RDKit, gemmi, FastAPI or SQLAlchemy, and it reaches no package index. Run here, this script fills
two ignored folders that the device call carries:

- ``.whl/``: manylinux wheels of the missing packages for the device's Python, at the versions this
  checkout's ``.venv`` has (what the tests ran against); pure wheels built here of omtx-hub itself,
  of antlr4-python3-runtime (omegaconf's parser; PyPI has only its source) and of ihm (source
  only on PyPI; built without its optional C parser, which boltz's mmCIF writer does not use);
- ``.bench-cache/mols/``: the CCD molecules of the 21 protein tokens, built here from biotite's CCD.
  biotite's wheel alone is 57 MB, over what a call may carry; the molecules are a few hundred KB.
  The random-weight checkpoints are built on the GPU machine (≈1 GB each, ≈40 s).

The device tool caps a call's working tree, carried folders included, at 64 MiB; the script checks
the total and prints the call to make:

    .venv/bin/python bench/device_kit.py                       # for the H200 (Python 3.12)
    .venv/bin/python bench/device_kit.py --python-version 3.11 --wheels /tmp/kit311/.whl   # rehearsal here
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))
CARRY_LIMIT = 64 * 2**20

# What the H200 image lacks from the runtime closure of omtx-hub[boltz]. Left out on purpose:
# wandb and its OpenTelemetry SDK and exporters (boltz lists wandb, never imports it for inference;
# FastAPI needs only opentelemetry-api), hydra-core
# (likewise), psycopg (the bench's hub runs on SQLite), biotite (see above). Typer, click, httpx and
# prometheus-client are on the image at versions nobody has read; they travel so the CLI is the one
# tested here.
DOWNLOADED = [
    "boltz-community",
    "rdkit",
    "gemmi",
    "biopython",
    "dm-tree",
    "einx",
    "frozendict",
    "chembl-structure-pipeline",
    "mashumaro",
    "modelcif",
    "omegaconf",
    "fastapi",
    "starlette",
    "uvicorn",
    "sqlalchemy",
    "alembic",
    "mako",
    "pydantic",
    "pydantic-core",
    "pydantic-settings",
    "python-dotenv",
    "typing-inspection",
    "annotated-types",
    "python-multipart",
    "opentelemetry-api",
    "typer",
    "click",
    "httpx",
    "prometheus-client",
]
BUILT_FROM_SOURCE = ["antlr4-python3-runtime", "ihm"]
PLATFORMS = [
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_24_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
]


def _pip(*args: str, cwd: Path | None = None) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"pip {' '.join(args[:3])} … failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


def download(wheels: Path, python_version: str) -> None:
    pins = [f"{name}=={metadata.version(name)}" for name in DOWNLOADED]
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    _pip(
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--python-version",
        python_version,
        "--implementation",
        "cp",
        *platforms,
        "-d",
        str(wheels),
        *pins,
    )


def build_pure(wheels: Path) -> None:
    """omtx-hub, antlr4 and ihm as py3-none-any wheels (no compiled code, so any Python 3 takes them)."""
    _pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(ROOT))
    for name in BUILT_FROM_SOURCE:
        pin = f"{name}=={metadata.version(name)}"
        with tempfile.TemporaryDirectory() as tmp:
            _pip("download", "--no-deps", "--no-binary=:all:", "-d", tmp, pin)
            (sdist,) = Path(tmp).glob("*.tar.gz")
            with tarfile.open(sdist) as archive:
                archive.extractall(tmp, filter="data")
            source = Path(tmp) / sdist.name.removesuffix(".tar.gz")
            extra = ["--without-ext"] if name == "ihm" else []  # ihm's setup.py option: no C extension
            done = subprocess.run(
                [sys.executable, "setup.py", *extra, "-q", "bdist_wheel", "-d", str(wheels)],
                cwd=source,
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                raise SystemExit(f"building {pin} failed:\n{done.stderr[-2000:]}")


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python-version", default="3.12", help="the device's Python (3.12 on the H200)")
    parser.add_argument("--wheels", type=Path, default=ROOT / ".whl")
    parser.add_argument("--cache", type=Path, default=ROOT / ".bench-cache")
    args = parser.parse_args()

    from boltz_fixtures import build_mols

    shutil.rmtree(args.wheels, ignore_errors=True)
    args.wheels.mkdir(parents=True)
    download(args.wheels, args.python_version)
    build_pure(args.wheels)
    names = sorted(w.name.split("-")[0].lower() for w in args.wheels.glob("*.whl"))
    if len(names) != len(set(names)):
        raise SystemExit(f"two versions of one package in {args.wheels}: the device's install would stop")
    build_mols(args.cache / "mols")

    tracked = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    tree = sum((ROOT / f).stat().st_size for f in tracked if f and (ROOT / f).is_file())
    total = tree + _size(args.wheels) + _size(args.cache)
    print(
        f"{len(names)} wheels, {_size(args.wheels) / 2**20:.1f} MiB in {args.wheels}; "
        f"mols {_size(args.cache) / 2**20:.2f} MiB in {args.cache}; working tree {tree / 2**20:.1f} MiB; "
        f"total {total / 2**20:.1f} of {CARRY_LIMIT / 2**20:.0f} MiB"
    )
    if total > CARRY_LIMIT:
        raise SystemExit("over the device's carry limit: drop a wheel or leave a file behind")
    print("device call: run(command='bash bench/boltz_gpu_device.sh', carry=['.whl', '.bench-cache'], timeout_s=600)")


if __name__ == "__main__":
    main()
