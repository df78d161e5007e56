"""The result store: files of jobs and batches in a fixed layout, on a local folder or any fsspec URL.

Layout (DESIGN.md §5)::

    jobs/{job_id}/input.json  results.json  structure.cif  …
    batches/{batch_id}/batch_results.json  batch_results.csv
    batches/{batch_id}/jobs/{child_job_id}/input.json  results.json  structure.cif  …
    cache/targets/{target_key}/…          per-target artefacts shared by workers (prepared receptor, …)
    targets/{target_id}/receptor.pdb  reference_ligand.sdf  target.json     uploaded docking targets
    .probe/…                              short-lived files of check_writable (a write test)

Writes are atomic: on a local folder a file is written under a temporary name and renamed into
place; object stores (s3://, gs://) publish an object only when its upload completes.

Durability on a local folder: by default each file is fsynced before its rename. A caller that
writes many files before recording anything about them (the worker, for a micro-batch) can pass
``durable=False`` and call :meth:`ResultStore.sync` once before it records them: one ``syncfs`` of
the store's filesystem (Linux) instead of one fsync per file, which is most of a fast job's cost on
an ordinary disk. After ``sync`` returns, the files' contents and names are on disk.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import re
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from omtx_hub.errors import NotFound, StorageError

__all__ = ["ResultStore", "is_safe_file_name", "refusal_reason"]

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


_PROBE_DIR = ".probe"  # check_writable's short-lived files
_SYNCFS_FROM = 16  # pending files from which one syncfs beats fsyncing each file and folder


def _load_syncfs() -> Any:
    """libc's ``syncfs(fd)`` where the platform has it (Linux), else None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        return libc.syncfs
    except (OSError, AttributeError, TypeError):
        return None


_syncfs = _load_syncfs()


def refusal_reason(exc: StorageError) -> str:
    """Why the store refused, without paths (shown to API users): the OS's words for an OSError
    ("No space left on device"), else the kind of error."""
    cause = exc.__cause__
    if isinstance(cause, OSError) and cause.errno:
        return os.strerror(cause.errno)
    return type(cause).__name__ if cause is not None else "the store refused a write"


def is_safe_file_name(name: str) -> bool:
    return bool(_SAFE_NAME.match(name)) and ".tmp-" not in name


def _check_id(value: str) -> str:
    if not _SAFE_ID.match(value):
        raise NotFound(f"no job or batch with id {value!r}", code="job_not_found")
    return value


