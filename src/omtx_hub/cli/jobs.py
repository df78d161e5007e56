"""Client commands for jobs and batches: submit, screen (with progress), status, cancel, retry,
results, the job list, and a batch's export, statistics and rescoring funnel. They talk to the hub
over HTTP (``--url``, ``OMTX_URL``) and import nothing of the server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from omtx_hub.cli.app import app
from omtx_hub.cli.common import (
    DEFAULT_URL,
    ParamOption,
    PoseChecksOption,
    RequireOption,
    SequenceOption,
    TargetOption,
    UrlOption,
    console,
    err,
    hub_client,
    parse_params,
)
from omtx_hub.client import HubClient

__all__ = [
    "cancel",
    "export_command",
    "list_jobs",
    "rescore_command",
    "results",
    "retry",
    "screen",
    "stats_command",
    "status",
    "submit",
    "watch",
]


@app.command()
def submit(
    smiles: Annotated[str, typer.Option("--smiles", help="Ligand SMILES.")],
    protein_sequence: SequenceOption = None,
    target: TargetOption = None,
    name: Annotated[str, typer.Option("--name", help="Ligand name.")] = "ligand",
    predictor: Annotated[str | None, typer.Option("--predictor", "-p")] = None,
    param: ParamOption = None,
    wait: Annotated[bool, typer.Option(help="Wait for the result and print it.")] = False,
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Submit one protein–ligand prediction."""
    with hub_client(url) as hub:
        job = hub.submit(
            protein_sequence, smiles, name, target_id=target, predictor=predictor, params=parse_params(param)
        )
        console.print(f"{job['job_id']}  {job['status']}")
        if wait:
            final = hub.wait(job["job_id"])
            console.print_json(json.dumps(final))


