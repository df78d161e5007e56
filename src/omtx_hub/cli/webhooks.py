"""Client commands for webhooks: create, list, delete, and the delivery log."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from omtx_hub.cli.app import webhooks_app
from omtx_hub.cli.common import DEFAULT_URL, UrlOption, console, hub_client

__all__ = ["webhooks_create", "webhooks_delete", "webhooks_deliveries", "webhooks_list"]


@webhooks_app.command("create")
def webhooks_create(
    webhook_url: Annotated[str, typer.Argument(metavar="URL", help="Where events are POSTed.")],
    event: Annotated[
        list[str] | None,
        typer.Option("--event", help="job.completed, job.failed, batch.completed (repeatable; default: all)."),
    ] = None,
    secret: Annotated[str | None, typer.Option(help="HMAC secret (16+ characters); default: a random one.")] = None,
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Register a webhook; prints its id and secret (the secret is shown only now)."""
    with hub_client(url) as hub:
        hook = hub.create_webhook(webhook_url, event, secret)
    console.print(f"{hook['webhook_id']}  {hook['url']}  events {', '.join(hook['events'])}")
    console.print(f"secret: {hook['secret']}")


@webhooks_app.command("list")
def webhooks_list(url: UrlOption = DEFAULT_URL) -> None:
    """This owner's webhooks."""
    with hub_client(url) as hub:
        items = hub.webhooks()
    table = Table()
    for col in ("webhook_id", "url", "events", "created"):
        table.add_column(col)
    for w in items:
        table.add_row(w["webhook_id"], w["url"], ", ".join(w["events"]), w["created_at"][:19])
    console.print(table)


@webhooks_app.command("delete")
def webhooks_delete(webhook_id: str, url: UrlOption = DEFAULT_URL) -> None:
    """Delete a webhook; its pending deliveries are dropped."""
    with hub_client(url) as hub:
        hub.delete_webhook(webhook_id)
    console.print(f"deleted {webhook_id}")


@webhooks_app.command("deliveries")
def webhooks_deliveries(
    webhook_id: str, limit: Annotated[int, typer.Option(help="Newest N.")] = 50, url: UrlOption = DEFAULT_URL
) -> None:
    """The delivery log of a webhook: event, job, status, attempts, last answer."""
    with hub_client(url) as hub:
        items = hub.webhook_deliveries(webhook_id, limit)
    table = Table()
    for col in ("delivery_id", "event", "job_id", "status", "attempts", "answer", "created"):
        table.add_column(col)
    for d in items:
        table.add_row(
            d["delivery_id"],
            d["event"],
            d["job_id"],
            d["status"],
            str(d["attempts"]),
            d["last_error"] or str(d["response_status"] or "-"),
            d["created_at"][:19],
        )
    console.print(table)
