"""What every command shares: the consoles, the common options, the client with the caller's key,
the settings (read once per command), the local hub of server-side commands, and the one mapping
of errors to exit codes.

Exit codes: 0 done; 1 the hub refused or failed the request (``error STATUS CODE: message``), or
bad input; 2 the command cannot run here (a predictor or model files missing, no key).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console

from omtx_hub.client import HubClient, HubError

if TYPE_CHECKING:  # server-side types; a client-only install has none of their dependencies
    from omtx_hub.hub import Hub
    from omtx_hub.settings import Settings

__all__ = [
    "DEFAULT_URL",
    "ParamOption",
    "PoseChecksOption",
    "PredictorsOption",
    "RequireOption",
    "SequenceOption",
    "TargetOption",
    "UrlOption",
    "console",
    "err",
    "fail",
    "forget_settings",
    "hub_client",
    "local_hub",
    "local_key_path",
    "parse_params",
    "settings",
    "setup_logging",
]

console = Console()
err = Console(stderr=True)

DEFAULT_URL = "http://127.0.0.1:8000"
UrlOption = Annotated[str, typer.Option("--url", envvar="OMTX_URL", help="Base URL of the hub's API.")]
PredictorsOption = Annotated[
    list[str] | None,
    typer.Option("--predictor", "-p", help="Predictor to run (repeatable); default: every one that loads."),
]
ParamOption = Annotated[
    list[str] | None,
    typer.Option("--param", help="Predictor parameter KEY=VALUE (repeatable; VALUE as JSON if it parses)."),
]
TargetOption = Annotated[str | None, typer.Option("--target", "-t", help="Docking target id (omtx-hub target create).")]
RequireOption = Annotated[
    list[str] | None,
    typer.Option(
        "--require-interaction",
        help="Rank only ligands whose pose makes this contact: A:MET318 (any type) or A:MET318:HBAcceptor "
        "(repeatable).",
    ),
]
PoseChecksOption = Annotated[
    str | None, typer.Option("--pose-checks", help="require: rank only poses that pass the PoseBusters checks.")
]
SequenceOption = Annotated[str | None, typer.Option("--protein-sequence", "-s", help="Target protein sequence.")]


def local_key_path() -> Path:
    return Path(os.environ.get("OMTX_HOME", ".omtx")) / "local_api_key"


def fail(exc: HubError) -> NoReturn:
    """Print the hub's refusal (with the ligands it names) and exit 1."""
    err.print(f"[red]error {exc.status} {exc.code}:[/red] {exc.message}")
    if isinstance(exc.details, dict) and exc.details.get("ligands"):
        for item in exc.details["ligands"][:50]:
            err.print(f"  ligand #{item['index']} {item['name']!r}: {item['reason']}")
    raise typer.Exit(1)


@contextmanager
def hub_client(url: str) -> Iterator[HubClient]:
    """A client with the caller's key (OMTX_API_KEY, else the local key ``serve`` wrote in OMTX_HOME),
    closed on the way out; a :class:`HubError` inside becomes exit code 1."""
    key = os.environ.get("OMTX_API_KEY")
    if not key and local_key_path().exists():
        key = local_key_path().read_text().strip()
    with HubClient(url, api_key=key) as client:
        try:
            yield client
        except HubError as exc:
            fail(exc)


_settings: list[Settings] = []  # the current invocation's, once read


def settings() -> Settings:
    """The hub's settings (environment and ``.env``), read once per command invocation (the root
    callback forgets them before each one, so in-process runners see their own environment)."""
    try:
        import omtx_hub.hub  # noqa: F401  (what every server-side command needs)
        from omtx_hub.settings import Settings
    except ImportError as exc:
        err.print(
            f"[red]error:[/red] this command runs the hub itself and needs its server packages ({exc.name} "
            "is not installed): pip install 'omtx-hub\\[server]'"
        )
        raise typer.Exit(2) from exc
    if not _settings:
        _settings.append(Settings())
    return _settings[0]


def forget_settings() -> None:
    _settings.clear()


@contextmanager
def local_hub() -> Iterator[Hub]:
    """The hub of OMTX_DATABASE_URL, opened here (server-side commands) and closed even when the
    command fails; the hub's own errors (and a ValueError from bad input) become exit code 1."""
    config = settings()  # first: it says what to install when the server packages are missing
    from omtx_hub.errors import OmtxError
    from omtx_hub.hub import open_hub

    hub = open_hub(config)
    try:
        yield hub
    except (OmtxError, ValueError) as exc:
        err.print(f"[red]error:[/red] {getattr(exc, 'message', exc)}")
        raise typer.Exit(1) from exc
    finally:
        hub.close()


def setup_logging(level: str = "INFO") -> None:
    from omtx_hub.logs import setup_logging as configure

    configure(settings().log_format, level)


def parse_params(items: list[str] | None) -> dict[str, Any]:
    """``KEY=VALUE`` options as a dict; VALUE is read as JSON when it parses (``3``, ``true``, ``[1,2]``)."""
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
