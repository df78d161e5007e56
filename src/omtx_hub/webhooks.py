"""Webhooks: an owner registers a URL and a secret; the hub POSTs signed events to it.

Events: ``job.completed`` and ``job.failed`` for individual jobs, ``batch.completed`` when a
batch has finished (whatever its final status: completed, failed or cancelled) and its files are
written. A batch's children send no events of their own (a 100,000-ligand screen would send
100,000 requests); subscribe to ``batch.completed`` and fetch the export.

Each event becomes one row per subscribed webhook in ``webhook_deliveries`` (the delivery log),
written by the worker right after the job's or batch's final transition. A dispatcher thread in
every worker process sends due deliveries: it takes a lease on a few rows (``next_attempt_at``
moved ahead, so no other dispatcher sends them meanwhile), POSTs each with a 10 s timeout, and
records the outcome. A 2xx answer marks the delivery ``delivered``; anything else is retried with
exponential backoff (10 s, doubling, at most 1 h) up to ``OMTX_WEBHOOK_MAX_ATTEMPTS``, then
``failed``. Receivers should be idempotent: a dispatcher that dies after the POST and before
recording it sends that delivery again (same ``X-OMTX-Delivery`` id).

Signature: ``X-OMTX-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``;
receivers recompute it over the raw body and reject old ``t`` values (replays).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from typing import Any
from urllib.parse import urlparse

import httpx
import sqlalchemy as sa

from omtx_hub.backoff import Backoff
from omtx_hub.db.engine import read_connection, transaction
from omtx_hub.db.schema import webhook_deliveries, webhooks
from omtx_hub.errors import InvalidInput, NotFound, QueueUnavailable

__all__ = ["EVENTS", "WebhookDispatcher", "WebhookStore", "sign"]

logger = logging.getLogger("omtx_hub.webhooks")
EVENTS = ("job.completed", "job.failed", "batch.completed")
_LEASE_SECONDS = 60.0
Rows = list[dict[str, Any]]  # named here: inside WebhookStore, ``list`` is its method
_RETRY = Backoff(first=10.0, cap=3600.0)


def sign(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class WebhookStore:
    """Webhooks and their delivery log in the hub's database."""

    def __init__(self, engine: sa.Engine, max_attempts: int = 8) -> None:
        self.engine = engine
        self.max_attempts = max_attempts
        self._cache: dict[str, tuple[float, list[dict[str, Any]]]] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ registration

    def create(self, owner: str, url: str, events: list[str] | None, secret: str | None) -> dict[str, Any]:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise InvalidInput("webhook url must be an http:// or https:// URL", code="invalid_webhook")
        chosen = list(dict.fromkeys(events or EVENTS))
        unknown = [e for e in chosen if e not in EVENTS]
        if unknown or not chosen:
            raise InvalidInput(
                f"unknown events {unknown}; known: {', '.join(EVENTS)}",
                code="invalid_webhook",
                details={"known": list(EVENTS)},
            )
        if secret is not None and len(secret) < 16:
            raise InvalidInput("a webhook secret needs at least 16 characters", code="invalid_webhook")
        record = {
            "webhook_id": f"whk_{secrets.token_urlsafe(12)}",
            "owner": owner,
            "url": url,
            "secret": secret or secrets.token_urlsafe(32),
            "events": chosen,
            "created_at": time.time(),
        }
        with transaction(self.engine) as conn:
            conn.execute(webhooks.insert(), record)
        self._cache.pop(owner, None)
        return record

    def list(self, owner: str | None) -> Rows:
        query = sa.select(webhooks).where(webhooks.c.deleted_at.is_(None)).order_by(webhooks.c.created_at)
        if owner is not None:
            query = query.where(webhooks.c.owner == owner)
        with read_connection(self.engine) as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def get(self, webhook_id: str, owner: str | None) -> dict[str, Any]:
        with read_connection(self.engine) as conn:
            row = conn.execute(sa.select(webhooks).where(webhooks.c.webhook_id == webhook_id)).first()
        if row is None or row.deleted_at is not None or (owner is not None and row.owner != owner):
            raise NotFound(f"no webhook with id {webhook_id!r}", code="webhook_not_found")
        return dict(row._mapping)

    def delete(self, webhook_id: str, owner: str | None) -> None:
        record = self.get(webhook_id, owner)
        with transaction(self.engine) as conn:
            conn.execute(sa.update(webhooks).where(webhooks.c.webhook_id == webhook_id).values(deleted_at=time.time()))
        self._cache.pop(record["owner"], None)

    def deliveries(self, webhook_id: str, owner: str | None, limit: int = 100) -> Rows:
        self.get(webhook_id, owner)
        with read_connection(self.engine) as conn:
            rows = conn.execute(
                sa.select(webhook_deliveries)
                .where(webhook_deliveries.c.webhook_id == webhook_id)
                .order_by(webhook_deliveries.c.id.desc())
                .limit(limit)
            )
            return [dict(r._mapping) for r in rows]

    # ------------------------------------------------------------------ events

    def _subscribed(self, owner: str, event: str) -> Rows:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(owner)
        if cached is None or now - cached[0] > 5.0:  # new webhooks reach workers within 5 s
            cached = (now, self.list(owner))
            with self._lock:
                self._cache[owner] = cached
        return [w for w in cached[1] if event in w["events"]]

    def enqueue(self, owner: str, event: str, job_id: str, data: dict[str, Any]) -> int:
        """Record one delivery per webhook of ``owner`` subscribed to ``event``; return how many."""
        targets = self._subscribed(owner, event)
        if not targets:
            return 0
        now = time.time()
        rows = [
            {
                "delivery_id": f"dlv_{secrets.token_urlsafe(12)}",
                "webhook_id": w["webhook_id"],
                "event": event,
                "job_id": job_id,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
                "payload": {"event": event, "created_at": now, "data": data},
            }
            for w in targets
        ]
        with transaction(self.engine) as conn:
            conn.execute(webhook_deliveries.insert(), rows)
        return len(rows)

    # ------------------------------------------------------------------ dispatching

    def lease_due(self, limit: int = 20) -> Rows:
        """Take due deliveries for this dispatcher (pushes their next attempt past a lease)."""
        now = time.time()
        due = sa.select(webhook_deliveries.c.id).where(
            webhook_deliveries.c.status == "pending", webhook_deliveries.c.next_attempt_at <= now
        )
        with read_connection(self.engine) as conn:  # idle: no write lock taken
            if conn.execute(due.limit(1)).first() is None:
                return []
        with transaction(self.engine) as conn:
            due = due.order_by(webhook_deliveries.c.next_attempt_at).limit(limit)
            if conn.dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True)
            ids = list(conn.execute(due).scalars())
            if not ids:
                return []
            conn.execute(
                sa.update(webhook_deliveries)
                .where(webhook_deliveries.c.id.in_(ids))
                .values(next_attempt_at=now + _LEASE_SECONDS)
            )
            rows = conn.execute(
                sa.select(webhook_deliveries, webhooks.c.url, webhooks.c.secret, webhooks.c.deleted_at)
                .join(webhooks, webhooks.c.webhook_id == webhook_deliveries.c.webhook_id)
                .where(webhook_deliveries.c.id.in_(ids))
            )
            return [dict(r._mapping) for r in rows]

    def record(self, delivery: dict[str, Any], status_code: int | None, error: str | None) -> str:
        attempts = delivery["attempts"] + 1
        now = time.time()
        values: dict[str, Any] = {"attempts": attempts, "response_status": status_code, "last_error": error}
        if error is None:
            values.update(status="delivered", delivered_at=now)
        elif attempts >= self.max_attempts or delivery["deleted_at"] is not None:
            values.update(status="failed")
        else:
            values.update(next_attempt_at=now + _RETRY.delay(attempts))
        with transaction(self.engine) as conn:
            conn.execute(
                sa.update(webhook_deliveries).where(webhook_deliveries.c.id == delivery["id"]).values(**values)
            )
        return str(values.get("status", "pending"))


