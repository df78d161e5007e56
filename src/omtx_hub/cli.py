"""The ``omtx-hub`` command: a thin layer over the library and the HTTP client."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from omtx_hub.client import HubClient, HubError
from omtx_hub.errors import OmtxError

__all__ = ["app", "main"]

app = typer.Typer(help="OMTX-Hub: protein–ligand prediction jobs and batch screens.", no_args_is_help=True)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")
console = Console()
err = Console(stderr=True)

UrlOption = Annotated[str, typer.Option("--url", envvar="OMTX_URL", help="Base URL of the hub's API.")]
PredictorsOption = Annotated[
    list[str] | None,
    typer.Option("--predictor", "-p", help="Predictor to run (repeatable); default: every one that loads."),
]
ParamOption = Annotated[
    list[str] | None, typer.Option("--param", help="Predictor parameter KEY=VALUE (repeatable; VALUE as JSON if it parses).")
]


def main() -> None:
    app()


LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _local_key_path() -> Path:
    return Path(os.environ.get("OMTX_HOME", ".omtx")) / "local_api_key"


def _client(url: str) -> HubClient:
    """A client with the caller's key: OMTX_API_KEY, else the local key `serve` wrote in OMTX_HOME."""
    key = os.environ.get("OMTX_API_KEY")
    if not key and _local_key_path().exists():
        key = _local_key_path().read_text().strip()
    return HubClient(url, api_key=key)


def _ensure_local_key(hub: Any, host: str) -> str | None:
    """On first start on a loopback address, create the local admin key; elsewhere require keys."""
    if hub.keys.any_keys():
        path = hub.settings.home / "local_api_key"
        return path.read_text().strip() if path.exists() else None
    if host not in LOOPBACK:
        err.print(f"[red]error:[/red] no API keys exist, and {host} is not a loopback address: create one first "
                  "with `omtx-hub keys create --owner NAME --admin` (there is no anonymous mode)")  # fmt: skip
        raise typer.Exit(2)
    key, _ = hub.keys.create(hub.settings.owner, admin=True, label="local key created on first start")
    path = hub.settings.home / "local_api_key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    console.print(f"Created the local admin API key (saved in {path}, shown once here):\n  {key}")
    return key


def _setup_logging(level: str = "INFO") -> None:
    from omtx_hub.logs import setup_logging
    from omtx_hub.settings import Settings

    setup_logging(Settings().log_format, level)


def _params(items: list[str] | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--param expects KEY=VALUE, got {item!r}")
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params


def _load_predictors(names: list[str] | None, *, strict: bool) -> dict[str, Any]:
    from omtx_hub.errors import PredictorUnavailable
    from omtx_hub.registry import available_predictors, load_predictor
    from omtx_hub.settings import Settings

    settings = Settings()
    wanted = names or sorted(available_predictors(settings))
    loaded = {}
    for name in wanted:
        try:
            loaded[name] = load_predictor(name, settings)
        except PredictorUnavailable as exc:
            if strict or names:
                err.print(f"[red]error:[/red] {exc.message}")
                raise typer.Exit(2) from exc
            err.print(f"[yellow]skipping predictor {name}:[/yellow] {exc.message}")
    return loaded


def _check_model_files(settings: Any, names: list[str] | None) -> None:
    """Before starting a worker child: a named boltz2 without weights stops here (exit 2), an unnamed one warns."""
    from omtx_hub.models import missing_boltz2_message
    from omtx_hub.registry import available_predictors

    if "boltz2" not in (names or available_predictors(settings)):
        return
    problem = missing_boltz2_message(settings.resolved_boltz_cache())
    if problem and names:
        err.print(f"[red]error:[/red] {problem}")
        raise typer.Exit(2)
    if problem:
        err.print(f"[yellow]boltz2 jobs will wait for a worker that has its weights:[/yellow] {problem}")


def _fail(exc: HubError) -> None:
    err.print(f"[red]error {exc.status} {exc.code}:[/red] {exc.message}")
    if isinstance(exc.details, dict) and exc.details.get("ligands"):
        for item in exc.details["ligands"][:50]:
            err.print(f"  ligand #{item['index']} {item['name']!r}: {item['reason']}")
    raise typer.Exit(1)


# ---------------------------------------------------------------------- server side


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default OMTX_HOST, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default OMTX_PORT, 8000).")] = None,
    worker: Annotated[bool, typer.Option("--worker/--no-worker", help="Start a worker child process.")] = True,
    predictor: PredictorsOption = None,
) -> None:
    """Start the API (and, by default, a worker child process) on the configured database and store."""
    import uvicorn

    from omtx_hub.api import create_app
    from omtx_hub.hub import open_hub
    from omtx_hub.settings import Settings
    from omtx_hub.worker import WorkerProcess

    _setup_logging()
    settings = Settings()
    if worker:
        _check_model_files(settings, predictor)
    hub = open_hub(settings)
    bind_host, bind_port = host or settings.host, port or settings.port
    _ensure_local_key(hub, bind_host)
    child = WorkerProcess(settings, predictor).start() if worker else None
    console.print(f"OMTX-Hub API on http://{bind_host}:{bind_port}  (docs: /docs, data: {settings.home})")
    # uvicorn shuts down on SIGTERM, then raises the signal again for the handler that was there before
    # it: this one turns it into an exit that runs the ``finally`` (the default would kill this
    # process at once and orphan the worker child)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        uvicorn.run(create_app(hub=hub), host=bind_host, port=bind_port, log_level="info")
    finally:
        _ignore_stop_signals()  # a second Ctrl-C or SIGTERM must not interrupt stopping the child
        if child is not None:
            child.stop()
        hub.close()


