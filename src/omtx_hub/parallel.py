"""CPU-bound work on many ligands (RDKit parsing, properties), spread over this machine's cores.

RDKit holds the GIL, so threads do not help; a spawned process pool does, once there is enough
work to pay for starting it (≈0.1–1 s: a fresh interpreter importing RDKit). Spawn, not fork: the
calling process may hold a CUDA context, a database connection or threads that a fork would copy.
A pool process exits by itself when the process that started it dies (even by kill -9), instead of
waiting on the pool's queue forever.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Generic, TypeVar

__all__ = ["Chunks", "map_chunks", "start_chunks", "when_parent_dies"]

T = TypeVar("T")
R = TypeVar("R")
logger = logging.getLogger("omtx_hub.parallel")


def map_chunks(fn: Callable[[list[T]], list[R]], items: Sequence[T], *, per_process: int, chunk: int) -> list[R]:
    """``fn`` over ``items`` in chunks of ``chunk``, results in order (``fn`` returns one per item).

    One process per ``per_process`` items, up to the number of cores; in this process when that is
    fewer than two, inside a daemonic process (it may not start children), or when a pool cannot
    run. ``fn`` must be a module-level function (or a ``functools.partial`` of one).
    """
    return start_chunks(fn, items, per_process=per_process, chunk=chunk).result()


def start_chunks(fn: Callable[[list[T]], list[R]], items: Sequence[T], *, per_process: int, chunk: int) -> Chunks[R]:
    """:func:`map_chunks`, started: the pool works while the caller goes on, and ``result()`` waits
    for it. When no pool is worth starting, the work is done here and now."""
    processes = min(os.cpu_count() or 1, len(items) // per_process)
    if processes < 2 or multiprocessing.current_process().daemon:
        return Chunks(fn, items, done=fn(list(items)))
    try:
        pool = ProcessPoolExecutor(
            processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_exit_with_parent,
            initargs=(os.getpid(),),
        )
        futures = [pool.submit(fn, list(items[i : i + chunk])) for i in range(0, len(items), chunk)]
    except (OSError, RuntimeError) as exc:
        logger.warning("working in one process (a process pool could not start: %s)", exc)
        return Chunks(fn, items, done=fn(list(items)))
    return Chunks(fn, items, pool=pool, futures=futures)


class Chunks(Generic[R]):
    """Work that :func:`start_chunks` started: ``result()`` once, or ``cancel()``."""

    def __init__(
        self,
        fn: Callable[[list[Any]], list[R]],
        items: Sequence[Any],
        *,
        done: list[R] | None = None,
        pool: ProcessPoolExecutor | None = None,
        futures: list[Future[list[R]]] | None = None,
    ) -> None:
        self._fn, self._items, self._done, self._pool, self._futures = fn, items, done, pool, futures or []

    @property
    def pooled(self) -> bool:
        """Whether a pool works on them (False: they were done in this process, at the start)."""
        return self._pool is not None

    def result(self) -> list[R]:
        """The results in the order of the items (waits for the pool, then shuts it down)."""
        if self._done is not None:
            return self._done
        try:
            self._done = [result for future in self._futures for result in future.result()]
        except (BrokenProcessPool, OSError, RuntimeError) as exc:
            # e.g. code embedded in a script without an ``if __name__ == "__main__"`` guard, which spawn needs
            logger.warning("working in one process (a process pool could not run: %s)", exc)
            self._done = self._fn(list(self._items))
        finally:
            self.cancel()
        return self._done

    def cancel(self) -> None:
        """Stop the pool (what it has not started is dropped); nothing happens when it is done."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


_PARENT_CHECK_SECONDS = 0.5


def when_parent_dies(parent: int, action: Callable[[], None]) -> None:
    """Run ``action`` (in a daemon thread of this process) once ``parent`` is no longer its parent.

    A parent killed outright (kill -9, the OOM killer) stops nothing it started; its children are
    re-parented, and the watch sees it within ``_PARENT_CHECK_SECONDS``.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(_PARENT_CHECK_SECONDS)
        action()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """A pool process's initializer: exit as soon as the process that started the pool is gone, instead
    of waiting on the pool's queue forever."""
    when_parent_dies(parent, lambda: os._exit(1))
