"""Docs are tested: every setting, endpoint and command is documented."""

from __future__ import annotations

import re
from pathlib import Path

from typer.main import get_command

from omtx_hub.app import create_app
from omtx_hub.cli import app as cli_app
from omtx_hub.settings import Settings

DOCS = Path(__file__).parents[2] / "docs"


def test_every_setting_is_documented() -> None:
    text = (DOCS / "settings.md").read_text()
    missing = [n for n in Settings.model_fields if f"`OMTX_{n.upper()}`" not in text]
    assert missing == []


def test_every_endpoint_is_documented(tmp_path: Path) -> None:
    text = (DOCS / "api.md").read_text()
    app = create_app(Settings(home=tmp_path))
    routes = {(method.upper(), path) for path, item in app.openapi()["paths"].items() for method in item}
    assert routes
    missing = [f"{m} {p}" for m, p in routes if f"`{m} {p}`" not in text]
    assert missing == []
    app.state.hub.close()


def test_every_cli_command_is_documented() -> None:
    text = (DOCS / "cli.md").read_text()
    group = get_command(cli_app)
    names = []
    for name, cmd in group.commands.items():  # type: ignore[attr-defined]
        sub = getattr(cmd, "commands", None)
        names += [f"{name} {s}" for s in sub] if sub else [name]
    missing = [n for n in names if not re.search(rf"`omtx-hub {n}\b", text)]
    assert missing == []
