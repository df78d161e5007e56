"""Errors of OMTX-Hub.

::

    OmtxError                      base; `code` is a stable machine-readable string
     ├── InvalidInput              bad request content (422); `details` lists every problem
     ├── PayloadTooLarge           request or batch over a configured limit (413)
     ├── NotFound                  unknown job, batch or file (404)
     ├── Conflict                  the job's state does not allow the operation (409)
     ├── PredictorUnavailable      a worker cannot load a predictor (package or weights missing)
     ├── StorageError              the result store could not write or read a file
     └── PredictionError           a predictor failed on a job
          ├── TransientPredictionError   may succeed on retry (out of memory, timeout, lost worker)
          └── PermanentPredictionError   will fail again (input the predictor cannot handle)

The API maps them to HTTP in exactly one place (``api/errors.py``).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Conflict",
    "InvalidInput",
    "NotFound",
    "OmtxError",
    "PayloadTooLarge",
    "PermanentPredictionError",
    "PredictionError",
    "PredictorUnavailable",
    "StorageError",
    "TransientPredictionError",
]


class OmtxError(Exception):
    code = "error"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details


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


class PredictionError(OmtxError):
    code = "prediction_failed"
    transient = False


class TransientPredictionError(PredictionError):
    transient = True


class PermanentPredictionError(PredictionError):
    transient = False
