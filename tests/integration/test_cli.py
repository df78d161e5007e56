"""The ``omtx-hub`` commands in-process (Typer's CliRunner) against a real hub: server-side commands
on a real SQLite file, client commands over HTTP to a real server on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from conftest import PROTEIN, TEST_PLUGIN, free_port, make_settings
from hub_testing import scored_screen
from omtx_hub.cli import app
from omtx_hub.db.schema import jobs
from omtx_hub.hub import Hub, open_hub
from omtx_hub.server import BackgroundServer

runner = CliRunner()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Hub, dict[str, str]]]:
    """A hub served on loopback, and the environment a client command (or a server one) runs with."""
    database = f"sqlite:///{tmp_path / 'hub.db'}"
    hub = open_hub(make_settings(tmp_path, database))
    key, _ = hub.keys.create("local", admin=True)
    server = BackgroundServer(hub, "127.0.0.1", free_port()).start()
    env = {
        "OMTX_URL": server.url,
        "OMTX_API_KEY": key,
        "OMTX_DATABASE_URL": database,
        "OMTX_HOME": str(tmp_path / "home"),
        "OMTX_STORAGE_URL": str(tmp_path / "results"),
        "OMTX_PREDICTOR_PLUGINS": json.dumps(TEST_PLUGIN),
        "OMTX_DEFAULT_PREDICTOR": "test",
        "COLUMNS": "250",
    }  # (rich tables wide enough to hold whole ids)
    yield hub, env
    server.stop()
    hub.close()


def test_client_commands_submit_watch_cancel_and_list(served: tuple[Hub, dict[str, str]]) -> None:
    hub, env = served
    submitted = runner.invoke(app, ["submit", "--smiles", "CCO", "--name", "ethanol", "-s", PROTEIN], env=env)
    assert submitted.exit_code == 0, submitted.output
    job_id, status = submitted.output.split()
    assert job_id.startswith("job_") and status == "pending"
    shown = runner.invoke(app, ["status", job_id], env=env)
    assert shown.exit_code == 0 and json.loads(shown.output)["job_id"] == job_id
    cancelled = runner.invoke(app, ["cancel", job_id], env=env)
    assert cancelled.exit_code == 0 and cancelled.output.strip() == f"{job_id}: cancelled"
    retried = runner.invoke(app, ["retry", job_id], env=env)
    assert retried.exit_code == 0 and retried.output.strip() == f"{job_id}: pending"
    listed = runner.invoke(app, ["jobs", "--limit", "5"], env=env)
    assert listed.exit_code == 0 and job_id in listed.output
    assert hub.manager.get(job_id)["status"] == "pending"


def test_a_refusal_is_exit_1_with_the_hubs_code(served: tuple[Hub, dict[str, str]]) -> None:
    _, env = served
    missing = runner.invoke(app, ["status", "job_nope"], env=env)
    assert missing.exit_code == 1 and "error 404 job_not_found" in missing.output
    bad = runner.invoke(app, ["submit", "--smiles", "not a smiles(", "-s", PROTEIN], env=env)
    assert bad.exit_code == 1 and "error 422" in bad.output
    empty = runner.invoke(app, ["target", "list"], env=env)
    assert empty.exit_code == 0 and "target_id" in empty.output
    hooks = runner.invoke(app, ["webhooks", "deliveries", "wh_nope"], env=env)
    assert hooks.exit_code == 1 and "error 404" in hooks.output


def test_target_create_with_chains_copies_msas_and_a_cofactor(
    served: tuple[Hub, dict[str, str]], tmp_path: Path
) -> None:
    _, env = served
    other = "GSH" + PROTEIN[:40]
    a3m = tmp_path / "b.a3m"
    a3m.write_text(f">query\n{other}\n>hit\n{other[:-1]}A\n")
    made = runner.invoke(
        app,
        [
            *("target", "create", "--name", "complex", "--sequence", PROTEIN, "--sequence", other),
            *("--copies", "2", "--msa", str(a3m), "--cofactor", "[Zn+2]"),
        ],
        env=env,
    )
    assert made.exit_code == 0, made.output
    target_id = made.output.split()[0]
    assert "chains: A (" in made.output and "cofactors: [Zn+2]" in made.output
    shown = json.loads(runner.invoke(app, ["target", "show", target_id], env=env).output)
    assert [(c["chain"], c.get("copy_of")) for c in shown["chains"]] == [
        ("A", None),
        ("C", "A"),
        ("B", None),
        ("D", "B"),
    ]
    assert "msa_B.a3m" in shown["files"]
    listed = runner.invoke(app, ["target", "list"], env=env)
    assert target_id in listed.output and " B " in listed.output  # the MSA column names its chain
    bad = runner.invoke(app, ["target", "create", "--name", "x", "--sequence", PROTEIN, "--cofactor", "c1cc"], env=env)
    assert bad.exit_code == 1 and "invalid_cofactors" in bad.output


def test_server_side_commands_keys_limits_and_prune(served: tuple[Hub, dict[str, str]]) -> None:
    _, env = served
    created = runner.invoke(app, ["keys", "create", "--owner", "alice", "--label", "cli test"], env=env)
    assert created.exit_code == 0 and created.output.startswith("omtx_")
    listed = runner.invoke(app, ["keys", "list", "--owner", "alice"], env=env)
    assert listed.exit_code == 0 and "alice" in listed.output and "cli test" in listed.output
    limits = runner.invoke(app, ["keys", "limits", "alice", "--max-batch-size", "7"], env=env)
    assert limits.exit_code == 0 and json.loads(limits.output)["overrides"] == {"max_batch_size": 7}
    refused = runner.invoke(app, ["keys", "limits", "alice", "--clear", "no_such_limit"], env=env)
    assert refused.exit_code == 1 and "error:" in refused.output
    unknown = runner.invoke(app, ["keys", "revoke", "key_nope"], env=env)
    assert unknown.exit_code == 1 and "error:" in unknown.output
    pruned = runner.invoke(app, ["db", "prune", "--older-than", "1d", "--dry-run"], env=env)
    assert pruned.exit_code == 0 and "would delete 0 finished jobs" in pruned.output
    assert runner.invoke(app, ["db", "prune", "--older-than", "soon"], env=env).exit_code == 2  # a usage error
    assert runner.invoke(app, ["db", "migrate"], env=env).output.strip() == "schema is up to date"


def test_stats_primary_only_summarises_the_score_from_its_index(served: tuple[Hub, dict[str, str]]) -> None:
    hub, env = served
    batch_id = scored_screen(hub, owner="local")
    with hub.manager.core.write() as conn:  # the ranking the worker's aggregation records for a plugin
        conn.execute(
            sa.update(jobs)
            .where(jobs.c.job_id == batch_id)
            .values(results={"rank_by": "test_score", "direction": "asc"})
        )
    every = runner.invoke(app, ["stats", batch_id, "--top", "3"], env=env)
    primary = runner.invoke(app, ["stats", batch_id, "--top", "3", "--primary-only"], env=env)
    assert every.exit_code == 0 and primary.exit_code == 0, every.output + primary.output
    full, fast = json.loads(every.output), json.loads(primary.output)
    assert list(fast["fields"]) == ["test_score"] and len(full["fields"]) > 1
    assert fast["fields"]["test_score"]["count"] == full["fields"]["test_score"]["count"] == 40
    assert fast["top"] == full["top"] and len(fast["top"]) == 3
