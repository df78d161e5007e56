"""Shutdown under signals: every process exits in time and leaves no child behind.

Real processes and real signals: idle `omtx-hub worker`s SIGTERMed at random moments, `serve` and its
worker child, the API's Ctrl-C after concurrent RDKit work, and a process pool whose parent is
killed outright.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from omtx_hub.hub import open_hub
from omtx_hub.settings import Settings
from omtx_hub.worker import Worker

from .test_processes import BIN, SUPPORT, env, free_port  # noqa: F401  (env is a fixture)

pytestmark = pytest.mark.e2e


def children_of(pid: int) -> set[int]:
    """Every live process whose parent is ``pid`` (from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_gone(pids: set[int], timeout: float) -> set[int]:
    end = time.monotonic() + timeout
    while time.monotonic() < end and any(alive(p) for p in pids):
        time.sleep(0.1)
    return {p for p in pids if alive(p)}


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``omtx-hub ARGS`` with its output in ``log``."""
    with open(log, "w") as out:
        return subprocess.Popen([str(BIN / "omtx-hub"), *args], env=env, stdout=out, stderr=subprocess.STDOUT)


def test_worker_stop_takes_no_lock(tmp_path: Path) -> None:
    """stop() runs inside signal handlers, on the thread whose wait the signal interrupted: it must not
    take a lock (that thread may hold it: a deadlock that left idle workers deaf to SIGTERM)."""
    hub = open_hub(
        Settings(
            home=tmp_path / "home",
            database_url=f"sqlite:///{tmp_path / 'hub.db'}",
            storage_url=str(tmp_path / "results"),
        )
    )
    from omtx_test_predictor import TestPredictor

    worker = Worker(hub.settings, hub.manager, hub.store, {"test": TestPredictor()})
    taken: list[str] = []

    def profile(_frame: object, event: str, arg: object) -> None:
        if event == "c_call" and getattr(arg, "__name__", "") in ("acquire", "__enter__"):
            taken.append(repr(arg))

    sys.setprofile(profile)
    try:
        worker.stop(grace_seconds=1)
    finally:
        sys.setprofile(None)
    hub.close()
    assert taken == []


@pytest.mark.parametrize("rounds", [3])
def test_idle_workers_exit_on_sigterm_at_random_moments(env: dict[str, str], tmp_path: Path, rounds: int) -> None:
    """Four idle workers at a time, each SIGTERMed at a random moment of its idle loop, three rounds."""
    rng = random.Random()
    env = {**env, "OMTX_POLL_SECONDS": "0.2"}
    subprocess.run([str(BIN / "omtx-hub"), "db", "migrate"], env=env, check=True, capture_output=True, timeout=120)
    for round_ in range(rounds):
        logs = [tmp_path / f"worker-{round_}-{i}.log" for i in range(4)]
        procs = [start(["worker", "--predictor", "test"], env, log) for log in logs]
        try:
            for proc, log in zip(procs, logs, strict=True):
                deadline = time.monotonic() + 90
                while "action=start" not in log.read_text():
                    assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                    time.sleep(0.05)
            for proc in rng.sample(procs, len(procs)):
                time.sleep(rng.uniform(0.0, 0.5))  # anywhere in the idle loop: probing, sleeping, querying
                proc.send_signal(signal.SIGTERM)
            for proc, log in zip(procs, logs, strict=True):
                try:
                    assert proc.wait(timeout=15) == 0, log.read_text()
                except subprocess.TimeoutExpired:
                    raise AssertionError(f"worker {proc.pid} ignored SIGTERM:\n{log.read_text()}") from None
        finally:
            for proc in procs:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def serving(env: dict[str, str], log: Path) -> Iterator[tuple[subprocess.Popen[bytes], set[int]]]:
    """`omtx-hub serve` with its worker child, once both are up: the process and its children.
    Afterwards whatever is still running of them is killed (a failing test leaves nothing behind)."""
    proc = start(["serve", "--port", str(free_port()), "--predictor", "test"], env, log)
    children: set[int] = set()
    try:
        deadline = time.monotonic() + 90
        while "action=start" not in log.read_text() or "Uvicorn running" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        children = children_of(proc.pid)
        assert children, "serve started no worker child"
        yield proc, children
    finally:
        proc.kill()
        proc.wait()
        for pid in children:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_serve_on_sigterm_stops_its_worker_child(env: dict[str, str], tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with serving(env, log) as (proc, children):
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()
        assert wait_gone(children, 10) == set(), f"children left behind:\n{log.read_text()}"
        assert "action=stop" in log.read_text()  # the worker child stopped itself, not killed


def test_serve_killed_outright_leaves_no_worker_behind(env: dict[str, str], tmp_path: Path) -> None:
    """kill -9 (or the OOM killer) runs no ``finally``: the worker child notices its parent is gone and stops."""
    log = tmp_path / "serve.log"
    with serving(env, log) as (proc, children):
        proc.kill()
        proc.wait()
        assert wait_gone(children, 20) == set(), f"children left behind:\n{log.read_text()}"
        assert "action=stop" in log.read_text()  # the worker stopped itself, unregistering


CTRL_C_AFTER_RDKIT = textwrap.dedent("""
    import os, signal, threading, time
    from omtx_hub.ligands import ligand_properties

    # Python's own handler, as uvicorn installs its own: a process started in the background by a
    # non-interactive shell inherits SIGINT ignored, and Python then leaves it ignored
    signal.signal(signal.SIGINT, signal.default_int_handler)

    def work():
        for _ in range(100):
            ligand_properties("CC(=O)Oc1ccccc1C(=O)O")  # QED and alerts: RDKit substructure matching

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads: t.start()
    for t in threads: t.join()
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(2)
        print("SIGINT never reached Python")
    except KeyboardInterrupt:
        print("KeyboardInterrupt")
""")


def test_ctrl_c_still_works_after_rdkit_work_in_threads() -> None:
    for _ in range(3):
        done = subprocess.run([sys.executable, "-c", CTRL_C_AFTER_RDKIT], capture_output=True, text=True, timeout=120)
        assert done.stdout.strip() == "KeyboardInterrupt", done.stdout + done.stderr


POOL_PARENT = textwrap.dedent("""
    import sys
    from omtx_hub.parallel import map_chunks
    from slow_work import slow_identity

    if __name__ == "__main__":
        print("mapping", flush=True)
        map_chunks(slow_identity, list(range(200)), per_process=1, chunk=1)
""")


def test_a_process_pool_outlives_no_parent_killed_outright(tmp_path: Path) -> None:
    if (os.cpu_count() or 1) < 2:
        pytest.skip("map_chunks uses a pool only with two cores or more")
    script = tmp_path / "parent.py"
    script.write_text(POOL_PARENT)
    parent = subprocess.Popen(
        [sys.executable, str(script)], env={**os.environ, "PYTHONPATH": str(SUPPORT)}, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None and parent.stdout.readline().strip() == "mapping"
        deadline = time.monotonic() + 60
        while len(children_of(parent.pid)) < 3:  # the resource tracker and two pool processes
            assert parent.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        time.sleep(1.0)  # the pool is working through its items
        children = children_of(parent.pid)
        parent.kill()
        parent.wait()
        assert wait_gone(children, 10) == set()
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()  # type: ignore[union-attr]