@app.command()
def screen(
    ligands_file: Annotated[Path, typer.Argument(help="Ligands: .csv (smiles[,name]), .smi or .sdf.", exists=True)],
    protein_sequence: SequenceOption = None,
    target: TargetOption = None,
    batch_name: Annotated[str | None, typer.Option("--name", help="Batch name (default: the file name).")] = None,
    predictor: Annotated[str | None, typer.Option("--predictor", "-p")] = None,
    param: ParamOption = None,
    max_concurrent: Annotated[int | None, typer.Option(help="Cap on this batch's running jobs.")] = None,
    skip_invalid: Annotated[bool, typer.Option(help="Queue the valid ligands, report the invalid ones.")] = False,
    filter_: Annotated[
        list[str] | None,
        typer.Option(
            "--filter",
            help="Pre-filter KEY=VALUE, repeatable, e.g. lipinski=true pains=exclude max_mw=600 dedupe=true.",
        ),
    ] = None,
    require_interaction: RequireOption = None,
    pose_checks: PoseChecksOption = None,
    dry_run: Annotated[bool, typer.Option(help="Estimate time and cost; queue nothing.")] = False,
    wait: Annotated[bool, typer.Option(help="Show progress until done, then the ranked table.")] = False,
    top: Annotated[int, typer.Option(help="Rows of the ranked table.")] = 20,
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Screen a ligand file against one protein target as a batch."""
    from omtx_hub.ligand_files import read_ligands

    with hub_client(url) as hub:
        try:
            ligands = read_ligands(ligands_file)
        except ImportError:  # an SDF, and RDKit is not installed here (a client-only install): the hub reads it
            ligands = hub.parse_ligands(ligands_file)
        except ValueError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from exc
        batch = hub.submit_batch(
            batch_name or ligands_file.stem,
            protein_sequence,
            ligands,
            target_id=target,
            predictor=predictor,
            params=parse_params(param),
            max_concurrent=max_concurrent,
            skip_invalid=skip_invalid,
            filters=parse_params(filter_) if filter_ else None,
            required_interactions=require_interaction,
            pose_checks=pose_checks,
            dry_run=dry_run,
        )
        for item in batch["skipped"]:
            err.print(f"  skipped #{item['index']} {item['name']!r}: {item['reason']}")
        for item in batch.get("filtered", []):
            err.print(f"  filtered #{item['index']} {item['name']!r}: {item['reason']}")
        if dry_run:
            console.print_json(json.dumps({k: v for k, v in batch.items() if k not in ("skipped", "filtered")}))
            return
        console.print(f"batch {batch['batch_id']}: {batch['total']} ligands queued")
        if wait:
            watch(hub, batch["batch_id"], batch["total"], top)


def watch(hub: HubClient, batch_id: str, total: int, top: int) -> None:
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("running", total=total)

        def update(status: dict[str, Any]) -> None:
            p = status["progress"]
            finished = p["completed"] + p["failed"] + p["cancelled"]
            bar.update(task, completed=finished, description=f"{p['running']} running, {p['failed']} failed")

        final = hub.wait(batch_id, on_progress=update)
    _print_ranked(hub, batch_id, final, top)


def _print_ranked(hub: HubClient, batch_id: str, final: dict[str, Any], top: int) -> None:
    """The batch's best ``top`` ligands as the hub ranks them (its JSON export), with the efficiency
    and reference-RMSD columns when the predictor gives them."""
    console.print(f"batch {batch_id}: {final['status']}  {final['progress']}")
    if not (final.get("results") or {}).get("top"):
        return
    from omtx_hub.predictors.catalog import table_fields

    ranked = hub.ranked(batch_id, top, status="completed")
    rank_by, rows, headings = ranked["rank_by"], ranked["results"], table_fields()
    extras = [k for k in headings if any(row.get(k) is not None for row in rows)]
    table = Table(title=f"Top {len(rows)} by {rank_by} ({ranked['direction']}ending = better)")
    for col in ("rank", "ligand", rank_by, *(headings[k] for k in extras), "job"):
        table.add_column(col, overflow="fold")
    for row in rows:
        extra_values = ["" if row.get(k) is None else f"{row[k]}" for k in extras]
        table.add_row(str(row["rank"]), row["ligand_name"], f"{row.get(rank_by)}", *extra_values, row["job_id"])
    console.print(table)


@app.command()
def status(job_id: str, url: UrlOption = DEFAULT_URL) -> None:
    """Show a job's or batch's status, progress and results."""
    with hub_client(url) as hub:
        console.print_json(json.dumps(hub.status(job_id)))


@app.command()
def cancel(job_id: str, url: UrlOption = DEFAULT_URL) -> None:
    """Cancel a job, or every unfinished job of a batch."""
    with hub_client(url) as hub:
        result = hub.cancel(job_id)
        console.print(f"{job_id}: {result['status']}" + (" (stop requested)" if result["cancel_requested"] else ""))


@app.command()
def retry(job_id: str, url: UrlOption = DEFAULT_URL) -> None:
    """Retry a failed or cancelled job, or the failed jobs of a batch."""
    with hub_client(url) as hub:
        console.print(f"{job_id}: {hub.retry(job_id)['status']}")


@app.command()
def results(
    job_id: str,
    out: Annotated[Path, typer.Option("--out", help="Folder to write the files into.")],
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Download every file of a job (for a batch: its result tables and each completed job's files)."""
    with hub_client(url) as hub:
        written = hub.download_all(job_id, out)
    console.print(f"{len(written)} files written under {out}")


@app.command("jobs")
def list_jobs(
    job_type: Annotated[str | None, typer.Option("--type", help="INDIVIDUAL, BATCH_PARENT or BATCH_CHILD.")] = None,
    status_filter: Annotated[str | None, typer.Option("--status")] = None,
    limit: int = 20,
    url: UrlOption = DEFAULT_URL,
) -> None:
    """List recent jobs and batches."""
    with hub_client(url) as hub:
        items = hub.jobs(job_type=job_type, status=status_filter, limit=limit)
    table = Table()
    for col in ("job_id", "type", "status", "name", "predictor", "created", "progress"):
        table.add_column(col)
    for j in items:
        p = j["progress"]
        table.add_row(
            j["job_id"],
            j["job_type"],
            j["status"],
            j["name"] or "",
            j["predictor"],
            j["created_at"][:19],
            f"{p['completed']}/{p['total']}" if p else "",
        )
    console.print(table)


@app.command("export")
def export_command(
    batch_id: str,
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv, json, sdf, zip or parquet.")] = "csv",
    sort: Annotated[
        str | None, typer.Option(help="Rank by this field (default: the predictor's primary score).")
    ] = None,
    order: Annotated[str | None, typer.Option(help="asc or desc (default: the score's own direction).")] = None,
    status: Annotated[str | None, typer.Option(help="Only rows with this status.")] = None,
    top: Annotated[int | None, typer.Option(help="Only the best N rows.")] = None,
    require_interaction: RequireOption = None,
    pose_checks: PoseChecksOption = None,
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Export a batch, ranked: one row per ligand (CSV/JSON/Parquet), best poses (SDF), structures (ZIP)."""
    with hub_client(url) as hub:
        path = hub.export(
            batch_id,
            out,
            fmt,
            sort=sort,
            order=order,
            status=status,
            top=top,
            required_interactions=require_interaction,
            pose_checks=pose_checks,
        )
    console.print(f"wrote {path} ({path.stat().st_size} bytes)")


@app.command("stats")
def stats_command(
    batch_id: str,
    top: Annotated[int, typer.Option(help="Best N ligands.")] = 10,
    require_interaction: RequireOption = None,
    pose_checks: PoseChecksOption = None,
    primary_only: Annotated[
        bool,
        typer.Option(
            "--primary-only",
            help="Summarise the primary score only, from its index: fast for a batch of any size.",
        ),
    ] = False,
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Batch statistics as JSON: counts, every score's summary and histogram, the top N, how often each
    contact occurs among them, cost."""
    with hub_client(url) as hub:
        stats = hub.stats(
            batch_id,
            top,
            required_interactions=require_interaction,
            pose_checks=pose_checks,
            fields="primary" if primary_only else "all",
        )
        console.print_json(json.dumps(stats))


@app.command("rescore")
def rescore_command(
    batch_id: str,
    top_k: Annotated[int, typer.Option("--top-k", help="How many of the best completed ligands to send on.")],
    predictor: Annotated[str, typer.Option("--predictor", "-p", help="Predictor of the new batch.")],
    param: ParamOption = None,
    target: TargetOption = None,
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Funnel: send the top K ligands of a batch to another predictor as a new, linked batch."""
    with hub_client(url) as hub:
        batch = hub.rescore(batch_id, top_k, predictor, params=parse_params(param), target_id=target)
    console.print(f"batch {batch['batch_id']}: the top {batch['total']} of {batch_id} queued for {predictor}")
