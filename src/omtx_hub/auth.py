"""API keys, owners and their limits, browser sessions, and the submission rate limit.

- A key is ``omtx_`` + 43 random URL-safe characters, shown once. The database keeps its first 12
  characters (to find it and to show it) and an HMAC-SHA256 of the whole key under the hub's
  secret (``OMTX_SECRET_KEY`` or the file ``{OMTX_HOME}/secret.key``, created on first start). A
  stolen database alone cannot be turned back into keys, and checking a key costs one indexed read.
- A revoked key stops working on the next request (no cache).
- Browser sessions are a signed cookie (key id + expiry, HMAC under the same secret); a session is
  checked against the key on every request, so revoking the key ends its sessions. Forms and
  fetches that change state carry a CSRF token derived from the session.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from omtx_hub.db.engine import read_connection, transaction
from omtx_hub.db.schema import api_keys, owners
from omtx_hub.errors import NotFound, RateLimited

__all__ = ["SESSION_SECONDS", "KeyStore", "Limits", "Principal", "RateLimiter", "load_secret"]

KEY_PREFIX = "omtx_"
_PREFIX_LEN = 12
SESSION_SECONDS = 12 * 3600


@dataclass(frozen=True)
class Principal:
    owner: str
    admin: bool
    key_id: str

    @property
    def scope(self) -> str | None:
        """The owner whose objects this principal may see; None for an admin (sees all)."""
        return None if self.admin else self.owner


@dataclass(frozen=True)
class Limits:
    max_pending_jobs: int
    max_batch_size: int
    max_sequence_length: int
    max_heavy_atoms: int
    submissions_per_minute: int
    max_body_bytes: int


LIMIT_NAMES = tuple(Limits.__dataclass_fields__)


def load_secret(explicit: str | None, home: Path) -> bytes:
    """The hub's secret: the setting if given, else a random one kept in ``home/secret.key`` (0600)."""
    if explicit:
        return explicit.encode()
    path = home / "secret.key"
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


