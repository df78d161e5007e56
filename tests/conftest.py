"""Shared fixtures: real SQLite files, the real PostgreSQL server (a fresh schema per test), the API."""

from __future__ import annotations

import io
import json
import os
import socket
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from moto.server import ThreadedMotoServer

SUPPORT = Path(__file__).parent / "support"
sys.path.insert(0, str(SUPPORT))

from hub_testing import ApiClient, loopback_server  # noqa: E402
from omtx_hub.app import create_app  # noqa: E402
from omtx_hub.hub import Hub, open_hub  # noqa: E402
from omtx_hub.settings import Settings  # noqa: E402
from omtx_hub.worker import Worker  # noqa: E402
from omtx_test_predictor import TestPredictor  # noqa: E402

PG_URL = os.environ.get("OMTX_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
TEST_PLUGIN = {"test": "omtx_test_predictor:make_test_predictor"}
PROTEIN = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQFEVVHSLAKWKRQTLGQHDFSAGEGLYTHMKALRPDEDRLSPLHSVYVDQWDWERVMGDGERQFSTLKSTVEAIWAGIKATEAAVSEEFGLAPFLPDQIHFVHSQELLSRYPDLDAKGRERAIAKDLGAVFLVGIGGKLSDGHRHDVRAPDYDDWUAVAWLL".replace(
    "U", ""
)


def _postgres_problem() -> str | None:
    try:
        with psycopg.connect(PG_URL.replace("postgresql+psycopg", "postgresql"), connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"PostgreSQL at {PG_URL} is unreachable: {str(exc).strip().splitlines()[0]}"


@pytest.fixture(scope="session")
def postgres_base() -> str:
    problem = _postgres_problem()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{problem} (CI=true: PostgreSQL tests must run)")
        pytest.skip(problem)
    return PG_URL


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    base = request.getfixturevalue("postgres_base")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in base else "?"
    yield f"{base}{sep}options=-csearch_path%3D{schema}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hub.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def make_settings(tmp_path: Path, database_url: str | None = None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "home": tmp_path / "home",
        "database_url": database_url,
        "storage_url": str(tmp_path / "results"),
        "predictor_plugins": TEST_PLUGIN,
        "default_predictor": "test",
        "retry_base_seconds": 0.0,
        "poll_seconds": 0.05,
        "heartbeat_seconds": 0.2,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url)


@pytest.fixture
def hub(settings: Settings) -> Iterator[Hub]:
    h = open_hub(settings)
    yield h
    h.close()


@pytest.fixture
def app(hub: Hub) -> Any:
    return create_app(hub=hub)


@pytest.fixture
def api(hub: Hub, app: Any) -> Iterator[ApiClient]:
    """The API as owner "local" (the hub's default owner), with an ordinary key."""
    key, _ = hub.keys.create("local")
    client = ApiClient(app, api_key=key)
    yield client
    client.close()


@pytest.fixture
def worker(hub: Hub) -> Worker:
    """A registered worker of the test predictor, not running: drive it with ``hub_testing.run_all``."""
    w = Worker(hub.settings, hub.manager, hub.store, {"test": TestPredictor()}, webhooks=hub.webhooks)
    w.register()
    return w


@pytest.fixture
def admin_api(hub: Hub, app: Any) -> Iterator[ApiClient]:
    key, _ = hub.keys.create("operator", admin=True)
    client = ApiClient(app, api_key=key)
    yield client
    client.close()


# ---------------------------------------------------------------- S3-compatible store (moto server on loopback)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def s3() -> Iterator[tuple[ThreadedMotoServer, str]]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield server, f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_hub(tmp_path: Path, s3: tuple[ThreadedMotoServer, str]) -> Iterator[Hub]:
    options = {
        "endpoint_url": s3[1],
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"region_name": "us-east-1"},
    }
    bucket = f"omtx-{int(time.time() * 1e6)}"
    settings = make_settings(
        tmp_path, f"sqlite:///{tmp_path / 'hub.db'}", storage_url=f"s3://{bucket}/results", storage_options=options
    )
    boto3.client(
        "s3", endpoint_url=s3[1], region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    ).create_bucket(Bucket=bucket)
    hub = open_hub(settings)
    yield hub
    hub.close()


# ---------------------------------------------------------------- Boltz-2 offline fixtures

BOLTZ_CACHE = Path(__file__).parents[1] / ".cache" / "boltz-tiny"
BOLTZ_PEPTIDE = "MKTAYIAKQRQISFVKSHFSRQ"  # the peptide of the Boltz-2 tests
TINY_BOLTZ = {"recycling_steps": 0, "sampling_steps": 2, "sampling_steps_affinity": 2, "diffusion_samples_affinity": 1}


@pytest.fixture(scope="session")
def boltz_cache() -> Path:
    """CCD molecules + tiny random-weight checkpoints, built once and kept under .cache/ between runs."""
    from boltz_fixtures import build_cache

    return build_cache(BOLTZ_CACHE, size="tiny", extra_codes=["BEN", "ATP", "MG", "HEM", "ZN"])


class _Stub(BaseHTTPRequestHandler):
    """A stand-in on loopback for a ColabFold MSA server and a model-file mirror (same protocols)."""

    server: Any

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, code: int, body: bytes, kind: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        self.server.calls.append(("POST", self.path, self.rfile.read(length).decode()))
        self._send(200, json.dumps({"id": "job-1", "status": "COMPLETE"}).encode())

    def do_GET(self) -> None:
        self.server.calls.append(("GET", self.path, ""))
        if self.path == "/ticket/job-1":
            self._send(200, json.dumps({"id": "job-1", "status": "COMPLETE"}).encode())
        elif self.path == "/result/download/job-1":
            self._send(200, self.server.msa_archive, "application/gzip")
        elif self.path.lstrip("/") in self.server.files:
            self._send(200, self.server.files[self.path.lstrip("/")], "application/octet-stream")
        else:
            self._send(404, b"{}")


@pytest.fixture
def stub_server() -> Iterator[Any]:
    homologs = ["MKTAYIAKQRQLSFVKSHFSRQ", "MKSAYIAKQRQISFVKAHFSRE", "MRTAYIAKQ-QISFVKSHFSRQ"]
    uniref = ">101\n" + BOLTZ_PEPTIDE + "\n" + "".join(f">101\n{h}\n" for h in homologs[:2])
    env = f">101\n{homologs[2]}\n"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in (("uniref.a3m", uniref), ("bfd.mgnify30.metaeuk30.smag30.a3m", env)):
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))
    with loopback_server(_Stub) as server:
        server.calls, server.files, server.msa_archive = [], {}, buffer.getvalue()  # type: ignore[attr-defined]
        yield server
