"""CPU-bound work on many ligands (RDKit parsing, properties), spread over this machine's cores.

RDKit holds the GIL, so threads do not help; a spawned process pool does, once there is enough
work to pay for starting it (≈0.1–1 s: a fresh interpreter importing RDKit). Spawn, not fork: the
calling process may hold a CUDA context, a database connection or threads that a fork would copy.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

__all__ = ["map_chunks"]

T = TypeVar("T")
R = TypeVar("R")
logger = logging.getLogger("omtx_hub.parallel")


def map_chunks(fn: Callable[[list[T]], list[R]], items: Sequence[T], *, per_process: int, chunk: int) -> list[R]:
    """``fn`` over ``items`` in chunks of ``chunk``, results in order (``fn`` returns one per item).

    One process per ``per_process`` items, up to the number of cores; in this process when that is
    fewer than two, inside a daemonic process (it may not start children), or when a pool cannot
    run. ``fn`` must be a module-level function (or a ``functools.partial`` of one).
    """
    processes = min(os.cpu_count() or 1, len(items) // per_process)
    if processes < 2 or multiprocessing.current_process().daemon:
        return fn(list(items))
    chunks = [list(items[i : i + chunk]) for i in range(0, len(items), chunk)]
    try:
        with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
            return [result for part in pool.map(fn, chunks) for result in part]
    except (BrokenProcessPool, OSError, RuntimeError) as exc:
        # e.g. code embedded in a script without an ``if __name__ == "__main__"`` guard, which spawn needs
        logger.warning("working in one process (a process pool could not run: %s)", exc)
        return fn(list(items))
