"""A whole large batch's export made by several processes at once.

Exporting a million children is CPU work in Python: decoding each child's JSON, making its row,
writing it (≈35 µs a row: over 30 s in one process). Here this process only walks the keys of the
ranking (score and position, from the score index) and cuts them into chunks; a pool of spawned
processes, one per core, reads each chunk's children with the keyset query of the in-process walk
(:func:`omtx_hub.analytics.rows.stream_cells`), makes their rows and formats them; this process
hands the chunks on in rank order, with at most two per pool process in flight (bounded memory).
The first chunk (a small one) is made here while the pool starts, so the first rows come about as
early as without one.

It applies to a whole walk (every row, by the primary score, from the index) of a batch of at least
:data:`MIN_ROWS` children, on a machine with two cores or more, over a database another process
can open (not SQLite in memory). The bytes are the same as the in-process walk's: the tests compare
them. A pool that breaks (a process killed, or one that could not start) leaves the rest of the
chunks to this process; the export goes on.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from omtx_hub.analytics.rows import ROW_COLUMNS, Ranking, RowMaker, duplicate_names
from omtx_hub.db.engine import create_db_engine
from omtx_hub.parallel import when_parent_dies
from omtx_hub.queue import QueueManager

__all__ = ["MIN_ROWS", "fanned_out", "processes_for"]

MIN_ROWS = 100_000  # a smaller batch is made in this process: a pool's start costs ≈1 s of CPU per process
CHUNK = 10_000  # rows per task
FIRST = 2_000  # rows of the first chunk, made in this process
_IN_FLIGHT = 2  # tasks per pool process handed out ahead

logger = logging.getLogger("omtx_hub.analytics")

Format = Callable[[list[list[Any]]], bytes]  # rows (lists of cells) → the bytes of a chunk


@dataclass(frozen=True)
class _Chunk:
    """``count`` rows of the walk after ``after``: ranked ones after (score, index), their first rank
    ``first_rank``; or (``first_rank`` None) unranked ones after position ``after``."""

    after: tuple[float, int] | int | None
    count: int
    first_rank: int | None


@dataclass(frozen=True)
class _Export:
    """What every chunk of one export shares (sent once to each pool process)."""

    batch_id: str
    ranking: Ranking
    price_per_hour: float
    shared: dict[str, tuple[int, str]]  # InChIKey: the first child's (index, name), for duplicate_of
    fmt: Format


class _Maker:
    """Makes the bytes of a chunk: reads its children, makes their rows, formats them."""

    def __init__(self, manager: QueueManager, export: _Export) -> None:
        self.manager, self.batch_id, self.ranking = manager, export.batch_id, export.ranking
        self.shared, self.fmt = export.shared, export.fmt
        self.rows = RowMaker(export.ranking, export.price_per_hour)

    def __call__(self, chunk: _Chunk) -> bytes:
        if chunk.first_rank is None:
            after_index = chunk.after if isinstance(chunk.after, int) else -1
            page = self.manager.unscored_children(
                self.batch_id,
                status=self.ranking.status,
                limit=chunk.count,
                after_index=after_index,
                columns=ROW_COLUMNS,
            )
            ranks: list[int | None] = [None] * len(page)
        else:
            after = chunk.after if isinstance(chunk.after, tuple) else None
            page = self.manager.ranked_children(
                self.batch_id, direction=self.ranking.direction, limit=chunk.count, after=after, columns=ROW_COLUMNS
            )
            ranks = list(range(chunk.first_rank + 1, chunk.first_rank + 1 + len(page)))
        names = duplicate_names(self.shared, page)
        return self.fmt([self.rows(c, r, d) for c, r, d in zip(page, ranks, names, strict=True)])


def _chunks(manager: QueueManager, batch_id: str, ranking: Ranking) -> Iterator[_Chunk]:
    """The walk cut into chunks (the first one small: it is made in this process, and the first
    rows wait for it): the scored rows' keys read a chunk at a time (score and position only, from
    the score index), then the unscored rows' positions."""
    sizes = itertools.chain([min(FIRST, CHUNK)], itertools.repeat(CHUNK))
    after: tuple[float, int] | None = None
    rank = 0
    while True:
        size = next(sizes)
        keys = manager.ranked_children(
            batch_id, direction=ranking.direction, limit=size, after=after, columns=("score", "batch_index")
        )
        if keys:
            yield _Chunk(after, len(keys), rank)
            rank += len(keys)
            after = (keys[-1]["score"], keys[-1]["batch_index"])
        if len(keys) < size:
            break
    after_index = -1
    while True:
        size = next(sizes)
        keys = manager.unscored_children(
            batch_id, status=ranking.status, limit=size, after_index=after_index, columns=("batch_index",)
        )
        if keys:
            yield _Chunk(after_index, len(keys), None)
            after_index = keys[-1]["batch_index"]
        if len(keys) < size:
            break


