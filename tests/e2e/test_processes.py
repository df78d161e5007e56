"""End to end: `omtx-hub serve` and a separate `omtx-hub worker` process, driven by the CLI and client."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from omtx_hub.client import HubClient

SUPPORT = Path(__file__).parents[1] / "support"
BIN = Path(sys.executable).parent
SEQ = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQFEVVHSLAKWKRQTLGQHDFSAGEGLYTHMKALRPDEDRLSPLHSVYVDQWDWERVMGDGERQFSTLKSTVEAIWAGIKATEAAVSEEFGLAPFLPDQIHFVHSQELLSRYPDLDAKGRERAIAKDLGAVFLVGIGGKLSDGHRHDVRAPDYDDWSTPSELGHAGLNGDILVWNPVLEDAFELSSMGIRVDADTLKHALALKGVDGAVAQAAGLIKLGAIDARTRSRVGEVRTRLGNEIAGSGFDAMLIGPNTDAAAKALLKSAADFSVRAAVVDAQLEAIVRSGQFNVIALTGAVPRRIEENRQKIGAFS"

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(SUPPORT),
        "OMTX_HOME": str(tmp_path / "home"),
        "OMTX_DATABASE_URL": database_url,
        "OMTX_STORAGE_URL": str(tmp_path / "results"),
        "OMTX_PREDICTOR_PLUGINS": json.dumps({"test": "omtx_test_predictor:make_test_predictor"}),
        "OMTX_DEFAULT_PREDICTOR": "test",
        "OMTX_POLL_SECONDS": "0.05",
        "OMTX_HEARTBEAT_SECONDS": "0.5",
    }


@pytest.fixture
def server(env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = open(tmp_path / "serve.log", "w")
    proc = subprocess.Popen(
        [str(BIN / "omtx-hub"), "serve", "--no-worker", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        with HubClient(url) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    client._request("GET", "/readyz")
                    break
                except Exception:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise AssertionError((tmp_path / "serve.log").read_text()) from None
                    time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def test_screen_of_50_ligands_through_serve_and_a_separate_worker(
    server: str, env: dict[str, str], tmp_path: Path
) -> None:
    smiles = ["CCO", "c1ccccc1O", "CC(=O)Oc1ccccc1C(=O)O", "CC(C)Cc1ccc(cc1)C(C)C(=O)O", "CN1CCC[C@H]1c1cccnc1"]
    ligand_file = tmp_path / "ligands.csv"
    ligand_file.write_text("name,smiles\n" + "".join(f"cpd{i},{smiles[i % 5]}\n" for i in range(50)))

    worker_log = open(tmp_path / "worker.log", "w")
    worker = subprocess.Popen(
        [str(BIN / "omtx-hub"), "worker", "--predictor", "test"], env=env, stdout=worker_log, stderr=subprocess.STDOUT
    )
    try:
        screen = subprocess.run(
            [
                str(BIN / "omtx-hub"),
                "screen",
                str(ligand_file),
                "--protein-sequence",
                SEQ,
                "--name",
                "e2e",
                "--wait",
                "--top",
                "5",
                "--url",
                server,
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert screen.returncode == 0, screen.stdout + screen.stderr + (tmp_path / "worker.log").read_text()
        assert "50 ligands queued" in screen.stdout and "Top 5 by test_score" in screen.stdout
        batch_id = screen.stdout.split("batch ", 1)[1].split(":", 1)[0]
    finally:
        worker.terminate()
        assert worker.wait(timeout=30) == 0
        worker_log.close()

    key = (tmp_path / "home" / "local_api_key").read_text().strip()  # written by serve's first start
    with HubClient(server, api_key=key) as client:
        status = client.status(batch_id)
        assert status["status"] == "completed" and status["progress"]["completed"] == 50
        children = list(client.children(batch_id, page_size=20))
        assert len(children) == 50 and {c["status"] for c in children} == {"completed"}
        for child in children:
            events = client.events(child["job_id"])
            assert sum(e["to"] == "completed" for e in events) == 1

    results = tmp_path / "results"
    batch_dir = results / "batches" / batch_id
    assert sorted(p.name for p in batch_dir.iterdir()) == [
        "batch_results.csv",
        "batch_results.json",
        "batch_results.parquet",
        "best_poses.sdf",
        "jobs",
    ]
    for child in children:
        folder = batch_dir / "jobs" / child["job_id"]
        assert sorted(p.name for p in folder.iterdir()) == ["input.json", "results.json", "structure.cif"]
        assert (
            json.loads((folder / "results.json").read_text())["results"]["test_score"] == child["results"]["test_score"]
        )
    document = json.loads((batch_dir / "batch_results.json").read_text())
    assert len(document["results"]) == 50 and document["results"][0]["rank"] == 1

    out = tmp_path / "downloaded"
    got = subprocess.run(
        [str(BIN / "omtx-hub"), "results", batch_id, "--out", str(out), "--url", server],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert got.returncode == 0, got.stderr
    assert (out / "batch_results.csv").read_bytes() == (batch_dir / "batch_results.csv").read_bytes()
    assert len(list((out / "jobs").iterdir())) == 50

    single = subprocess.run(
        [str(BIN / "omtx-hub"), "submit", "-s", SEQ, "--smiles", "CCO", "--name", "ethanol", "--url", server],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    job_id = single.stdout.split()[0]
    cancelled = subprocess.run(
        [str(BIN / "omtx-hub"), "cancel", job_id, "--url", server], env=env, capture_output=True, text=True, timeout=60
    )
    assert cancelled.returncode == 0 and "cancelled" in cancelled.stdout
    shown = subprocess.run(
        [str(BIN / "omtx-hub"), "status", job_id, "--url", server], env=env, capture_output=True, text=True, timeout=60
    )
    assert json.loads(shown.stdout)["status"] == "cancelled"
    bad = subprocess.run(
        [str(BIN / "omtx-hub"), "submit", "-s", SEQ, "--smiles", "C1CC", "--url", server],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1 and "invalid_ligand" in bad.stderr
    anonymous = subprocess.run(
        [str(BIN / "omtx-hub"), "status", job_id, "--url", server],
        env={**env, "OMTX_HOME": str(tmp_path / "elsewhere")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert anonymous.returncode == 1 and "401 unauthorized" in anonymous.stderr


def test_worker_for_a_missing_predictor_exits_with_what_to_install(env: dict[str, str]) -> None:
    plugins = json.dumps({"test": "omtx_test_predictor:make_test_predictor", "ghost": "no_such_package.mod:make"})
    proc = subprocess.run(
        [str(BIN / "omtx-hub"), "worker", "--predictor", "ghost"],
        env={**env, "OMTX_PREDICTOR_PLUGINS": plugins},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "ghost" in proc.stderr and "pip install" in proc.stderr


def test_worker_exit_when_idle(env: dict[str, str]) -> None:
    proc = subprocess.run(
        [str(BIN / "omtx-hub"), "worker", "--predictor", "test", "--exit-when-idle"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and "idle_exit" in proc.stderr


def test_serve_refuses_a_public_bind_without_keys(env: dict[str, str]) -> None:
    proc = subprocess.run(
        [str(BIN / "omtx-hub"), "serve", "--no-worker", "--host", "0.0.0.0", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "no API keys exist" in proc.stderr