def _exit_on_signal(_signum: int, _frame: Any) -> None:
    raise SystemExit(0)


def _ignore_stop_signals() -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_IGN)


@app.command("worker")
def worker_command(
    predictor: PredictorsOption = None,
    exit_when_idle: Annotated[bool, typer.Option(help="Exit (code 0) once nothing is runnable for this worker.")] = False,
    grace_seconds: Annotated[float, typer.Option(help="On SIGTERM, time to finish running jobs before releasing them.")] = 30.0,
) -> None:
    """Run a worker process against OMTX_DATABASE_URL (SQLite file or postgresql://…)."""
    from omtx_hub.hub import open_hub
    from omtx_hub.settings import Settings
    from omtx_hub.worker import Worker

    _setup_logging()
    predictors = _load_predictors(predictor, strict=False)  # named predictors must load; others are skipped
    if not predictors:
        err.print("[red]error:[/red] no predictor is installed; see the README (predictors)")
        raise typer.Exit(2)
    settings = Settings()
    hub = open_hub(settings)
    w = Worker(settings, hub.manager, hub.store, predictors, webhooks=hub.webhooks)

    def _on_signal(signum: int, _frame: Any) -> None:
        # os.write, not print: the signal may land while this thread is inside a write to stderr, and
        # Python's buffered streams refuse a reentrant write
        os.write(2, f"signal {signum}: finishing running jobs (up to {grace_seconds:g} s), then stopping\n".encode())
        w.stop(grace_seconds)

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    w.run(exit_when_idle=exit_when_idle)
    hub.close()


@db_app.command("migrate")
def db_migrate() -> None:
    """Create or upgrade the schema of OMTX_DATABASE_URL."""
    from omtx_hub.hub import open_hub
    from omtx_hub.settings import Settings

    open_hub(Settings()).close()
    console.print("schema is up to date")