def processes_for(manager: QueueManager, ranking: Ranking) -> int:
    """How many pool processes :func:`fanned_out` would make this walk's chunks with; 0 where it
    does not apply (see the module's docstring) and the caller makes the rows in this process."""
    if not (ranking.walk and ranking.limit is None and ranking.start is None):
        return 0
    workers = min(os.cpu_count() or 1, 8)
    url = manager.core.engine.url
    in_memory = url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")
    if workers < 2 or in_memory or multiprocessing.current_process().daemon:
        return 0
    return workers if ranking.children >= MIN_ROWS else 0


def fanned_out(
    manager: QueueManager, batch_id: str, ranking: Ranking, price_per_hour: float, fmt: Format, workers: int
) -> Iterator[bytes]:
    """The walk's rows formatted by ``fmt`` a chunk at a time, in rank order, by ``workers`` pool
    processes (:func:`processes_for`). ``fmt`` is a module-level function, or a ``functools.partial``
    of one, that the pool processes import."""
    export = _Export(batch_id, ranking, price_per_hour, manager.first_by_inchikey(batch_id, None), fmt)
    here = _Maker(manager, export)
    chunks = _chunks(manager, batch_id, ranking)
    first = next(chunks, None)
    if first is None:
        return
    url = manager.core.engine.url.render_as_string(hide_password=False)
    pool = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start,
        initargs=(os.getpid(), url, export),
    )
    flight: deque[tuple[_Chunk, Future[bytes]]] = deque()
    unsent: list[_Chunk] = []  # one taken from ``chunks`` that a broken pool refused

    def top_up(ahead: int) -> None:
        while len(flight) < ahead and (chunk := next(chunks, None)) is not None:
            try:
                flight.append((chunk, pool.submit(_make, chunk)))
            except BrokenProcessPool:
                unsent.append(chunk)
                raise

    try:
        try:
            top_up(workers)  # a process starts as its first task is handed out: they start while
            yield here(first)  # the first chunk is made here
            while True:
                top_up(workers * _IN_FLIGHT)
                if not flight:
                    return
                yield flight[0][1].result()
                flight.popleft()
        except BrokenProcessPool as exc:  # a pool process died (killed, or could not start)
            logger.warning("export of %s: the pool broke (%s); the rest is made in this process", batch_id, exc)
        for chunk in itertools.chain([c for c, _ in flight], unsent, chunks):
            yield here(chunk)
    finally:  # also when the client went away: what is queued is dropped
        pool.shutdown(wait=True, cancel_futures=True)


_maker: _Maker | None = None  # a pool process's own


def _start(parent: int, url: str, export: _Export) -> None:
    """A pool process's initializer: its own engine (one connection), and exit with the process that
    started the pool."""
    global _maker
    when_parent_dies(parent, lambda: os._exit(1))
    _maker = _Maker(QueueManager(create_db_engine(url, pool_size=1)), export)


def _make(chunk: _Chunk) -> bytes:
    assert _maker is not None, "a pool process starts with _start"
    return _maker(chunk)
