"""The root ``omtx-hub`` command and its groups; the command modules register onto these."""

from __future__ import annotations

import typer

from omtx_hub.cli.common import forget_settings

__all__ = ["app", "db_app", "keys_app", "models_app", "target_app", "webhooks_app"]

app = typer.Typer(help="OMTX-Hub: protein–ligand prediction jobs and batch screens.", no_args_is_help=True)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
target_app = typer.Typer(
    help="Targets: a receptor with its binding site, or a protein sequence; an optional MSA.", no_args_is_help=True
)
keys_app = typer.Typer(help="API keys and per-owner limits (run where the database is).", no_args_is_help=True)
models_app = typer.Typer(
    help="Model weights and data files that predictors need (run where the worker runs).", no_args_is_help=True
)
webhooks_app = typer.Typer(
    help="Webhooks: signed POSTs on job.completed, job.failed, batch.completed.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
app.add_typer(target_app, name="target")
app.add_typer(keys_app, name="keys")
app.add_typer(models_app, name="models")
app.add_typer(webhooks_app, name="webhooks")


@app.callback()
def _each_command() -> None:
    # runs before every command: settings are read afresh for it (and then once)
    forget_settings()
