"""Uploaded ligand files: size-limited, parsed by the same readers as the CLI (never executed)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from fastapi import UploadFile

from omtx_hub.errors import InvalidInput, PayloadTooLarge
from omtx_hub.ligand_files import read_ligands

__all__ = ["read_ligand_upload"]


def read_ligand_upload(file: UploadFile, limit: int) -> list[tuple[str, str]]:
    """(name, smiles) pairs of an uploaded .csv/.smi/.sdf; 413 over ``limit`` bytes, 422 if unreadable."""
    data = file.file.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"{file.filename}: larger than {limit} bytes (OMTX_MAX_UPLOAD_BYTES)",
                              code="upload_too_large")  # fmt: skip
    suffix = Path(file.filename or "ligands.csv").suffix.lower()
    with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:
        tmp.write(data)
        tmp.flush()
        try:
            return read_ligands(Path(tmp.name))
        except (ValueError, UnicodeDecodeError, OSError) as exc:
            raise InvalidInput(str(exc).replace(tmp.name, file.filename or "the file"),
                               code="invalid_ligand_file") from exc  # fmt: skip