def _duration(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if len(text) < 2 or text[-1] not in units or not text[:-1].replace(".", "", 1).isdigit():
        raise typer.BadParameter("use a number and a unit: 90s, 30m, 12h, 30d")
    return float(text[:-1]) * units[text[-1]]


@db_app.command("prune")
def db_prune(
    older_than: Annotated[str, typer.Option(help="Age of finished work to delete: 30d, 12h, 90m.")],
    keep_files: Annotated[bool, typer.Option(help="Delete the rows only; keep the result files.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Only say what would be deleted.")] = False,
) -> None:
    """Delete finished jobs and batches (rows, events, and by default their files) older than a limit."""
    from omtx_hub.hub import open_hub
    from omtx_hub.settings import Settings

    hub = open_hub(Settings())
    pruned = hub.manager.prune(time.time() - _duration(older_than), dry_run=dry_run)
    if not dry_run and not keep_files:
        for job_id, batch_id in pruned:
            hub.store.delete_dir(hub.store.batch_dir(batch_id) if batch_id else hub.store.job_dir(job_id))
    verb = "would delete" if dry_run else "deleted"
    console.print(f"{verb} {len(pruned)} finished jobs and batches (batches with all their children)"
                  + ("" if keep_files or dry_run else ", files included"))  # fmt: skip
    hub.close()


# ---------------------------------------------------------------------- client side


TargetOption = Annotated[str | None, typer.Option("--target", "-t", help="Docking target id (omtx-hub target create).")]
SequenceOption = Annotated[str | None, typer.Option("--protein-sequence", "-s", help="Target protein sequence.")]


@app.command()
def submit(
    smiles: Annotated[str, typer.Option("--smiles", help="Ligand SMILES.")],
    protein_sequence: SequenceOption = None,
    target: TargetOption = None,
    name: Annotated[str, typer.Option("--name", help="Ligand name.")] = "ligand",
    predictor: Annotated[str | None, typer.Option("--predictor", "-p")] = None,
    param: ParamOption = None,
    wait: Annotated[bool, typer.Option(help="Wait for the result and print it.")] = False,
    url: UrlOption = "http://127.0.0.1:8000",
) -> None:
    """Submit one protein–ligand prediction."""
    with _client(url) as hub:
        try:
            job = hub.submit(protein_sequence, smiles, name, target_id=target, predictor=predictor,
                             params=_params(param))  # fmt: skip
            console.print(f"{job['job_id']}  {job['status']}")
            if wait:
                final = hub.wait(job["job_id"])
                console.print_json(json.dumps(final))
        except HubError as exc:
            _fail(exc)


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
    filter_: Annotated[list[str] | None, typer.Option("--filter", help="Pre-filter KEY=VALUE, repeatable, e.g. "
                                                      "lipinski=true pains=exclude max_mw=600 dedupe=true.")] = None,
    dry_run: Annotated[bool, typer.Option(help="Estimate time and cost; queue nothing.")] = False,
    wait: Annotated[bool, typer.Option(help="Show progress until done, then the ranked table.")] = False,
    top: Annotated[int, typer.Option(help="Rows of the ranked table.")] = 20,
    url: UrlOption = "http://127.0.0.1:8000",
) -> None:
    """Screen a ligand file against one protein target as a batch."""
    from omtx_hub.ligand_files import read_ligands

    try:
        ligands = read_ligands(ligands_file)
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    with _client(url) as hub:
        try:
            batch = hub.submit_batch(
                batch_name or ligands_file.stem, protein_sequence, ligands, target_id=target, predictor=predictor,
                params=_params(param), max_concurrent=max_concurrent, skip_invalid=skip_invalid,
                filters=_params(filter_) if filter_ else None, dry_run=dry_run,
            )  # fmt: skip
        except HubError as exc:
            _fail(exc)
        for item in batch["skipped"]:
            err.print(f"  skipped #{item['index']} {item['name']!r}: {item['reason']}")
        for item in batch.get("filtered", []):
            err.print(f"  filtered #{item['index']} {item['name']!r}: {item['reason']}")
        if dry_run:
            console.print_json(json.dumps({k: v for k, v in batch.items() if k not in ("skipped", "filtered")}))
            return
        console.print(f"batch {batch['batch_id']}: {batch['total']} ligands queued")
        if wait:
            _watch(hub, batch["batch_id"], batch["total"], top)


def _watch(hub: HubClient, batch_id: str, total: int, top: int) -> None:
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("running", total=total)

        def update(status: dict[str, Any]) -> None:
            p = status["progress"]
            finished = p["completed"] + p["failed"] + p["cancelled"]
            bar.update(task, completed=finished,
                       description=f"{p['running']} running, {p['failed']} failed")  # fmt: skip

        final = hub.wait(batch_id, on_progress=update)
    _print_ranked(hub, batch_id, final, top)


_EXTRA_COLUMNS = {
    "ligand_efficiency_kcal_mol_per_heavy_atom": "LE kcal/mol/HA",
    "rmsd_to_reference_angstrom": "RMSD to ref Å",
}


def _print_ranked(hub: HubClient, batch_id: str, final: dict[str, Any], top: int) -> None:
    summary = final.get("results") or {}
    console.print(f"batch {batch_id}: {final['status']}  {final['progress']}")
    if not summary.get("top"):
        return
    rank_by = summary["rank_by"]
    table = Table(title=f"Top {min(top, len(summary['top']))} by {rank_by} ({summary['direction']}ending = better)")
    rows = [c for c in hub.children(batch_id, status="completed") if c["results"] is not None]
    extras = [k for k in _EXTRA_COLUMNS if any(c["results"].get(k) is not None for c in rows)]
    for col in ("rank", "ligand", rank_by, *(_EXTRA_COLUMNS[k] for k in extras), "job"):
        table.add_column(col, overflow="fold")
    key = (lambda c: c["results"].get(rank_by, float("inf"))) if summary["direction"] == "asc" else (
        lambda c: -c["results"].get(rank_by, float("-inf")))  # fmt: skip
    for rank, child in enumerate(sorted(rows, key=key)[:top], start=1):
        extra_values = ["" if child["results"].get(k) is None else f"{child['results'][k]}" for k in extras]
        table.add_row(str(rank), child["ligand_name"], f"{child['results'].get(rank_by)}", *extra_values,
                      child["job_id"])  # fmt: skip
    console.print(table)


