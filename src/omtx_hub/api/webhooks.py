"""Webhooks: register a URL + secret for events; list, delete, and read the delivery log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field

from omtx_hub.access import authenticate, get_hub, principal_of, scope_of
from omtx_hub.api.schemas import ERROR_RESPONSES, StrictModel
from omtx_hub.presenters import iso
from omtx_hub.webhooks import EVENTS

__all__ = ["router"]

router = APIRouter(
    prefix="/api/v1/webhooks", tags=["webhooks"], dependencies=[Depends(authenticate)], responses=ERROR_RESPONSES
)


class WebhookRequest(StrictModel):
    url: str = Field(max_length=2000, description="Where events are POSTed (http:// or https://).")
    events: list[str] | None = Field(None, description=f"Any of {', '.join(EVENTS)}; default: all.")
    secret: str | None = Field(
        None,
        min_length=16,
        max_length=200,
        description="HMAC key of the signatures; default: a random one, returned once.",
    )


def _view(w: dict[str, Any], secret: bool = False) -> dict[str, Any]:
    view = {"webhook_id": w["webhook_id"], "url": w["url"], "events": w["events"], "created_at": iso(w["created_at"])}
    if secret:
        view["secret"] = w["secret"]
    return view


@router.post("", status_code=201, summary="Register a webhook (the answer shows its secret, once)")
def create_webhook(body: WebhookRequest, request: Request) -> Any:
    hub = get_hub(request)
    record = hub.webhooks.create(principal_of(request).owner, body.url, body.events, body.secret)
    return _view(record, secret=True)


@router.get("", summary="This owner's webhooks")
def list_webhooks(request: Request) -> Any:
    hub = get_hub(request)
    return {"items": [_view(w) for w in hub.webhooks.list(scope_of(request))]}


@router.delete("/{webhook_id}", status_code=204, summary="Delete a webhook (pending deliveries are dropped)")
def delete_webhook(webhook_id: str, request: Request) -> None:
    hub = get_hub(request)
    hub.webhooks.delete(webhook_id, scope_of(request))


@router.get("/{webhook_id}/deliveries", summary="Delivery log, newest first")
def deliveries(webhook_id: str, request: Request, limit: int = Query(100, ge=1, le=1000)) -> Any:
    hub = get_hub(request)
    items = [
        {
            "delivery_id": d["delivery_id"],
            "event": d["event"],
            "job_id": d["job_id"],
            "status": d["status"],
            "attempts": d["attempts"],
            "response_status": d["response_status"],
            "last_error": d["last_error"],
            "created_at": iso(d["created_at"]),
            "delivered_at": iso(d["delivered_at"]) if d["delivered_at"] else None,
            "next_attempt_at": iso(d["next_attempt_at"]) if d["status"] == "pending" else None,
        }
        for d in hub.webhooks.deliveries(webhook_id, scope_of(request), limit)
    ]
    return {"webhook_id": webhook_id, "items": items}
