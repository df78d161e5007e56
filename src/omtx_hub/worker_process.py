"""The worker as a child process of ``serve`` and ``demo``: started with the hub's settings, stopped
with SIGTERM (finish within the grace period, release the rest), and stopping by itself when its
parent dies outright."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from omtx_hub.predictors.base import Predictor
from omtx_hub.settings import Settings
from omtx_hub.worker import Worker

__all__ = ["WorkerProcess"]

logger = logging.getLogger("omtx_hub.worker")


class WorkerProcess:
    """A worker in a child process, started by ``serve`` and ``demo``.

    Not a thread: predictor code such as Vina's holds the GIL for seconds while it docks, which
    would freeze the API in the same process, and Boltz changes process-wide settings.
    """

    def __init__(
        self,
        settings: Settings,
        predictor_names: Sequence[str] | None = None,
        grace_seconds: float = 10.0,
        log_level: str = "INFO",
    ):
        import multiprocessing

        self.grace_seconds = grace_seconds
        self._process = multiprocessing.get_context("spawn").Process(
            target=_worker_main,
            args=(
                settings.model_dump_json(),
                list(predictor_names) if predictor_names else None,
                grace_seconds,
                log_level,
                os.getpid(),
            ),
            name="omtx-worker",
            daemon=False,
        )

    def start(self) -> WorkerProcess:
        self._process.start()
        return self

    @property
    def exitcode(self) -> int | None:
        return self._process.exitcode

    def stop(self) -> None:
        if self._process.is_alive():
            self._process.terminate()  # SIGTERM: finish within the grace period, release the rest
            self._process.join(self.grace_seconds + 10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)


def _worker_main(
    settings_json: str, predictor_names: list[str] | None, grace_seconds: float, log_level: str, parent: int
) -> None:
    import signal
    import sys

    from omtx_hub.errors import PredictorUnavailable
    from omtx_hub.hub import open_hub
    from omtx_hub.logs import setup_logging
    from omtx_hub.parallel import when_parent_dies
    from omtx_hub.registry import available_predictors, load_predictor

    settings = Settings.model_validate_json(settings_json)
    setup_logging(settings.log_format, log_level)
    predictors: dict[str, Predictor] = {}
    for name in predictor_names or sorted(available_predictors(settings)):
        try:
            predictors[name] = load_predictor(name, settings)
        except PredictorUnavailable as exc:
            if predictor_names:
                print(f"error: {exc.message}", file=sys.stderr)
                sys.exit(2)
            logger.warning("skipping predictor %s: %s", name, exc.message)
    if not predictors:
        print("no predictor could be loaded: jobs wait until an `omtx-hub worker` runs", file=sys.stderr)
        sys.exit(2)
    hub = open_hub(settings, run_migrations=False)
    worker = Worker(settings, hub.manager, hub.store, predictors, webhooks=hub.webhooks)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop(grace_seconds))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    # ... or dies: a parent killed outright (kill -9, the OOM killer) must not leave this worker claiming
    when_parent_dies(parent, lambda: worker.stop(grace_seconds))
    worker.run()
    hub.close()