@app.command()
def status(job_id: str, url: UrlOption = "http://127.0.0.1:8000") -> None:
    """Show a job's or batch's status, progress and results."""
    with _client(url) as hub:
        try:
            console.print_json(json.dumps(hub.status(job_id)))
        except HubError as exc:
            _fail(exc)


@app.command()
def cancel(job_id: str, url: UrlOption = "http://127.0.0.1:8000") -> None:
    """Cancel a job, or every unfinished job of a batch."""
    with _client(url) as hub:
        try:
            result = hub.cancel(job_id)
            console.print(f"{job_id}: {result['status']}" + (" (stop requested)" if result["cancel_requested"] else ""))
        except HubError as exc:
            _fail(exc)


@app.command()
def retry(job_id: str, url: UrlOption = "http://127.0.0.1:8000") -> None:
    """Retry a failed or cancelled job, or the failed jobs of a batch."""
    with _client(url) as hub:
        try:
            console.print(f"{job_id}: {hub.retry(job_id)['status']}")
        except HubError as exc:
            _fail(exc)


@app.command()
def results(
    job_id: str,
    out: Annotated[Path, typer.Option("--out", help="Folder to write the files into.")],
    url: UrlOption = "http://127.0.0.1:8000",
) -> None:
    """Download every file of a job (for a batch: its result tables and each completed job's files)."""
    with _client(url) as hub:
        try:
            written = hub.download_all(job_id, out)
        except HubError as exc:
            _fail(exc)
    console.print(f"{len(written)} files written under {out}")


@app.command("jobs")
def list_jobs(
    job_type: Annotated[str | None, typer.Option("--type", help="INDIVIDUAL, BATCH_PARENT or BATCH_CHILD.")] = None,
    status_filter: Annotated[str | None, typer.Option("--status")] = None,
    limit: int = 20,
    url: UrlOption = "http://127.0.0.1:8000",
) -> None:
    """List recent jobs and batches."""
    with _client(url) as hub:
        try:
            items = hub.jobs(job_type=job_type, status=status_filter, limit=limit)
        except HubError as exc:
            _fail(exc)
    table = Table()
    for col in ("job_id", "type", "status", "name", "predictor", "created", "progress"):
        table.add_column(col)
    for j in items:
        p = j["progress"]
        table.add_row(j["job_id"], j["job_type"], j["status"], j["name"] or "", j["predictor"], j["created_at"][:19],
                      f"{p['completed']}/{p['total']}" if p else "")  # fmt: skip
    console.print(table)


# ---------------------------------------------------------------------- docking targets

target_app = typer.Typer(help="Targets: a receptor with its binding site, or a protein sequence; an optional MSA.",
                         no_args_is_help=True)
app.add_typer(target_app, name="target")


def _floats(text: str | None, what: str) -> list[float] | None:
    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError as exc:
        raise typer.BadParameter(f"{what} expects three numbers like 15.2,53.9,16.9") from exc
    if len(values) != 3:
        raise typer.BadParameter(f"{what} expects three numbers like 15.2,53.9,16.9")
    return values


