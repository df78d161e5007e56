"""Multipart uploads: size-limited files, JSON form fields, ligand files parsed by the CLI's readers
(nothing uploaded is ever executed)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from fastapi import UploadFile

from omtx_hub.errors import InvalidInput, PayloadTooLarge
from omtx_hub.ligand_files import read_ligands

__all__ = ["json_list_field", "json_object_field", "read_ligand_upload", "read_upload"]


def read_upload(file: UploadFile, limit: int) -> bytes:
    """The uploaded bytes; 413 ``upload_too_large`` over ``limit`` (blocking: run it in a thread)."""
    data = file.file.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(
            f"{file.filename}: larger than {limit} bytes (OMTX_MAX_UPLOAD_BYTES)", code="upload_too_large"
        )
    return data


def _json(text: str, field: str, code: str, kind: type) -> Any:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"{field} is not valid JSON", code=code) from exc
    if not isinstance(value, kind):
        raise InvalidInput(f"{field} must be a JSON {'object' if kind is dict else 'list'}", code=code)
    return value


def json_object_field(text: str, field: str, code: str) -> dict[str, Any]:
    """A form field that must hold a JSON object; 422 with ``code`` otherwise."""
    value: dict[str, Any] = _json(text, field, code, dict)
    return value


def json_list_field(text: str, field: str, code: str) -> list[Any]:
    """A form field holding a JSON list, or (for lists of words) comma-separated words; 422 with ``code``."""
    stripped = text.strip()
    if not stripped.startswith("["):
        return [word.strip() for word in stripped.split(",") if word.strip()]
    value: list[Any] = _json(stripped, field, code, list)
    return value


def read_ligand_upload(file: UploadFile, limit: int) -> list[tuple[str, str]]:
    """(name, smiles) pairs of an uploaded .csv/.smi/.sdf; 413 over ``limit`` bytes, 422 if unreadable."""
    data = read_upload(file, limit)
    suffix = Path(file.filename or "ligands.csv").suffix.lower()
    with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:
        tmp.write(data)
        tmp.flush()
        try:
            return read_ligands(Path(tmp.name))
        except (ValueError, UnicodeDecodeError, OSError) as exc:
            raise InvalidInput(
                str(exc).replace(tmp.name, file.filename or "the file"), code="invalid_ligand_file"
            ) from exc
