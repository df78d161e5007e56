"""Server-side commands: the API, workers, the demo, database maintenance, model files. They run
where the database is, and import the server parts inside each command."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from omtx_hub.cli import common
from omtx_hub.cli.app import app, db_app, models_app
from omtx_hub.cli.common import PredictorsOption, console, err, fail, local_hub, setup_logging
from omtx_hub.cli.jobs import watch
from omtx_hub.client import HubClient, HubError

if TYPE_CHECKING:
    from omtx_hub.hub import Hub

__all__ = ["db_migrate", "db_prune", "demo", "models_check", "models_fetch", "serve", "worker_command"]

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _ensure_local_key(hub: Hub, host: str) -> str | None:
    """On first start on a loopback address, create the local admin key; elsewhere require keys."""
    if hub.keys.any_keys():
        path = hub.settings.home / "local_api_key"
        return path.read_text().strip() if path.exists() else None
    if host not in LOOPBACK:
        err.print(
            f"[red]error:[/red] no API keys exist, and {host} is not a loopback address: create one first "
            "with `omtx-hub keys create --owner NAME --admin` (there is no anonymous mode)"
        )
        raise typer.Exit(2)
    key, _ = hub.keys.create(hub.settings.owner, admin=True, label="local key created on first start")
    path = hub.settings.home / "local_api_key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    console.print(f"Created the local admin API key (saved in {path}, shown once here):\n  {key}")
    return key


def _load_predictors(names: list[str] | None, *, strict: bool) -> dict[str, Any]:
    from omtx_hub.errors import PredictorUnavailable
    from omtx_hub.registry import available_predictors, load_predictor

    settings = common.settings()
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


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default OMTX_HOST, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default OMTX_PORT, 8000).")] = None,
    worker: Annotated[bool, typer.Option("--worker/--no-worker", help="Start a worker child process.")] = True,
    predictor: PredictorsOption = None,
) -> None:
    """Start the API (and, by default, a worker child process) on the configured database and store."""
    import gc

    import uvicorn

    from omtx_hub.app import create_app
    from omtx_hub.hub import open_hub
    from omtx_hub.worker_process import WorkerProcess

    setup_logging()
    settings = common.settings()
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
        app = create_app(hub=hub)
        # what is loaded by now (the app, RDKit, pyarrow, SQLAlchemy) lives as long as the process:
        # frozen, the collector stops walking it again and again while a large export or ranking
        # churns through rows (a million-row export took a fifth longer without)
        gc.collect()
        gc.freeze()
        uvicorn.run(app, host=bind_host, port=bind_port, log_level="info")
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
    exit_when_idle: Annotated[
        bool, typer.Option(help="Exit (code 0) once nothing is runnable for this worker.")
    ] = False,
    grace_seconds: Annotated[
        float, typer.Option(help="On SIGTERM, time to finish running jobs before releasing them.")
    ] = 30.0,
) -> None:
    """Run a worker process against OMTX_DATABASE_URL (SQLite file or postgresql://…)."""
    from omtx_hub.worker import Worker

    setup_logging()
    predictors = _load_predictors(predictor, strict=False)  # named predictors must load; others are skipped
    if not predictors:
        err.print("[red]error:[/red] no predictor is installed; see the README (predictors)")
        raise typer.Exit(2)
    with local_hub() as hub:
        w = Worker(hub.settings, hub.manager, hub.store, predictors, webhooks=hub.webhooks)

        def _on_signal(signum: int, _frame: Any) -> None:
            # os.write, not print: the signal may land while this thread is inside a write to stderr,
            # and Python's buffered streams refuse a reentrant write
            os.write(
                2, f"signal {signum}: finishing running jobs (up to {grace_seconds:g} s), then stopping\n".encode()
            )
            w.stop(grace_seconds)

        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)
        w.run(exit_when_idle=exit_when_idle)


@db_app.command("migrate")
def db_migrate() -> None:
    """Create or upgrade the schema of OMTX_DATABASE_URL."""
    with local_hub():
        pass
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
    with local_hub() as hub:
        pruned = hub.manager.prune(time.time() - _duration(older_than), dry_run=dry_run)
        if not dry_run and not keep_files:
            for job_id, batch_id in pruned:
                hub.store.delete_dir(hub.store.batch_dir(batch_id) if batch_id else hub.store.job_dir(job_id))
    verb = "would delete" if dry_run else "deleted"
    console.print(
        f"{verb} {len(pruned)} finished jobs and batches (batches with all their children)"
        + ("" if keep_files or dry_run else ", files included")
    )


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
    from omtx_hub.worker_process import WorkerProcess

    setup_logging("WARNING")
    settings = common.settings()
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
                "Abl kinase, PDB 1IEP (imatinib site)",
                data / "1iep" / "1iep_receptorH.pdb",
                {"mode": "box", "center": [15.190, 53.903, 16.917], "size": [20.0, 20.0, 20.0]},
                reference_ligand=data / "1iep" / "1iep_ligand.sdf",
            )
            ligands = read_ligands(data / "ligands.csv")
            batch = client.submit_batch(
                "demo: 10 drugs vs Abl kinase (1IEP)",
                None,
                ligands,
                target_id=target["target_id"],
                predictor="vina",
                params={"exhaustiveness": exhaustiveness},
            )
            console.print(
                f"target {target['target_id']}; batch {batch['batch_id']}: docking {batch['total']} "
                f"ligands with Vina (exhaustiveness {exhaustiveness}) on this machine's CPUs"
            )
            watch(client, batch["batch_id"], batch["total"], top=10)
            folder = f"{settings.resolved_storage_url()}/batches/{batch['batch_id']}"
            console.print(
                f"\nFiles: {folder}/batch_results.csv, batch_results.json and jobs/<job_id>/ "
                "(poses.sdf, structure.cif = receptor + top pose, poses.pdbqt, results.json)"
            )
            console.print(
                f"Open in a browser: {server.url}/jobs/{batch['batch_id']}  (ranked table, poses in 3D; "
                f"sign in with the local key in {settings.home / 'local_api_key'}; API docs: {server.url}/docs)"
            )
            console.print(
                f"Download everything: omtx-hub results {batch['batch_id']} --out demo-results --url {server.url}"
            )
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
        fail(exc)
    finally:
        _ignore_stop_signals()
        worker.stop()
        server.stop()
        hub.close()


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

    _model_name(model)
    cache = common.settings().resolved_boltz_cache()
    if not _print_model_status(boltz2_status(cache), cache):
        err.print(missing_boltz2_message(cache))
        raise typer.Exit(1)


@models_app.command("fetch")
def models_fetch(model: ModelArgument = "boltz2") -> None:
    """Download the official files into the cache (OMTX_BOLTZ_CACHE); files already there are kept."""
    from omtx_hub.models import fetch_boltz2

    _model_name(model)
    settings = common.settings()
    try:
        items = fetch_boltz2(settings, progress=lambda line: console.print(line))
    except OSError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    if not _print_model_status(items, settings.resolved_boltz_cache()):
        raise typer.Exit(1)
