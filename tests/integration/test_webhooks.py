"""Webhooks against a receiver on loopback: signed events, retries with backoff, the delivery log."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
import sqlalchemy as sa

from hub_testing import ApiClient, loopback_server, run_all
from omtx_hub.db.schema import webhook_deliveries
from omtx_hub.hub import Hub
from omtx_hub.webhooks import WebhookDispatcher
from omtx_hub.worker import Worker

SEQ = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ"
SECRET = "a-receiver-secret-of-some-length"


class _Receiver(BaseHTTPRequestHandler):
    server: Any

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((dict(self.headers), body))
        code = self.server.answers.pop(0) if self.server.answers else 200
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def receiver() -> Iterator[Any]:
    with loopback_server(_Receiver) as server:
        server.received, server.answers = [], []  # type: ignore[attr-defined]
        server.url += "/hook"  # type: ignore[attr-defined]
        yield server


def _verify(headers: dict[str, str], body: bytes, secret: str) -> bool:
    fields = dict(part.split("=", 1) for part in headers["X-OMTX-Signature"].split(","))
    expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"]) and abs(time.time() - int(fields["t"])) < 60


def test_events_are_signed_retried_and_logged(api: ApiClient, hub: Hub, worker: Worker, receiver: Any) -> None:
    r = api.post("/api/v1/webhooks", json={"url": receiver.url, "secret": SECRET})
    assert r.status_code == 201 and r.json()["secret"] == SECRET
    webhook_id = r.json()["webhook_id"]
    assert "secret" not in api.get("/api/v1/webhooks").json()["items"][0]

    dispatcher = WebhookDispatcher(hub.webhooks)
    ok = api.post("/api/v1/jobs/predict", json={"protein_sequence": SEQ, "ligand_smiles": "CCO", "ligand_name": "e"})
    bad = api.post(
        "/api/v1/jobs/predict",
        json={"protein_sequence": SEQ, "ligand_smiles": "CCN", "ligand_name": "f", "params": {"fail": "permanent"}},
    )
    batch = api.post(
        "/api/v1/jobs/predict/batch",
        json={"batch_name": "b", "protein_sequence": SEQ, "ligands": [{"name": "a", "smiles": "CCC"}]},
    )
    run_all(worker)  # then aggregation → batch.completed

    receiver.answers = [500]  # the first POST fails: that delivery is retried later
    assert dispatcher.run_once() == 3
    events = {json.loads(b)["event"]: (h, json.loads(b)) for h, b in receiver.received}
    assert set(events) == {"job.completed", "job.failed", "batch.completed"}
    for headers, body in receiver.received:
        assert _verify(headers, body, SECRET) and headers["X-OMTX-Event"] == json.loads(body)["event"]
        assert not _verify(headers, body + b" ", SECRET)  # a changed body does not verify
    assert events["job.completed"][1]["data"]["job_id"] == ok.json()["job_id"]
    assert events["job.completed"][1]["data"]["results"]["heavy_atoms"] == 3
    assert events["job.failed"][1]["data"]["error"]["code"] == "test_permanent"
    assert events["job.failed"][1]["data"]["job_id"] == bad.json()["job_id"]
    assert events["batch.completed"][1]["data"]["counts"]["completed"] == 1
    assert events["batch.completed"][1]["data"]["batch_id"] == batch.json()["batch_id"]

    log = api.get(f"/api/v1/webhooks/{webhook_id}/deliveries").json()["items"]
    assert sorted(d["status"] for d in log) == ["delivered", "delivered", "pending"]
    retried = next(d for d in log if d["status"] == "pending")
    assert retried["attempts"] == 1 and retried["response_status"] == 500 and retried["last_error"] == "answered 500"
    assert dispatcher.run_once() == 0  # backoff: not due yet
    with hub.engine.begin() as conn:  # let the backoff pass
        conn.execute(
            sa.update(webhook_deliveries)
            .values(next_attempt_at=time.time() - 1)
            .where(webhook_deliveries.c.status == "pending")
        )
    assert dispatcher.run_once() == 1
    first, second = [b for h, b in receiver.received if h["X-OMTX-Delivery"] == retried["delivery_id"]]
    assert json.loads(first) == json.loads(second)  # the same delivery, the same payload
    log = api.get(f"/api/v1/webhooks/{webhook_id}/deliveries").json()["items"]
    assert [d["status"] for d in log] == ["delivered"] * 3 and {d["attempts"] for d in log} == {1, 2}


def test_failing_receivers_give_up_and_bad_registrations_are_refused(api: ApiClient, hub: Hub, receiver: Any) -> None:
    hub.webhooks.max_attempts = 2
    webhook_id = api.post("/api/v1/webhooks", json={"url": receiver.url, "events": ["batch.completed"]}).json()[
        "webhook_id"
    ]
    assert hub.webhooks.enqueue("local", "job.completed", "job_x", {}) == 0  # not subscribed
    assert hub.webhooks.enqueue("local", "batch.completed", "batch_x", {"batch_id": "batch_x"}) == 1
    receiver.answers = [503, 503]
    dispatcher = WebhookDispatcher(hub.webhooks)
    for _ in range(2):
        with hub.engine.begin() as conn:
            conn.execute(
                sa.update(webhook_deliveries)
                .values(next_attempt_at=time.time() - 1)
                .where(webhook_deliveries.c.status == "pending")
            )
        dispatcher.run_once()
    [entry] = api.get(f"/api/v1/webhooks/{webhook_id}/deliveries").json()["items"]
    assert (entry["status"], entry["attempts"]) == ("failed", 2)
    for body in (
        {"url": "ftp://x/y"},
        {"url": receiver.url, "events": ["job.exploded"]},
        {"url": receiver.url, "secret": "short"},
    ):
        assert api.post("/api/v1/webhooks", json=body).status_code == 422
    assert api.delete(f"/api/v1/webhooks/{webhook_id}").status_code == 204
    assert api.get(f"/api/v1/webhooks/{webhook_id}/deliveries").status_code == 404