@target_app.command("create")
def target_create(
    receptor: Annotated[Path | None, typer.Argument(help="Receptor structure (.pdb or .cif); omit with --sequence.",
                                                    exists=True)] = None,
    name: Annotated[str, typer.Option("--name", help="Target name.")] = "",
    box_center: Annotated[str | None, typer.Option(help="Box center x,y,z in Å.")] = None,
    box_size: Annotated[str | None, typer.Option(help="Box size x,y,z in Å.")] = None,
    reference_ligand: Annotated[Path | None, typer.Option(help="Reference ligand (.sdf): box around it.", exists=True)] = None,
    residues: Annotated[str | None, typer.Option(help="Pocket residues, e.g. A:315,A:381: box around them.")] = None,
    blind: Annotated[bool, typer.Option(help="Box around the whole receptor (slower, less reliable).")] = False,
    padding: Annotated[float, typer.Option(help="Å added on each side (reference ligand, residues, blind).")] = 5.0,
    sequence: Annotated[str | None, typer.Option(help="No receptor: a sequence target for co-folding (Boltz-2).")] = None,
    msa: Annotated[Path | None, typer.Option(help="MSA of the protein (.a3m), used by Boltz-2.", exists=True)] = None,
    url: UrlOption = "http://127.0.0.1:8000",
) -> None:
    """Create a target once (a receptor with its binding site, or --sequence); prints the id for --target."""
    if not name.strip():
        err.print("[red]error:[/red] give the target a --name")
        raise typer.Exit(1)
    site: dict[str, Any] | None = None
    if receptor is None:
        if sequence is None:
            err.print("[red]error:[/red] give a receptor file, or --sequence for a sequence target")
            raise typer.Exit(1)
    else:
        chosen = [box_center is not None, residues is not None, blind]
        if sum(chosen) > 1 or (sum(chosen) == 0 and reference_ligand is None):
            err.print("[red]error:[/red] give one binding site: --box-center/--box-size, --reference-ligand, "
                      "--residues or --blind")  # fmt: skip
            raise typer.Exit(1)
        if box_center is not None:
            site = {"mode": "box", "center": _floats(box_center, "--box-center"),
                    "size": _floats(box_size or "20,20,20", "--box-size")}  # fmt: skip
        elif residues is not None:
            site = {"mode": "residues", "residues": [r for r in residues.split(",") if r], "padding": padding}
        elif blind:
            site = {"mode": "blind", "padding": padding}
        else:
            site = {"mode": "ligand", "padding": padding}
    with _client(url) as hub:
        try:
            target = hub.create_target(name, receptor, site, reference_ligand=reference_ligand,
                                       protein_sequence=sequence, msa=msa)  # fmt: skip
        except HubError as exc:
            _fail(exc)
    where = (f"box center {target['binding_site']['center']} size {target['binding_site']['size']}"
             if target["binding_site"] else f"sequence of {len(target['protein_sequence'])} residues")  # fmt: skip
    console.print(f"{target['target_id']}  {target['name']}  {where}")
    for warning in target["warnings"]:
        err.print(f"[yellow]warning:[/yellow] {warning}")


@target_app.command("list")
def target_list(url: UrlOption = "http://127.0.0.1:8000") -> None:
    """List targets."""
    with _client(url) as hub:
        try:
            items = hub.targets()
        except HubError as exc:
            _fail(exc)
    table = Table()
    for col in ("target_id", "name", "kind", "site", "center", "size", "msa", "created"):
        table.add_column(col)
    for t in items:
        site = t["binding_site"] or {"mode": "-", "center": "-", "size": "-"}
        table.add_row(t["target_id"], t["name"], t["kind"], site["mode"], str(site["center"]), str(site["size"]),
                      "yes" if "msa.a3m" in t["files"] else "-", t["created_at"][:19])  # fmt: skip
    console.print(table)


@target_app.command("show")
def target_show(target_id: str, url: UrlOption = "http://127.0.0.1:8000") -> None:
    """Show one target as JSON."""
    with _client(url) as hub:
        try:
            console.print_json(json.dumps(hub.target(target_id)))
        except HubError as exc:
            _fail(exc)


