"""Test helpers shared by the suites (imported from tests/support, which conftest puts on sys.path)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import random
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from pathlib import Path
from typing import Any

import httpx

from omtx_hub.domain import Ligand
from omtx_hub.queue import BatchSubmission


class ApiClient:
    """A synchronous face over httpx.AsyncClient + ASGITransport: the real app, in-process."""

    def __init__(self, app: Any, api_key: str | None = None) -> None:
        self._loop = asyncio.new_event_loop()
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub", headers=headers)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self._loop.run_until_complete(self._client.request(method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)

    def close(self) -> None:
        self._loop.run_until_complete(self._client.aclose())
        self._loop.close()


def dying_pool_process(*_args: Any) -> None:
    """A pool process's initializer that dies at once (as a process killed when it starts would)."""
    os._exit(1)


def squares_unless_in_a_pool(items: list[int]) -> list[int]:
    """Squares, in the process that asked; a pool process running it dies (as one the OOM killer took)."""
    import multiprocessing

    if multiprocessing.parent_process() is not None:
        os._exit(1)
    return [i * i for i in items]


def run_all(worker: Any) -> None:
    """Drive a (not running) worker by hand: every runnable job, then the maintenance pass (aggregation)."""
    while worker.run_once():
        pass
    worker._maintenance()


@contextlib.contextmanager
def loopback_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[ThreadingHTTPServer]:
    """An HTTP server on 127.0.0.1 (a free port) in a thread; ``server.url`` is its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def fill_disk(path: Path) -> None:
    """Write ``path`` until its filesystem answers ENOSPC (unbuffered: the error comes from a write,
    not from closing the file)."""
    with open(path, "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise


# the hand-made receptor's author numbering: 101-110, a gap, 115, an insertion 115A, then 116-133
NUMBERS = [(101 + i, "") for i in range(10)] + [(115, ""), (115, "A")] + [(116 + i, "") for i in range(18)]


def gapped_dimer() -> bytes:
    """Two copies (A, and B 30 Å away) of 30 residues of 1IEP chain A, renumbered with a gap and an
    insertion code (NUMBERS)."""
    import gemmi

    source = gemmi.read_structure(str(Path(str(files("omtx_hub.demo"))) / "1iep" / "1iep_receptorH.pdb"))
    source.remove_hydrogens()
    residues = [source[0]["A"][i] for i in range(1, 31)]
    made = gemmi.Structure()
    made.add_model(gemmi.Model("1"))
    for name, shift in (("A", 0.0), ("B", 30.0)):
        chain = gemmi.Chain(name)
        for residue, (number, icode) in zip(residues, NUMBERS, strict=True):
            copy = gemmi.Residue()
            copy.name, copy.seqid, copy.het_flag = residue.name, gemmi.SeqId(number, icode or " "), "A"
            for atom in residue:
                moved = gemmi.Atom()
                moved.name, moved.element = atom.name, atom.element
                moved.pos = gemmi.Position(atom.pos.x + shift, atom.pos.y, atom.pos.z)
                copy.add_atom(moved)
            chain.add_residue(copy)
        made[0].add_chain(chain)
    made.setup_entities()
    return made.make_pdb_string().encode()


def _shadows(i: int) -> dict[str, Any]:
    """Results named as a ligand property: a number in every third (the row shows it in the property's
    cell), a list of numbers in one (not a cell: the row shows the property)."""
    return {"heavy_atoms": 100 + i} if i % 3 == 0 else {"qed": [0.5, 0.6]} if i == 4 else {}


def scored_screen(hub: Any, owner: str = "o") -> str:
    """A batch of 60 ligands of the test predictor: 40 completed with a score (ties among them), 4 completed
    without one, 6 failed, 10 still pending; every fifth ligand shares an InChIKey with an earlier one;
    some results are named as ligand properties (:func:`_shadows`). Its other scores (``job_scores``)
    are "other" (ties among them) and "rare" (one child has it)."""
    rng = random.Random(7)
    keys = [f"{'K' * 20}-{i % 23:06d}" if i % 5 else None for i in range(60)]
    sub = BatchSubmission(
        owner=owner,
        predictor="test",
        protein_sequence="MKTAYIAKQR",
        batch_name="ranked",
        ligands=[Ligand(f"lig{i}", "CCO") for i in range(60)],
        max_attempts=1,
        properties=[{"inchikey": key, "heavy_atoms": 3 + i % 7, "qed": i * 37 % 11 / 10} for i, key in enumerate(keys)],
    )
    batch_id = hub.manager.submit_batch(sub).record["job_id"]
    hub.manager.declare_score("test", "test_score", ("other", "rare"))  # as a worker that serves the plugin does
    claimed = sorted(hub.manager.claim("w", ["test"], limit=50), key=lambda j: j.batch_index or 0)
    scores = [round(rng.uniform(-12, -4), 1) for _ in range(40)] + [None] * 4
    scores[5] = scores[17] = scores[30] = -8.0  # ties
    hub.manager.complete_many(
        [
            (
                job,
                {"test_score": score, "other": i % 9 - 4, **({"rare": 1.0} if i == 3 else {}), **_shadows(i)},
                1.0,
                2.0,
            )
            for i, (job, score) in enumerate(zip(claimed, scores, strict=False))
        ],
        "w",
    )
    for job in claimed[44:]:
        hub.manager.fail(job, "w", code="boom", message="failed on purpose", transient=False)
    return batch_id
