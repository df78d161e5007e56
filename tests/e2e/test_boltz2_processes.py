"""Boltz-2 end to end: `omtx-hub serve` + a separate `omtx-hub worker --predictor boltz2` process on the
tiny random-weight fixtures. The model loads once for the batch; a bad ligand fails alone."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BOLTZ_CACHE, TINY_BOLTZ
from omtx_hub.client import HubClient

from .test_processes import BIN, SUPPORT, server  # noqa: F401  (server: the `omtx-hub serve` fixture)

pytestmark = pytest.mark.e2e
PEPTIDE = "MKTAYIAKQRQISFVKSHFSRQ"


@pytest.fixture
def env(tmp_path: Path, boltz_cache: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(SUPPORT),
        "OMTX_HOME": str(tmp_path / "home"),
        "OMTX_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.db'}",
        "OMTX_STORAGE_URL": str(tmp_path / "results"),
        "OMTX_BOLTZ_CACHE": str(boltz_cache),
        "OMTX_BOLTZ_CPU_THREADS": "1",
        "OMTX_CLAIM_BATCH_SIZE": "8",
        "OMTX_POLL_SECONDS": "0.05",
        "OMTX_HEARTBEAT_SECONDS": "0.5",
    }


def test_batch_through_serve_and_a_boltz2_worker_loads_the_model_once(
    server: str, env: dict[str, str], tmp_path: Path
) -> None:
    key = (tmp_path / "home" / "local_api_key").read_text().strip()
    ligands = [
        ("aspirin", "CC(=O)Oc1ccccc1C(=O)O"),
        ("strained", "C1=CC2=CC=C1C=C2"),
        ("ethanol", "CCO"),
        ("benzamidine", "ccd:BEN"),
    ]
    with HubClient(server, api_key=key) as client:
        batch = client.submit_batch("peptide screen", PEPTIDE, ligands, predictor="boltz2", params=TINY_BOLTZ)
        log_path = tmp_path / "worker.log"
        with log_path.open("w") as log:
            worker = subprocess.run(
                [str(BIN / "omtx-hub"), "worker", "--predictor", "boltz2", "--exit-when-idle"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=240,
            )
        text = log_path.read_text()
        assert worker.returncode == 0, text
        assert text.count("boltz2 models loaded") == 1 and "RANDOM-WEIGHT" in text
        assert text.count("prepare_target") == 1  # per-target work once for the whole batch
        status = client.status(batch["batch_id"])
        assert status["status"] == "completed"
        assert (status["progress"]["completed"], status["progress"]["failed"]) == (3, 1)
        children = {c["ligand_name"]: c for c in client.children(batch["batch_id"])}
        assert children["strained"]["error"]["code"] == "featurisation_failed"
        for name in ("aspirin", "ethanol", "benzamidine"):
            job = client.job(children[name]["job_id"])
            assert job["results"]["model_weights"] == "random-test-fixture"
            names = {f["name"] for f in client.files(job["job_id"])}
            assert {"structure.cif", "affinity.json", "confidence.json", "pae.npz"} <= names


def test_a_boltz2_worker_without_weights_says_what_to_do(env: dict[str, str], tmp_path: Path) -> None:
    env = {**env, "OMTX_BOLTZ_CACHE": str(tmp_path / "no-weights")}
    started = time.monotonic()
    for command in (["worker", "--predictor", "boltz2"], ["serve", "--predictor", "boltz2", "--port", "1"]):
        done = subprocess.run([str(BIN / "omtx-hub"), *command], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, done.stdout + done.stderr
        assert "omtx-hub models fetch boltz2" in " ".join(done.stderr.split())
    assert time.monotonic() - started < 60  # fails fast, before any model work
    check = subprocess.run(
        [str(BIN / "omtx-hub"), "models", "check"], env=env, capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 1 and "boltz2_conf.ckpt" in check.stdout
    ok = subprocess.run(
        [str(BIN / "omtx-hub"), "models", "check"],
        env={**env, "OMTX_BOLTZ_CACHE": str(BOLTZ_CACHE)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