# ---------------------------------------------------------------------- demo


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Port of the demo hub.")] = 8000,
    exhaustiveness: Annotated[int, typer.Option(help="Vina exhaustiveness for the demo screen.")] = 4,
    keep_serving: Annotated[bool, typer.Option(help="Keep the hub running after the screen (Ctrl-C stops).")] = True,
) -> None:
    """Start the hub, dock 10 known drugs into Abl kinase (PDB 1IEP) with Vina, print the ranking."""
    from importlib.resources import files

    from omtx_hub.hub import open_hub
    from omtx_hub.ligand_files import read_ligands
    from omtx_hub.server import BackgroundServer
    from omtx_hub.settings import Settings
    from omtx_hub.worker import WorkerProcess

    _setup_logging("WARNING")
    settings = Settings()
    _load_predictors(["vina"], strict=True)  # fail here, with what to install, if Vina is missing
    hub = open_hub(settings)
    key = _ensure_local_key(hub, settings.host)
    if key is None:
        err.print("[red]error:[/red] keys exist but no local key file; set OMTX_API_KEY to an admin key")
        raise typer.Exit(2)
    try:
        server = BackgroundServer(hub, settings.host, port).start()
    except RuntimeError as exc:
        err.print(f"[red]error:[/red] {exc}; choose another with --port")
        hub.close()
        raise typer.Exit(1) from exc
    signal.signal(signal.SIGTERM, _exit_on_signal)  # SIGTERM, like Ctrl-C, runs the ``finally`` that stops the child
    worker = WorkerProcess(settings, ["vina"], log_level="WARNING").start()  # the progress bar speaks
    data = Path(str(files("omtx_hub.demo")))
    console.print(f"OMTX-Hub running at {server.url} (data in {settings.home.resolve()})")
    try:
        with HubClient(server.url, api_key=key) as client:
            target = client.create_target(
                "Abl kinase, PDB 1IEP (imatinib site)", data / "1iep" / "1iep_receptorH.pdb",
                {"mode": "box", "center": [15.190, 53.903, 16.917], "size": [20.0, 20.0, 20.0]},
                reference_ligand=data / "1iep" / "1iep_ligand.sdf",
            )  # fmt: skip
            ligands = read_ligands(data / "ligands.csv")
            batch = client.submit_batch(
                "demo: 10 drugs vs Abl kinase (1IEP)", None, ligands, target_id=target["target_id"],
                predictor="vina", params={"exhaustiveness": exhaustiveness},
            )  # fmt: skip
            console.print(f"target {target['target_id']}; batch {batch['batch_id']}: docking {batch['total']} "
                          f"ligands with Vina (exhaustiveness {exhaustiveness}) on this machine's CPUs")  # fmt: skip
            _watch(client, batch["batch_id"], batch["total"], top=10)
            folder = f"{settings.resolved_storage_url()}/batches/{batch['batch_id']}"
            console.print(f"\nFiles: {folder}/batch_results.csv, batch_results.json and jobs/<job_id>/ "
                          "(poses.sdf, structure.cif = receptor + top pose, poses.pdbqt, results.json)")
            console.print(f"Open in a browser: {server.url}/jobs/{batch['batch_id']}  (ranked table, poses in 3D; "
                          f"sign in with the local key in {settings.home / 'local_api_key'}; API docs: {server.url}/docs)")  # fmt: skip
            console.print(f"Download everything: omtx-hub results {batch['batch_id']} --out demo-results "
                          f"--url {server.url}")  # fmt: skip
        if keep_serving:
            console.print("The hub keeps running for more work; Ctrl-C stops it.")
            # SIGTERM → SystemExit, Ctrl-C → KeyboardInterrupt, both raised in this sleep (a handler that
            # set an Event instead could deadlock with the Event.wait it interrupted)
            try:
                while True:
                    time.sleep(3600)
            except (KeyboardInterrupt, SystemExit):
                pass
    except HubError as exc:
        _fail(exc)
    finally:
        _ignore_stop_signals()
        worker.stop()
        server.stop()
        hub.close()


# ---------------------------------------------------------------------- keys and owners (server side)

keys_app = typer.Typer(help="API keys and per-owner limits (run where the database is).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def _keystore() -> Any:
    from omtx_hub.hub import open_hub
    from omtx_hub.settings import Settings

    return open_hub(Settings())


@keys_app.command("create")
def keys_create(
    owner: Annotated[str, typer.Option("--owner", help="Owner the key acts for.")],
    admin: Annotated[bool, typer.Option(help="An admin key sees and manages every owner's work.")] = False,
    label: Annotated[str, typer.Option(help="A note to recognise the key by.")] = "",
) -> None:
    """Create an API key; it is printed once and stored only as a keyed hash."""
    hub = _keystore()
    try:
        key, record = hub.keys.create(owner, admin=admin, label=label)
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"{key}\n(key id {record['key_id']}, owner {record['owner']}{', admin' if admin else ''}: "
                  "store it now, it cannot be shown again)")  # fmt: skip
    hub.close()


@keys_app.command("list")
def keys_list(owner: Annotated[str | None, typer.Option("--owner")] = None) -> None:
    """List keys (prefix only), with owner, admin flag and revocation time."""
    hub = _keystore()
    table = Table()
    for col in ("key_id", "prefix", "owner", "admin", "label", "created", "revoked"):
        table.add_column(col)
    from omtx_hub.api.views import iso

    for k in hub.keys.list(owner):
        table.add_row(k["key_id"], k["prefix"] + "…", k["owner"], "yes" if k["admin"] else "", k["label"],
                      (iso(k["created_at"]) or "")[:19], (iso(k["revoked_at"]) or "")[:19])  # fmt: skip
    console.print(table)
    hub.close()


