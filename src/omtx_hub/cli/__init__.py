"""The ``omtx-hub`` command: small commands over the library (server side) and the HTTP client.

=============  ====================================================================
``server``     serve, worker, demo, db migrate / prune, models check / fetch
``jobs``       submit, screen, status, cancel, retry, results, jobs, export, stats, rescore
``targets``    target create / list / show
``keys``       keys create / list / revoke / limits
``webhooks``   webhooks create / list / delete / deliveries
``common``     options, the client, settings, the local hub, errors → exit codes
=============  ====================================================================

Client commands import only :mod:`omtx_hub.client`; server commands import the server parts
inside the command, so a client-only install runs every client command.
"""

from omtx_hub.cli import jobs, keys, server, targets, webhooks  # noqa: F401  (they register their commands)
from omtx_hub.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    app()
