"""A client user installs light: ``pip install omtx-hub`` pulls no RDKit, gemmi, PyTorch or pyarrow,
and the CLI's client commands work in a process where none of the server's packages can be imported
(against a real hub served on loopback)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomllib

from conftest import PROTEIN, free_port, make_settings
from omtx_hub.hub import Hub, open_hub
from omtx_hub.server import BackgroundServer

ROOT = Path(__file__).resolve().parents[2]
SERVER_ONLY = [
    "rdkit",
    "gemmi",
    "torch",
    "pyarrow",
    "numpy",
    "sqlalchemy",
    "fastapi",
    "uvicorn",
    "alembic",
    "psycopg",
    "pydantic_settings",
    "fsspec",
    "jinja2",
    "prometheus_client",
    "boltz",
    "vina",
]
# the CLI, run in a process where every server-only package fails to import, as on a client-only install
CLIENT_ONLY_CLI = (
    f"import sys; sys.modules.update({{name: None for name in {SERVER_ONLY!r}}}); "
    "from omtx_hub.cli import main; sys.argv = ['omtx-hub', *sys.argv[1:]]; main()"
)


def test_the_base_install_has_no_server_packages() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = " ".join(project["dependencies"]).lower()
    for heavy in ("rdkit", "gemmi", "torch", "pyarrow", "numpy", "sqlalchemy", "fastapi"):
        assert heavy not in base, heavy
    assert "rdkit==2026.9.*" in project["optional-dependencies"]["server"]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Hub, dict[str, str]]]:
    hub = open_hub(make_settings(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}"))
    key, _ = hub.keys.create("local")
    server = BackgroundServer(hub, "127.0.0.1", free_port()).start()
    env = {
        "PATH": "/usr/bin:/bin",
        "OMTX_URL": server.url,
        "OMTX_API_KEY": key,
        "OMTX_HOME": str(tmp_path / "client"),
        "COLUMNS": "250",
    }
    yield hub, env
    server.stop()
    hub.close()


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CLIENT_ONLY_CLI, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_client_commands_run_without_the_server_packages(served: tuple[Hub, dict[str, str]], tmp_path: Path) -> None:
    hub, env = served
    sdf = tmp_path / "two.sdf"  # read by the hub: RDKit is not importable in the client's process
    sdf.write_text(
        "ethanol\n     RDKit          2D\n\n  3  2  0  0  0  0  0  0  0  0999 V2000\n"
        "    0.0000    0.0000    0.0000 C   0  0\n    1.2990    0.7500    0.0000 C   0  0\n"
        "    2.5981   -0.0000    0.0000 O   0  0\n  1  2  1  0\n  2  3  1  0\nM  END\n$$$$\n"
        "methane\n     RDKit          2D\n\n  1  0  0  0  0  0  0  0  0  0999 V2000\n"
        "    0.0000    0.0000    0.0000 C   0  0\nM  END\n$$$$\n"
    )
    screened = _cli(env, "screen", str(sdf), "-s", PROTEIN, "-p", "test", "--name", "light")
    assert screened.returncode == 0, screened.stderr
    assert "2 ligands queued" in screened.stdout
    batch_id = screened.stdout.split()[1].rstrip(":")
    assert [c["input"]["ligand_smiles"] for c in hub.manager.list_children(batch_id)] == ["CCO", "C"]
    status = _cli(env, "status", batch_id)
    assert status.returncode == 0 and json.loads(status.stdout)["progress"]["total"] == 2
    missing = _cli(env, "status", "job_nope")
    assert missing.returncode == 1 and "error 404 job_not_found" in missing.stderr
    server_side = _cli(env, "db", "migrate")
    assert server_side.returncode == 2 and "pip install 'omtx-hub[server]'" in server_side.stderr
