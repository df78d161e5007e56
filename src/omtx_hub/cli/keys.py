"""API keys and per-owner limits: server-side commands, run where the database is."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from omtx_hub.cli.app import keys_app
from omtx_hub.cli.common import console, local_hub

__all__ = ["keys_create", "keys_limits", "keys_list", "keys_revoke"]


@keys_app.command("create")
def keys_create(
    owner: Annotated[str, typer.Option("--owner", help="Owner the key acts for.")],
    admin: Annotated[bool, typer.Option(help="An admin key sees and manages every owner's work.")] = False,
    label: Annotated[str, typer.Option(help="A note to recognise the key by.")] = "",
) -> None:
    """Create an API key; it is printed once and stored only as a keyed hash."""
    with local_hub() as hub:
        key, record = hub.keys.create(owner, admin=admin, label=label)
    console.print(
        f"{key}\n(key id {record['key_id']}, owner {record['owner']}{', admin' if admin else ''}: "
        "store it now, it cannot be shown again)"
    )


@keys_app.command("list")
def keys_list(owner: Annotated[str | None, typer.Option("--owner")] = None) -> None:
    """List keys (prefix only), with owner, admin flag and revocation time."""
    from omtx_hub.presenters import iso

    with local_hub() as hub:
        items = hub.keys.list(owner)
    table = Table()
    for col in ("key_id", "prefix", "owner", "admin", "label", "created", "revoked"):
        table.add_column(col)
    for k in items:
        table.add_row(
            k["key_id"],
            k["prefix"] + "…",
            k["owner"],
            "yes" if k["admin"] else "",
            k["label"],
            (iso(k["created_at"]) or "")[:19],
            (iso(k["revoked_at"]) or "")[:19],
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key: Annotated[str, typer.Argument(help="Key id (key_…) or prefix (omtx_…).")]) -> None:
    """Revoke a key: it stops working on the next request, and its browser sessions end."""
    with local_hub() as hub:
        result = hub.keys.revoke(key)
    for r in result["revoked"]:
        console.print(f"revoked {r['key_id']} ({r['prefix']}…, owner {r['owner']})")


@keys_app.command("limits")
def keys_limits(
    owner: Annotated[str, typer.Argument(help="The owner whose limits to show or change.")],
    max_pending_jobs: Annotated[int | None, typer.Option(min=1)] = None,
    max_batch_size: Annotated[int | None, typer.Option(min=1)] = None,
    max_sequence_length: Annotated[int | None, typer.Option(min=1)] = None,
    max_heavy_atoms: Annotated[int | None, typer.Option(min=1)] = None,
    submissions_per_minute: Annotated[int | None, typer.Option(min=1)] = None,
    max_body_bytes: Annotated[int | None, typer.Option(min=1024)] = None,
    clear: Annotated[list[str] | None, typer.Option(help="Drop an override (back to the hub's setting).")] = None,
) -> None:
    """Show or set per-owner overrides of the hub's limits."""
    given = {
        "max_pending_jobs": max_pending_jobs,
        "max_batch_size": max_batch_size,
        "max_sequence_length": max_sequence_length,
        "max_heavy_atoms": max_heavy_atoms,
        "submissions_per_minute": submissions_per_minute,
        "max_body_bytes": max_body_bytes,
    }
    changes: dict[str, int | None] = {name: value for name, value in given.items() if value is not None}
    for name in clear or []:
        changes[name] = None
    with local_hub() as hub:
        if changes:
            hub.keys.set_owner_limits(owner, changes)
        effective = hub.limits_for(owner)
        overrides = hub.keys.owner_limits(owner)
    console.print_json(json.dumps({"owner": owner, "overrides": overrides, "effective": effective.__dict__}))