class ResultStore:
    def __init__(self, url: str, options: dict[str, Any] | None = None) -> None:
        self.url = url
        options = dict(options or {})
        if "://" in url and not url.startswith("file://"):
            # several processes write the same prefixes: a cached listing would hide their files
            options.setdefault("use_listings_cache", False)
            options.setdefault("skip_instance_cache", True)
        self.fs, root = fsspec.core.url_to_fs(url, **options)
        self.root = root.rstrip("/")
        self._local = isinstance(self.fs, LocalFileSystem)
        self._made: set[str] = set()  # folders this store already created (saves a mkdir per file)
        self._pool: ThreadPoolExecutor | None = None
        self._unsynced: list[str] = []  # local files written with durable=False, not yet synced
        self._unsynced_lock = threading.Lock()
        if self._local:
            Path(self.root).mkdir(parents=True, exist_ok=True)

    # layout ---------------------------------------------------------------

    @staticmethod
    def job_dir(job_id: str, batch_id: str | None = None) -> str:
        if batch_id is not None:
            return f"batches/{_check_id(batch_id)}/jobs/{_check_id(job_id)}"
        return f"jobs/{_check_id(job_id)}"

    @staticmethod
    def batch_dir(batch_id: str) -> str:
        return f"batches/{_check_id(batch_id)}"

    @staticmethod
    def target_dir(target_id: str) -> str:
        return f"targets/{_check_id(target_id)}"

    @staticmethod
    def target_cache_dir(target_key: str) -> str:
        return f"cache/targets/{_check_id(target_key)}"

    def _full(self, relpath: str) -> str:
        return f"{self.root}/{relpath}"

    # writing --------------------------------------------------------------

    def write_bytes(self, relpath: str, data: bytes, *, durable: bool = True) -> None:
        """Write one file atomically. ``durable=False``: do not wait for the disk; :meth:`sync` does."""
        path = self._full(relpath)
        try:
            if self._local:
                try:
                    self._write_local(path, data, durable)
                except FileNotFoundError:  # the folder went away (pruned) since this store made it
                    self._made.discard(os.path.dirname(path))
                    self._write_local(path, data, durable)
            else:
                self.fs.pipe_file(path, data)
        except Exception as exc:  # OSError locally; botocore/aiohttp errors on object stores
            raise StorageError(f"could not write {relpath}: {type(exc).__name__}: {exc}") from exc

    def _write_local(self, path: str, data: bytes, durable: bool) -> None:
        folder = os.path.dirname(path)
        if folder not in self._made:
            os.makedirs(folder, exist_ok=True)
            if len(self._made) > 10_000:
                self._made.clear()
            self._made.add(folder)
        tmp = f"{path}.tmp-{uuid.uuid4().hex}"
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                if durable:
                    os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:  # a full disk fails the write or the close: leave no half file behind
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        if not durable:
            with self._unsynced_lock:
                self._unsynced.append(path)

    def write_many(self, files: dict[str, bytes], *, durable: bool = True) -> None:
        """Write several files at once (in parallel threads when each waits on the disk or the
        network). Every file is atomic on its own; raises StorageError if any write failed."""
        if len(files) < 2 or (self._local and not durable):  # nothing to wait for: threads cost more
            for relpath, data in files.items():
                self.write_bytes(relpath, data, durable=durable)
            return
        for future in [self._threads().submit(self.write_bytes, p, d) for p, d in files.items()]:
            future.result()

    def sync(self) -> None:
        """Make every file written with ``durable=False`` durable: contents and names.

        Many files: one ``syncfs`` of the store's filesystem. A few (or no syncfs on this platform):
        each file, then every folder from theirs up to the root, fsynced in parallel. Raises
        StorageError on failure.
        """
        with self._unsynced_lock:
            paths, self._unsynced = self._unsynced, []
        if not paths:
            return
        try:
            if _syncfs is not None and len(paths) >= _SYNCFS_FROM:
                fd = os.open(self.root, os.O_RDONLY)
                try:
                    if _syncfs(fd) != 0:
                        err = ctypes.get_errno()
                        raise OSError(err, os.strerror(err))
                finally:
                    os.close(fd)
                return
            for targets in (paths, self._folders_up_to_root(paths)):
                for future in [self._threads().submit(_fsync_path, p) for p in targets]:
                    future.result()
        except OSError as exc:
            raise StorageError(f"could not make {len(paths)} written files durable: {exc}") from exc

    def _folders_up_to_root(self, paths: list[str]) -> list[str]:
        """Every folder between these files and the root: a new job's folder (and a new batch's)
        is an entry in its parent, durable only once the parent is synced."""
        folders: set[str] = set()
        for path in paths:
            folder = os.path.dirname(path)
            while folder not in folders and folder.startswith(self.root):
                folders.add(folder)
                folder = os.path.dirname(folder)
        return sorted(folders)

    def _threads(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="store")
        return self._pool

    def check_writable(self) -> None:
        """Write a small file durably and delete it; StorageError when the store refuses writes (a full
        disk, a read-only mount, credentials without write access). Workers wait on this before they
        claim again after a failed write; ``/readyz`` reports it."""
        relpath = f"{_PROBE_DIR}/{uuid.uuid4().hex}"
        self.write_bytes(relpath, b"\0" * 4096)
        with contextlib.suppress(Exception):  # a probe left behind is 4 KiB, and the next one still tells
            self.fs.rm_file(self._full(relpath))

    @staticmethod
    def json_bytes(value: Any) -> bytes:
        return json.dumps(value, indent=2, sort_keys=True, default=str).encode()

    def write_json(self, relpath: str, value: Any) -> None:
        self.write_bytes(relpath, self.json_bytes(value))

    # reading --------------------------------------------------------------

    def list_files(self, directory: str) -> list[str]:
        """Names of the files directly in ``directory`` (no folders, no temporary files)."""
        path = self._full(directory)
        try:
            entries = self.fs.ls(path, detail=True)
        except FileNotFoundError:
            return []
        except Exception as exc:  # the store is unreachable
            raise StorageError(f"could not list {directory}: {type(exc).__name__}: {exc}") from exc
        names = [e["name"].rstrip("/").rsplit("/", 1)[-1] for e in entries if e.get("type") == "file"]
        return sorted(n for n in names if is_safe_file_name(n))

    def exists(self, relpath: str) -> bool:
        return bool(self.fs.exists(self._full(relpath)))

    def read_bytes(self, relpath: str) -> bytes:
        try:
            return bytes(self.fs.cat_file(self._full(relpath)))
        except FileNotFoundError as exc:
            raise NotFound(f"file {relpath} does not exist", code="file_not_found") from exc

    def iter_bytes(self, relpath: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        try:
            fh = self.fs.open(self._full(relpath), "rb")
        except FileNotFoundError as exc:
            raise NotFound(f"file {relpath} does not exist", code="file_not_found") from exc
        with fh:
            while chunk := fh.read(chunk_size):
                yield chunk

    def size(self, relpath: str) -> int:
        return int(self.fs.size(self._full(relpath)))

    def delete_dir(self, directory: str) -> None:
        """Remove a job's or batch's folder and everything in it (used by ``db prune``)."""
        path = self._full(directory)
        try:
            if self.fs.exists(path):
                self.fs.rm(path, recursive=True)
        except FileNotFoundError:
            return


def _fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
