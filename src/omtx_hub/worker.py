"""The worker: claim a micro-batch → predict → store files → finish, with heartbeats and a reaper.

One ``Worker`` keeps its predictors loaded for its whole life and keeps each target's prepared
artefacts (MSA, receptor maps, …) in memory, so a batch of one target pays per-target work once.
A result reaches the database only after its files are in the store.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omtx_hub.aggregate import aggregate_batch
from omtx_hub.backoff import Backoff
from omtx_hub.domain import ClaimedJob, Target
from omtx_hub.errors import PredictionError, QueueUnavailable, StorageError
from omtx_hub.pose_checks import check_job_pose
from omtx_hub.predictors.base import Outcome, PredictionTask, Predictor, TargetArtifacts
from omtx_hub.predictors.catalog import SPECS
from omtx_hub.queue import QueueManager
from omtx_hub.queue.wakeup import Listener
from omtx_hub.settings import Settings
from omtx_hub.storage import ResultStore, is_safe_file_name, refusal_reason
from omtx_hub.webhooks import WebhookDispatcher, WebhookStore

__all__ = ["Worker", "new_worker_id"]

logger = logging.getLogger("omtx_hub.worker")
_TARGET_CACHE_SIZE = 8
_BUFFER_BELOW_SECONDS = 0.05  # outcomes arriving faster than this are recorded together
_PROBE_SECONDS = 0.01  # how often an idle worker looks for new work (a read, no lock)
_STOP_CHECK_SECONDS = 0.05  # how soon a worker that waits (idle, backing off) notices stop()
_DB_BACKOFF = Backoff(first=0.5, cap=10.0)  # the database is down: wait, then look again
_FINISH_BACKOFF = Backoff(first=0.5, cap=5.0)  # a finishing call retried through an outage
_STORE_BACKOFF = Backoff(first=1.0, cap=30.0)  # the result store refuses writes
_AGGREGATE_BACKOFF = Backoff(first=60.0, cap=3600.0)  # a batch whose aggregation raised


def new_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}"


class Worker:
    def __init__(
        self,
        settings: Settings,
        manager: QueueManager,
        store: ResultStore,
        predictors: Mapping[str, Predictor],
        *,
        worker_id: str | None = None,
        webhooks: WebhookStore | None = None,
    ) -> None:
        if not predictors:
            raise ValueError("a worker needs at least one predictor")
        self.settings = settings
        self.manager = manager
        self.store = store
        self.predictors = dict(predictors)
        for name, predictor in self.predictors.items():  # what the indexed ``score`` and ``job_scores`` hold
            manager.declare_score(name, predictor.primary_score, getattr(predictor, "other_scores", ()))
        self.worker_id = worker_id or new_worker_id()
        self._workdir = Path(tempfile.mkdtemp(prefix="omtx-worker-"))
        self._targets: OrderedDict[tuple[str, str], tuple[Target, TargetArtifacts]] = OrderedDict()
        self._active: dict[str, int] = {}  # job id → the micro-batch (a running number) that holds it
        self._batches = 0
        self._to_stop: set[str] = set()
        self._lock = threading.Lock()
        # stop() only assigns _stop_requested (it runs inside signal handlers); the main loop sees it
        # and sets _stop, which the heartbeat thread waits on
        self._stop_requested = False
        self._stop = threading.Event()
        self._grace_deadline: float | None = None
        self._store_down: str | None = None  # why the store refuses writes; nothing is claimed until it takes one
        self._last_maintenance = 0.0
        self._aggregation_failures: dict[str, tuple[int, float]] = {}  # batch → (failures, next try, monotonic)
        self._done: list[tuple[ClaimedJob, dict[str, Any], float, float | None]] = []
        self._listener: Listener | None = None  # PostgreSQL: hears of new jobs while idle (run() opens it)
        self.webhooks = webhooks  # None: no webhook events are recorded or sent (tests, embedded use)

    # ------------------------------------------------------------------ lifecycle

    def run(self, *, exit_when_idle: bool = False) -> None:
        """Work until ``stop()`` is called (or, with ``exit_when_idle``, until nothing is runnable)."""
        self.register()
        self._listener = self.manager.listener()
        beat = threading.Thread(target=self._heartbeat_loop, name=f"heartbeat-{self.worker_id}", daemon=True)
        beat.start()
        dispatcher = WebhookDispatcher(self.webhooks).start() if self.webhooks is not None else None
        db_failures = store_waits = 0
        try:
            while not self._stop_requested:
                try:
                    self._maintenance()
                    if self._store_down is not None:
                        # longer each time, even when a probe write passes (the next job's write may not)
                        store_waits += 1
                        delay = _STORE_BACKOFF.delay(store_waits)
                        self._log("store_unavailable", retry_in=f"{delay:.1f}s")
                        if self._pause(delay):
                            continue
                    worked = self.run_once()
                    if self._store_down is not None:
                        continue
                    if worked:
                        store_waits = 0
                except QueueUnavailable as exc:  # the database is down or restarting
                    db_failures = self._wait_out_database(exc, db_failures)
                    continue
                if db_failures:
                    self._log("db_back")
                    db_failures = 0
                if worked:
                    continue
                if exit_when_idle:
                    self._log("idle_exit")
                    break
                try:
                    self._wait_for_work()
                except QueueUnavailable as exc:  # its probe met the database down: as for a claim
                    db_failures = self._wait_out_database(exc, db_failures)
        finally:
            self._stop.set()
            if self._listener is not None:
                self._listener.close()
            beat.join(timeout=5)
            if dispatcher is not None:
                dispatcher.stop()
            try:
                self.manager.unregister_worker(self.worker_id)
            except QueueUnavailable:
                pass  # the record expires by itself (last_seen_at)
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._log("stop")

    def _wait_out_database(self, exc: QueueUnavailable, failures: int) -> int:
        """Back off after the database refused a call; returns the count of failures in a row."""
        failures += 1
        delay = _DB_BACKOFF.delay(failures)
        self._log("db_unavailable", retry_in=f"{delay:.1f}s", error=exc.message)
        self._pause(delay)
        return failures

    def register(self) -> None:
        """Record this worker and the predictors it runs (job status uses it to tell whether work will run)."""
        self.manager.register_worker(self.worker_id, socket.gethostname(), os.getpid(), sorted(self.predictors))
        self._log("start", predictors=",".join(sorted(self.predictors)))

    def _wait_for_work(self) -> None:
        """Idle. On PostgreSQL: sleep on the listener until a job is announced, looking by itself
        every ``wake_poll_seconds``; no query meanwhile. Otherwise (SQLite, or while the listening
        connection is down): probe for due work every ``_PROBE_SECONDS`` with a read-only query, for
        up to ``poll_seconds``. Either way the claim (a write transaction) runs only when there is
        something to take, and a new job is picked up within milliseconds to tens of milliseconds."""
        listener = self._listener
        listening = listener is not None and listener.connect()
        if listener is not None and listening:
            listener.drain()  # announcements of jobs the next probe or claim sees anyway
        if self.manager.has_runnable(self.predictors):
            # due work that the last claim could not take (a batch at its max_concurrent, …):
            # probing would only spin; wait the full poll interval
            self._pause(self.settings.poll_seconds)
            return
        if listening and self._sleep_until_announced():
            return
        deadline = time.monotonic() + self.settings.poll_seconds
        while not self._pause(min(_PROBE_SECONDS, max(0.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline or self.manager.has_runnable(self.predictors):
                return

    def _sleep_until_announced(self) -> bool:
        """Wait on the listener, in slices that notice ``stop()``, until a job is announced, stop is
        asked for, or every ``wake_poll_seconds`` a probe finds due work; maintenance runs meanwhile
        when it is due. False: the connection broke, and the caller probes instead."""
        listener = self._listener
        assert listener is not None
        deadline = time.monotonic() + self.settings.wake_poll_seconds
        while not self._stop_requested:
            if self._maintenance_due_in() <= 0:
                # the reaper and the aggregation check go on while the fleet sleeps: the jobs of a worker
                # that died are requeued by nobody else (and announced, which wakes this listener)
                self._maintenance()
            left = min(deadline - time.monotonic(), self._maintenance_due_in())
            if time.monotonic() >= deadline:
                if self.manager.has_runnable(self.predictors):
                    return True
                deadline = time.monotonic() + self.settings.wake_poll_seconds
                continue
            if listener.wait(min(max(left, 0.0), _STOP_CHECK_SECONDS)):
                return True
            if not listener.connected:
                return False
        return True

    def stop(self, grace_seconds: float = 30.0) -> None:
        """Stop claiming; the running micro-batch has ``grace_seconds`` to finish, then is released.

        Safe inside a signal handler: it takes no lock, only assigns two attributes. (Setting a
        ``threading.Event`` there deadlocks when the signal lands while the same thread is inside
        that Event's ``wait``, holding its non-reentrant lock.)
        """
        self._grace_deadline = time.monotonic() + grace_seconds
        self._stop_requested = True

    def _pause(self, seconds: float) -> bool:
        """Sleep up to ``seconds`` in the calling thread; True as soon as ``stop()`` was called.

        ``time.sleep`` in short slices rather than ``Event.wait``: a signal handler that calls
        ``stop()`` may interrupt this thread anywhere, and nothing here holds a lock it needs.
        """
        end = time.monotonic() + seconds
        while not self._stop_requested:
            left = end - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(left, _STOP_CHECK_SECONDS))
        return True

    def run_once(self) -> int:
        """Claim and process one micro-batch; return how many jobs it held (none while the store
        that refused a write still refuses a probe write)."""
        if self._store_down is not None and not self._store_accepts_writes():
            return 0
        claims = self.manager.claim(self.worker_id, self.predictors, self.settings.claim_batch_size)
        if claims:
            self._process(claims)
        return len(claims)

    # ------------------------------------------------------------------ background duties

    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(self.settings.heartbeat_seconds):
            self.heartbeat()

    def heartbeat(self) -> None:
        with self._lock:
            held = dict(self._active)
        try:
            stop = self.manager.heartbeat(self.worker_id, sorted(held))
        except Exception:  # the database may be briefly unreachable; the lease has slack for that
            logger.exception("heartbeat failed", extra={"action": "heartbeat", "worker": self.worker_id})
            return
        with self._lock:
            # A slow heartbeat can answer after its micro-batch ended (a job then looks "not running"),
            # or after the job was claimed again: only flag jobs still held by the micro-batch it asked about.
            self._to_stop |= {j for j in stop if j in held and self._active.get(j) == held[j]}

    def _maintenance_due_in(self) -> float:
        """Seconds until the next maintenance (reaper, aggregation check): every quarter lease."""
        return self._last_maintenance + max(1.0, self.settings.lease_seconds / 4) - time.monotonic()

    def _maintenance(self) -> None:
        if self._maintenance_due_in() > 0:
            return
        now = time.monotonic()
        self._last_maintenance = now
        reaped = self.manager.reap_expired()
        if reaped:
            self._log("reap", count=reaped)
        waiting = self._aggregation_failures  # batches in backoff must not hide the others from the query
        for batch_id in self.manager.batches_to_aggregate(self.predictors, limit=20 + len(waiting)):
            if now >= waiting.get(batch_id, (0, 0.0))[1]:
                self._aggregate(batch_id)

    def _aggregate(self, batch_id: str) -> None:
        """Aggregate a finished batch. Any error but the database's (which the loop waits out) is
        logged and the batch tried again later, with backoff: one batch whose aggregation fails, for
        whatever reason, must not stop the worker (a restarted worker would meet it again, and so
        would every worker of its predictor)."""
        predictor = self.predictors[self.manager.get(batch_id)["predictor"]]
        try:
            summary = aggregate_batch(
                self.manager,
                self.store,
                batch_id,
                rank_by=predictor.primary_score,
                direction=predictor.score_direction,
                settings=self.settings,
            )
            self._log("aggregate", job=batch_id)
            parent = self.manager.get(batch_id)
            self._notify(
                parent["owner"],
                "batch.completed",
                batch_id,
                {
                    "batch_id": batch_id,
                    "name": parent["name"],
                    "predictor": parent["predictor"],
                    "status": parent["status"],
                    "counts": summary["counts"],
                    "top": summary["top"],
                    "files": summary["files"],
                },
            )
        except QueueUnavailable:
            raise
        except Exception:  # a store error, or a defect: either way, not this worker's end
            failures = self._aggregation_failures.get(batch_id, (0, 0.0))[0] + 1
            delay = _AGGREGATE_BACKOFF.delay(failures)
            self._aggregation_failures[batch_id] = (failures, time.monotonic() + delay)
            logger.exception(
                "aggregation failed",
                extra={"action": "aggregate", "job": batch_id, "attempt": failures, "retry_in": f"{delay:.0f}s"},
            )
        else:
            self._aggregation_failures.pop(batch_id, None)

    # ------------------------------------------------------------------ a store that refuses writes

    def _store_refuses(self, exc: StorageError) -> bool:
        """After a failed write: does the store refuse writes as a whole? A probe write tells. If it
        fails too (a full disk, a store that went away), that is the hub's problem, not the job's:
        this worker gives its jobs back without spending attempts and claims nothing until the store
        accepts a write. If it passes, only this write failed, and the job fails (transiently) as any
        other error would."""
        try:
            self.store.check_writable()
        except StorageError as probe:
            if self._store_down is None:
                self._log("store_unavailable", error=probe.message[:300])
            self._store_down = refusal_reason(probe)
            reason = f"the result store refuses writes ({self._store_down})"
            self._db_retry(lambda: self.manager.set_worker_paused(self.worker_id, reason))
            return True
        self._log("store_error", error=exc.message[:300], note="a probe write passed: this job's write alone failed")
        return False

    def _store_accepts_writes(self) -> bool:
        try:
            self.store.check_writable()
        except StorageError as exc:
            self._store_down = refusal_reason(exc)
            return False
        self._store_down = None
        self.manager.set_worker_paused(self.worker_id, None)
        self._log("store_back")
        return True

    def _release_for_store(self, claim: ClaimedJob) -> None:
        message = (
            f"the result store refused a write; the job waits until it accepts writes again (this attempt "
            f"is not counted): {self._store_down}"
        )
        self._db_retry(
            lambda: self.manager.release(
                claim, self.worker_id, error={"code": "storage_unavailable", "message": message}
            )
        )
        self._log("release", job=claim.job_id, reason="storage_unavailable")

    # ------------------------------------------------------------------ one micro-batch

    def should_stop(self, job_id: str) -> bool:
        if self._store_down is not None:  # what the rest of the micro-batch computes could not be stored
            return True
        if self._grace_deadline is not None and time.monotonic() > self._grace_deadline:
            return True
        with self._lock:
            return job_id in self._to_stop

    def _process(self, claims: Sequence[ClaimedJob]) -> None:
        ids = {c.job_id for c in claims}
        with self._lock:
            self._batches += 1
            self._active.update(dict.fromkeys(ids, self._batches))
        pending = {c.job_id: c for c in claims}
        predictor = self.predictors[claims[0].predictor]
        target = claims[0].target
        run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=self._workdir))
        self._log("claim", job=",".join(sorted(ids)), target=target.key)
        try:
            target, artifacts = self._prepare(predictor, target)
            tasks = [PredictionTask(job_id=c.job_id, ligand=c.ligand, params=c.params) for c in claims]
            mark = time.monotonic()
            for outcome in predictor.predict(target, artifacts, tasks, run_dir, self.should_stop):
                claim = pending.pop(outcome.job_id, None)
                if claim is None:
                    raise RuntimeError(
                        f"predictor {predictor.name} returned an outcome for unknown job {outcome.job_id}"
                    )
                now = time.monotonic()
                self._finish(claim, outcome, target, wall_seconds=now - mark)
                mark = now
        except PredictionError as exc:
            for claim in pending.values():
                self._fail(claim, exc.code, exc.message, transient=exc.transient)
            pending.clear()
        except StorageError as exc:  # target files or the cache could not be read or written
            if not self._store_refuses(exc):  # else the jobs still pending are released below
                for claim in pending.values():
                    self._fail(claim, "storage_error", exc.message, transient=True)
                pending.clear()
        except Exception as exc:  # a crash in a predictor must not lose the jobs: they retry
            logger.exception("predictor crashed", extra={"action": "predict", "worker": self.worker_id})
            for claim in pending.values():
                self._fail(claim, "predictor_crashed", f"{type(exc).__name__}: {exc}", transient=True)
            pending.clear()
        finally:
            try:
                self._flush()
                for claim in pending.values():  # the predictor stopped early
                    if self._store_down is not None:
                        self._release_for_store(claim)
                    elif self._grace_deadline is not None and time.monotonic() > self._grace_deadline:
                        self.manager.release(claim, self.worker_id)
                        self._log("release", job=claim.job_id)
                    elif self.should_stop(claim.job_id):
                        self.manager.stopped(claim, self.worker_id)
                        self._log("cancelled", job=claim.job_id)
                    else:
                        self._fail(claim, "no_outcome", "the predictor returned no result for this job", transient=True)
            finally:
                # Whatever happened above (the database may be down past a lease), stop renewing these
                # leases: a job this worker could not finish must expire and go back to the queue.
                with self._lock:
                    for job_id in ids:
                        self._active.pop(job_id, None)
                    self._to_stop -= ids
                shutil.rmtree(run_dir, ignore_errors=True)

    def _prepare(self, predictor: Predictor, target: Target) -> tuple[Target, TargetArtifacts]:
        """Per-target work, once per worker: kept in memory, and shared through ``cache/targets/{key}/``.

        Before ``prepare_target`` the worker copies the target's input files (an uploaded receptor …)
        and whatever another worker already cached for this target into the target's folder; after
        it, it publishes the new files of that folder to the cache, so the next worker skips the work.
        """
        key = (predictor.name, target.key)
        if key in self._targets:
            self._targets.move_to_end(key)
            return self._targets[key]
        directory = self._workdir / "targets" / predictor.name / target.key
        inputs = directory / "inputs"
        inputs.mkdir(parents=True, exist_ok=True)
        files = {}
        for name, relpath in target.extra.get("files", {}).items():
            local = inputs / name
            local.write_bytes(self.store.read_bytes(relpath))
            files[name] = local
        cache = self.store.target_cache_dir(target.key)
        cached = self.store.list_files(cache)
        for name in cached:
            (directory / name).write_bytes(self.store.read_bytes(f"{cache}/{name}"))
        local_target = Target(key=target.key, protein_sequence=target.protein_sequence, extra=target.extra, files=files)
        started = time.monotonic()
        artifacts = predictor.prepare_target(local_target, directory)
        for path in sorted(directory.iterdir()):
            if path.is_file() and path.name not in cached and is_safe_file_name(path.name):
                self.store.write_bytes(f"{cache}/{path.name}", path.read_bytes())
        self._log(
            "prepare_target",
            target=target.key,
            seconds=f"{time.monotonic() - started:.3f}",
            reused_from_cache=",".join(cached) or "-",
        )
        self._targets[key] = (local_target, artifacts)
        while len(self._targets) > _TARGET_CACHE_SIZE:
            _, (_, old) = self._targets.popitem(last=False)
            shutil.rmtree(old.directory, ignore_errors=True)
        return local_target, artifacts

    def _finish(self, claim: ClaimedJob, outcome: Outcome, target: Target, *, wall_seconds: float) -> None:
        if outcome.error is not None:
            self._fail(claim, outcome.error.code, outcome.error.message, transient=outcome.error.transient)
            return
        if outcome.results is None:
            self._fail(claim, "no_outcome", "the predictor returned neither results nor an error", transient=True)
            return
        spec = SPECS.get(claim.predictor)
        if self.settings.pose_checks and spec is not None and spec.pose_file in outcome.files:
            self._check_pose(claim, outcome, target)
        directory = self.store.job_dir(claim.job_id, claim.batch_parent_id)
        files = sorted(outcome.files)
        unsafe = [name for name in files if not is_safe_file_name(name)]
        if unsafe:
            self._fail(
                claim, "storage_error", f"predictor produced files with unsafe names: {unsafe!r}", transient=True
            )
            return
        try:
            document = {
                "job_id": claim.job_id,
                "predictor": claim.predictor,
                "status": "completed",
                "attempt": claim.attempt,
                "worker_id": self.worker_id,
                "wall_seconds": wall_seconds,
                "accelerator_seconds": outcome.accelerator_seconds,
                "results": outcome.results,
                "files": ["input.json", "results.json", *files],
            }
            self.store.write_many(
                {
                    **{f"{directory}/{name}": outcome.files[name] for name in files},
                    f"{directory}/input.json": self.store.json_bytes(_input_document(claim, outcome.model_input)),
                    f"{directory}/results.json": self.store.json_bytes(document),
                },
                durable=False,
            )  # made durable together in _flush, before the completions are recorded
        except StorageError as exc:
            if self._store_refuses(exc):
                self._release_for_store(claim)
            else:
                self._fail(claim, "storage_error", exc.message, transient=True)
            return
        self._done.append((claim, outcome.results, wall_seconds, outcome.accelerator_seconds))
        if wall_seconds >= _BUFFER_BELOW_SECONDS or len(self._done) >= self.settings.claim_batch_size:
            self._flush()

    def _check_pose(self, claim: ClaimedJob, outcome: Outcome, target: Target) -> None:
        """Add the pose checks and interactions to a completed outcome of a predictor that declares its
        pose file (pose_checks.py); they never fail the job."""
        assert outcome.results is not None
        report = check_job_pose(outcome.files.__getitem__, outcome.files, claim.ligand.smiles, target.files)
        if report is None:
            return
        outcome.results = {**outcome.results, **report.results}
        outcome.files = {**outcome.files, **report.files}
        if "pose_checks_error" in report.results:
            self._log("pose_checks_failed", job=claim.job_id, error=report.results["pose_checks_error"])

    def _flush(self) -> None:
        """Make the buffered completions' files durable, then record them in one transaction.

        A predictor that returns outcomes faster than ``_BUFFER_BELOW_SECONDS`` apart has them
        buffered until its micro-batch ends; a slower one has each recorded at once, so progress
        stays live for real predictors and a fast one does not pay a commit per job.
        """
        items, self._done = self._done, []
        if not items:
            return
        try:
            self.store.sync()  # a completed job's files must outlive a crash of this machine
        except StorageError as exc:
            refused = self._store_refuses(exc)
            for claim, *_ in items:
                if refused:
                    self._release_for_store(claim)
                else:
                    self._fail(claim, "storage_error", exc.message, transient=True)
            return
        results = self._db_retry(lambda: self.manager.complete_many(items, self.worker_id))
        results_of = {claim.job_id: outcome for claim, outcome, _, _ in items}
        aggregate = set()
        for (claim, _, wall_seconds, _), finished in zip(items, results, strict=True):
            if not finished.applied:
                self._log("lease_lost", job=claim.job_id, note="result discarded; another attempt owns the job")
                continue
            self._log("complete", job=claim.job_id, attempt=claim.attempt, seconds=f"{wall_seconds:.3f}")
            if claim.batch_parent_id is None:
                self._notify(
                    claim.owner,
                    "job.completed",
                    claim.job_id,
                    {
                        "job_id": claim.job_id,
                        "predictor": claim.predictor,
                        "status": "completed",
                        "ligand_name": claim.input.get("ligand_name"),
                        "results": results_of.get(claim.job_id),
                    },
                )
            if finished.parent_finished and claim.batch_parent_id:
                aggregate.add(claim.batch_parent_id)
        for batch_id in sorted(aggregate):
            self._aggregate(batch_id)

    def _fail(self, claim: ClaimedJob, code: str, message: str, *, transient: bool) -> None:
        finished = self._db_retry(
            lambda: self.manager.fail(claim, self.worker_id, code=code, message=message, transient=transient)
        )
        self._log("fail", job=claim.job_id, attempt=claim.attempt, code=code, outcome=finished.status or "lease_lost")
        if finished.status == "failed" and claim.batch_parent_id is None:
            self._notify(
                claim.owner,
                "job.failed",
                claim.job_id,
                {
                    "job_id": claim.job_id,
                    "predictor": claim.predictor,
                    "status": "failed",
                    "ligand_name": claim.input.get("ligand_name"),
                    "error": {"code": code, "message": message},
                },
            )
        if finished.parent_finished and claim.batch_parent_id:
            self._aggregate(claim.batch_parent_id)

    def _notify(self, owner: str, event: str, job_id: str, data: dict[str, Any]) -> None:
        """Record webhook deliveries for an event (sent by the dispatcher thread); never fails the job."""
        if self.webhooks is None:
            return
        try:
            self.webhooks.enqueue(owner, event, job_id, data)
        except QueueUnavailable:
            logger.exception("could not record webhook event", extra={"action": "webhook", "job": job_id})

    def _db_retry(self, call: Any) -> Any:
        """Run a finishing call, retrying through a database outage for up to one lease.

        Past that the lease has expired anyway: the job is re-queued by the reaper and this
        worker's late result is refused by the guarded update.
        """
        deadline = time.monotonic() + self.settings.lease_seconds
        failures = 0
        while True:
            try:
                return call()
            except QueueUnavailable:
                if time.monotonic() > deadline:
                    raise
                failures += 1
                delay = _FINISH_BACKOFF.delay(failures)
                self._log("db_unavailable", retry_in=f"{delay:.1f}s")
                time.sleep(delay)

    def _log(self, action: str, job: str | None = None, **fields: Any) -> None:
        extra = " ".join(f"{k}={v}" for k, v in fields.items())
        logger.info(
            "action=%s worker=%s job=%s %s",
            action,
            self.worker_id,
            job or "-",
            extra,
            extra={"action": action, "worker": self.worker_id, "job": job, **fields},
        )


def _input_document(claim: ClaimedJob, model_input: dict[str, Any] | None) -> dict[str, Any]:
    document = {
        "job_id": claim.job_id,
        "batch_id": claim.batch_parent_id,
        "batch_index": claim.batch_index,
        "predictor": claim.predictor,
        "params": claim.params,
        "protein_sequence": claim.input["protein_sequence"],
        "target": claim.input.get("target", {}),
        "ligand_name": claim.input["ligand_name"],
        "ligand_smiles": claim.input["ligand_smiles"],
    }
    if model_input is not None:
        document["model_input"] = model_input
    return document