class WebhookDispatcher:
    """A thread that sends due deliveries (one per worker process)."""

    def __init__(self, store: WebhookStore, poll_seconds: float = 0.5) -> None:
        self.store = store
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="webhooks", daemon=True)
        self._client = httpx.Client(timeout=10.0, follow_redirects=False)

    def start(self) -> WebhookDispatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)
        self._client.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                sent = self.run_once()
            except QueueUnavailable:  # the database is down: try again later
                sent = 0
            except Exception:
                logger.exception("webhook dispatch failed", extra={"action": "webhook"})
                sent = 0
            if not sent:
                self._stop.wait(self.poll_seconds)

    def run_once(self) -> int:
        due = self.store.lease_due()
        for delivery in due:
            self.send(delivery)
        return len(due)

    def send(self, delivery: dict[str, Any]) -> str:
        body = json.dumps({**delivery["payload"], "delivery_id": delivery["delivery_id"]}, sort_keys=True).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "omtx-hub-webhooks",
            "X-OMTX-Event": delivery["event"],
            "X-OMTX-Delivery": delivery["delivery_id"],
            "X-OMTX-Signature": sign(delivery["secret"], body, int(time.time())),
        }
        code: int | None = None
        error: str | None = None
        if delivery["deleted_at"] is not None:
            error = "webhook deleted"
        else:
            try:
                response = self._client.post(delivery["url"], content=body, headers=headers)
                code = response.status_code
                if not 200 <= code < 300:
                    error = f"answered {code}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"[:500]
        outcome = self.store.record(delivery, code, error)
        logger.info(
            "webhook",
            extra={
                "action": "webhook",
                "job": delivery["job_id"],
                "event": delivery["event"],
                "outcome": outcome,
                "status_code": code,
            },
        )
        return outcome
