"""schemathesis against the live OpenAPI schema of a running hub: no server errors, answers match the schema."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from conftest import make_settings
from omtx_hub.hub import open_hub
from omtx_hub.server import BackgroundServer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    tmp: Path = tmp_path_factory.mktemp("schema")
    hub = open_hub(make_settings(tmp, f"sqlite:///{tmp / 'hub.db'}", submissions_per_minute=100_000))
    key, _ = hub.keys.create("fuzzer", admin=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = BackgroundServer(hub, "127.0.0.1", port).start()
    yield server.url, key
    server.stop()
    hub.close()


@pytest.fixture(scope="module")
def live_schema(live: tuple[str, str]) -> Any:
    return schemathesis.openapi.from_url(f"{live[0]}/openapi.json")


schema = schemathesis.pytest.from_fixture("live_schema")


@schema.parametrize()
@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_api_against_its_own_schema(case: Any, live: tuple[str, str]) -> None:
    url, key = live
    case.call_and_validate(
        base_url=url,
        headers={"Authorization": f"Bearer {key}"},
        checks=[not_a_server_error, response_schema_conformance],
    )