@keys_app.command("revoke")
def keys_revoke(key: Annotated[str, typer.Argument(help="Key id (key_…) or prefix (omtx_…).")]) -> None:
    """Revoke a key: it stops working on the next request, and its browser sessions end."""
    from omtx_hub.errors import NotFound

    hub = _keystore()
    try:
        result = hub.keys.revoke(key)
    except NotFound as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from exc
    for r in result["revoked"]:
        console.print(f"revoked {r['key_id']} ({r['prefix']}…, owner {r['owner']})")
    hub.close()


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
    hub = _keystore()
    changes: dict[str, int | None] = {k: v for k, v in {
        "max_pending_jobs": max_pending_jobs, "max_batch_size": max_batch_size,
        "max_sequence_length": max_sequence_length, "max_heavy_atoms": max_heavy_atoms,
        "submissions_per_minute": submissions_per_minute, "max_body_bytes": max_body_bytes}.items()
        if v is not None}  # fmt: skip
    for name in clear or []:
        changes[name] = None
    try:
        if changes:
            hub.keys.set_owner_limits(owner, changes)
        effective = hub.limits_for(owner)
    except (ValueError, OmtxError) as exc:
        err.print(f"[red]error:[/red] {getattr(exc, 'message', exc)}")
        raise typer.Exit(1) from exc
    console.print_json(json.dumps({"owner": owner, "overrides": hub.keys.owner_limits(owner),
                                   "effective": effective.__dict__}))  # fmt: skip
    hub.close()


# ---------------------------------------------------------------------- model files

models_app = typer.Typer(help="Model weights and data files that predictors need (run where the worker runs).",
                         no_args_is_help=True)
app.add_typer(models_app, name="models")
ModelArgument = Annotated[str, typer.Argument(help="The model: boltz2.")]


def _model_name(model: str) -> None:
    if model != "boltz2":
        err.print(f"[red]error:[/red] unknown model {model!r}; known: boltz2 (Vina needs no model files)")
        raise typer.Exit(2)


def _print_model_status(items: list[Any], cache: Path) -> bool:
    table = Table(title=f"Boltz-2 files in {cache}")
    for col in ("file", "present", "detail"):
        table.add_column(col)
    for item in items:
        table.add_row(item.name, "yes" if item.present else "[red]no[/red]", item.detail)
    console.print(table)
    return all(item.present for item in items)


@models_app.command("check")
def models_check(model: ModelArgument = "boltz2") -> None:
    """Say which model files are present (exit 1 when something is missing)."""
    from omtx_hub.models import boltz2_status, missing_boltz2_message
    from omtx_hub.settings import Settings

    _model_name(model)
    cache = Settings().resolved_boltz_cache()
    if not _print_model_status(boltz2_status(cache), cache):
        err.print(missing_boltz2_message(cache))
        raise typer.Exit(1)


@models_app.command("fetch")
def models_fetch(model: ModelArgument = "boltz2") -> None:
    """Download the official files into the cache (OMTX_BOLTZ_CACHE); files already there are kept."""
    from omtx_hub.models import fetch_boltz2
    from omtx_hub.settings import Settings

    _model_name(model)
    settings = Settings()
    try:
        items = fetch_boltz2(settings, progress=lambda line: console.print(line))
    except OSError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    if not _print_model_status(items, settings.resolved_boltz_cache()):
        raise typer.Exit(1)


# ---------------------------------------------------------------------- analytics


@app.command("export")
def export_command(
    batch_id: str,
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv, json, sdf, zip or parquet.")] = "csv",
    sort: Annotated[str | None, typer.Option(help="Rank by this field (default: the predictor's primary score).")] = None,
    order: Annotated[str | None, typer.Option(help="asc or desc (default: the score's own direction).")] = None,
    status: Annotated[str | None, typer.Option(help="Only rows with this status.")] = None,
    top: Annotated[int | None, typer.Option(help="Only the best N rows.")] = None,
    url: UrlOption = "http://127.0.0.1:8000",
) -> None:
    """Export a batch, ranked: one row per ligand (CSV/JSON/Parquet), best poses (SDF), structures (ZIP)."""
    with _client(url) as hub:
        try:
            path = hub.export(batch_id, out, fmt, sort=sort, order=order, status=status, top=top)
        except HubError as exc:
            _fail(exc)
    console.print(f"wrote {path} ({path.stat().st_size} bytes)")


