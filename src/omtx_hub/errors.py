"""Errors of OMTX-Hub.

::

    OmtxError                      base; `code` is a stable machine-readable string
     ├── Unauthorized              no valid API key or session (401)
     ├── Forbidden                 a valid key without the right (403; admin-only operations)
     ├── RateLimited               too many submissions in a minute (429, Retry-After)
     ├── InvalidInput              bad request content (422); `details` lists every problem
     ├── PayloadTooLarge           request or batch over a configured limit (413)
     ├── NotFound                  unknown job, batch or file (404)
     ├── Conflict                  the job's state does not allow the operation (409)
     ├── PredictorUnavailable      a worker cannot load a predictor (package or weights missing)
     ├── StorageError              the result store could not write or read a file
     ├── QueueUnavailable          the database behind the queue cannot be reached (down, restarting,
     │                             locked); callers retry. Driver errors never leave ``omtx_hub.db``
     ├── IllegalTransition         a state change the transition table does not allow (a bug, not input)
     └── PredictionError           a predictor failed on a job
          ├── TransientPredictionError   may succeed on retry (out of memory, timeout, lost worker)
          └── PermanentPredictionError   will fail again (input the predictor cannot handle)

The API maps them to HTTP in exactly one place (``api/errors.py``).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Conflict",
    "Forbidden",
    "IllegalTransition",
    "InvalidInput",
    "NotFound",
    "OmtxError",
    "PayloadTooLarge",
    "PermanentPredictionError",
    "PredictionError",
    "PredictorUnavailable",
    "QueueUnavailable",
    "RateLimited",
    "StorageError",
    "TransientPredictionError",
    "Unauthorized",
]


class OmtxError(Exception):
    code = "error"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details


class Unauthorized(OmtxError):
    code = "unauthorized"


class Forbidden(OmtxError):
    code = "forbidden"


class RateLimited(OmtxError):
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, details={"retry_after_seconds": retry_after})
        self.retry_after = retry_after


class InvalidInput(OmtxError):
    code = "invalid_input"


class PayloadTooLarge(OmtxError):
    code = "payload_too_large"


class NotFound(OmtxError):
    code = "not_found"


class Conflict(OmtxError):
    code = "conflict"


class PredictorUnavailable(OmtxError):
    code = "predictor_unavailable"


class StorageError(OmtxError):
    code = "storage_error"


class QueueUnavailable(OmtxError):
    code = "queue_unavailable"


class IllegalTransition(OmtxError):
    code = "illegal_transition"


class PredictionError(OmtxError):
    code = "prediction_failed"
    transient = False


class TransientPredictionError(PredictionError):
    transient = True


class PermanentPredictionError(PredictionError):
    transient = False