class KeyStore:
    def __init__(self, engine: sa.Engine, secret: bytes) -> None:
        self.engine = engine
        self._secret = secret

    def _digest(self, key: str) -> str:
        return hmac.new(self._secret, key.encode(), hashlib.sha256).hexdigest()

    # keys -------------------------------------------------------------------

    def create(self, owner: str, *, admin: bool = False, label: str = "") -> tuple[str, dict[str, Any]]:
        """Create a key; returns (the key, shown only now, and its record)."""
        owner = owner.strip()
        if not owner or len(owner) > 100:
            raise ValueError("owner must be 1 to 100 characters")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        record = {
            "key_id": f"key_{secrets.token_urlsafe(9)}",
            "owner": owner,
            "prefix": key[:_PREFIX_LEN],
            "key_hash": self._digest(key),
            "admin": admin,
            "label": label[:200],
            "created_at": time.time(),
        }
        with transaction(self.engine) as conn:
            if conn.execute(sa.select(owners.c.owner).where(owners.c.owner == owner)).first() is None:
                conn.execute(owners.insert(), {"owner": owner, "limits": {}, "created_at": time.time()})
            conn.execute(api_keys.insert(), record)
        return key, {k: v for k, v in record.items() if k != "key_hash"}

    def verify(self, key: str) -> Principal | None:
        if not key.startswith(KEY_PREFIX) or len(key) > 200:
            return None
        with read_connection(self.engine) as conn:
            rows = conn.execute(
                sa.select(api_keys).where(api_keys.c.prefix == key[:_PREFIX_LEN], api_keys.c.revoked_at.is_(None))
            ).all()
        digest = self._digest(key)
        for row in rows:
            if hmac.compare_digest(row.key_hash, digest):
                return Principal(owner=row.owner, admin=bool(row.admin), key_id=row.key_id)
        return None

    def by_id(self, key_id: str) -> Principal | None:
        with read_connection(self.engine) as conn:
            row = conn.execute(
                sa.select(api_keys).where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
            ).first()
        return Principal(owner=row.owner, admin=bool(row.admin), key_id=row.key_id) if row else None

    def list(self, owner: str | None = None) -> list[dict[str, Any]]:
        query = sa.select(api_keys).order_by(api_keys.c.created_at)
        if owner is not None:
            query = query.where(api_keys.c.owner == owner)
        with read_connection(self.engine) as conn:
            return [{k: v for k, v in r._mapping.items() if k != "key_hash"} for r in conn.execute(query)]

    def revoke(self, key_id_or_prefix: str) -> dict[str, Any]:
        with transaction(self.engine) as conn:
            rows = conn.execute(
                sa.update(api_keys)
                .where(
                    sa.or_(api_keys.c.key_id == key_id_or_prefix, api_keys.c.prefix == key_id_or_prefix),
                    api_keys.c.revoked_at.is_(None),
                )
                .values(revoked_at=time.time())
                .returning(api_keys.c.key_id, api_keys.c.owner, api_keys.c.prefix)
            ).all()
        if not rows:
            raise NotFound(f"no active key {key_id_or_prefix!r}", code="key_not_found")
        if len(rows) > 1:  # a prefix shared by two keys: both are revoked, and the caller is told
            return {"revoked": [dict(r._mapping) for r in rows]}
        return {"revoked": [dict(rows[0]._mapping)]}

    def any_keys(self) -> bool:
        with read_connection(self.engine) as conn:
            return conn.execute(sa.select(api_keys.c.key_id).limit(1)).first() is not None

    # owners and limits ------------------------------------------------------------

    def owner_limits(self, owner: str) -> dict[str, int]:
        with read_connection(self.engine) as conn:
            row = conn.execute(sa.select(owners.c.limits).where(owners.c.owner == owner)).first()
        return dict(row.limits) if row else {}

    def set_owner_limits(self, owner: str, limits: dict[str, int | None]) -> dict[str, int]:
        unknown = set(limits) - set(LIMIT_NAMES)
        if unknown:
            raise ValueError(f"unknown limits: {', '.join(sorted(unknown))}; known: {', '.join(LIMIT_NAMES)}")
        with transaction(self.engine) as conn:
            row = conn.execute(sa.select(owners.c.limits).where(owners.c.owner == owner)).first()
            if row is None:
                raise NotFound(f"no owner {owner!r} (create a key for it first)", code="owner_not_found")
            merged = {**row.limits, **{k: v for k, v in limits.items() if v is not None}}
            for k, v in limits.items():
                if v is None:
                    merged.pop(k, None)
            conn.execute(sa.update(owners).where(owners.c.owner == owner).values(limits=merged))
        return merged

    # browser sessions -------------------------------------------------------------

    def _sign(self, text: str) -> str:
        return hmac.new(self._secret, text.encode(), hashlib.sha256).hexdigest()[:40]

    def session_token(self, principal: Principal) -> str:
        payload = f"{principal.key_id}.{int(time.time()) + SESSION_SECONDS}"
        return f"{payload}.{self._sign('session:' + payload)}"

    def session_principal(self, token: str) -> Principal | None:
        parts = token.split(".")
        if len(parts) != 3 or not parts[1].isdigit():
            return None
        payload = f"{parts[0]}.{parts[1]}"
        if not hmac.compare_digest(self._sign("session:" + payload), parts[2]) or int(parts[1]) < time.time():
            return None
        return self.by_id(parts[0])

    def csrf_token(self, session: str) -> str:
        return self._sign("csrf:" + session)


class RateLimiter:
    """Submissions per owner per minute, a sliding window in this API process.

    With several API replicas each counts on its own (the effective limit is N × the setting);
    document this where replicas are configured.
    """

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._events: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._clock = clock

    def hit(self, owner: str, per_minute: int) -> None:
        now = self._clock()
        with self._lock:
            window = self._events[owner]
            while window and window[0] <= now - 60:
                window.popleft()
            if len(window) >= per_minute:
                retry = max(1, int(60 - (now - window[0])) + 1)
                raise RateLimited(
                    f"more than {per_minute} submissions in a minute; retry in {retry} s", retry_after=retry
                )
            window.append(now)