@app.command("stats")
def stats_command(batch_id: str, top: Annotated[int, typer.Option(help="Best N ligands.")] = 10,
                  url: UrlOption = "http://127.0.0.1:8000") -> None:  # fmt: skip
    """Batch statistics as JSON: counts, every score's summary and histogram, the top N, cost."""
    with _client(url) as hub:
        try:
            console.print_json(json.dumps(hub.stats(batch_id, top)))
        except HubError as exc:
            _fail(exc)


@app.command("rescore")
def rescore_command(
    batch_id: str,
    top_k: Annotated[int, typer.Option("--top-k", help="How many of the best completed ligands to send on.")],
    predictor: Annotated[str, typer.Option("--predictor", "-p", help="Predictor of the new batch.")],
    param: ParamOption = None,
    target: TargetOption = None,
    url: UrlOption = "http://127.0.0.1:8000",
) -> None:
    """Funnel: send the top K ligands of a batch to another predictor as a new, linked batch."""
    with _client(url) as hub:
        try:
            batch = hub.rescore(batch_id, top_k, predictor, params=_params(param), target_id=target)
        except HubError as exc:
            _fail(exc)
    console.print(f"batch {batch['batch_id']}: the top {batch['total']} of {batch_id} queued for {predictor}")


# ---------------------------------------------------------------------- webhooks

webhooks_app = typer.Typer(help="Webhooks: signed POSTs on job.completed, job.failed, batch.completed.",
                           no_args_is_help=True)
app.add_typer(webhooks_app, name="webhooks")


@webhooks_app.command("create")
def webhooks_create(
    webhook_url: Annotated[str, typer.Argument(metavar="URL", help="Where events are POSTed.")],
    event: Annotated[list[str] | None, typer.Option("--event", help="job.completed, job.failed, batch.completed "
                                                    "(repeatable; default: all).")] = None,
    secret: Annotated[str | None, typer.Option(help="HMAC secret (16+ characters); default: a random one.")] = None,
    url: UrlOption = "http://127.0.0.1:8000",
) -> None:
    """Register a webhook; prints its id and secret (the secret is shown only now)."""
    with _client(url) as hub:
        try:
            hook = hub.create_webhook(webhook_url, event, secret)
        except HubError as exc:
            _fail(exc)
    console.print(f"{hook['webhook_id']}  {hook['url']}  events {', '.join(hook['events'])}")
    console.print(f"secret: {hook['secret']}")


@webhooks_app.command("list")
def webhooks_list(url: UrlOption = "http://127.0.0.1:8000") -> None:
    """This owner's webhooks."""
    with _client(url) as hub:
        try:
            items = hub.webhooks()
        except HubError as exc:
            _fail(exc)
    table = Table()
    for col in ("webhook_id", "url", "events", "created"):
        table.add_column(col)
    for w in items:
        table.add_row(w["webhook_id"], w["url"], ", ".join(w["events"]), w["created_at"][:19])
    console.print(table)


@webhooks_app.command("delete")
def webhooks_delete(webhook_id: str, url: UrlOption = "http://127.0.0.1:8000") -> None:
    """Delete a webhook; its pending deliveries are dropped."""
    with _client(url) as hub:
        try:
            hub.delete_webhook(webhook_id)
        except HubError as exc:
            _fail(exc)
    console.print(f"deleted {webhook_id}")


@webhooks_app.command("deliveries")
def webhooks_deliveries(webhook_id: str, limit: Annotated[int, typer.Option(help="Newest N.")] = 50,
                        url: UrlOption = "http://127.0.0.1:8000") -> None:  # fmt: skip
    """The delivery log of a webhook: event, job, status, attempts, last answer."""
    with _client(url) as hub:
        try:
            items = hub.webhook_deliveries(webhook_id, limit)
        except HubError as exc:
            _fail(exc)
    table = Table()
    for col in ("delivery_id", "event", "job_id", "status", "attempts", "answer", "created"):
        table.add_column(col)
    for d in items:
        table.add_row(d["delivery_id"], d["event"], d["job_id"], d["status"], str(d["attempts"]),
                      d["last_error"] or str(d["response_status"] or "-"), d["created_at"][:19])  # fmt: skip
    console.print(table)
