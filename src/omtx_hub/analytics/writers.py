"""Writers: a ranked batch as a stream of bytes in CSV, JSON, SDF (RDKit's writer), ZIP of
structures with a manifest, or Parquet (a declared schema). Each writes as rows arrive."""

from __future__ import annotations

import csv
import io
import json
import logging
import zipfile
from collections.abc import Iterator
from typing import Any

from omtx_hub.analytics.rows import COST_COLUMNS, Ranking, number, stream_rows
from omtx_hub.domain import JobStatus
from omtx_hub.errors import InvalidInput
from omtx_hub.ligands import PROPERTY_FIELDS, TEXT_PROPERTIES
from omtx_hub.predictors.catalog import SPECS
from omtx_hub.queue import QueueManager
from omtx_hub.settings import Settings
from omtx_hub.storage import ResultStore

__all__ = ["EXPORT_FORMATS", "export_stream"]

EXPORT_FORMATS = {
    "csv": "text/csv",
    "json": "application/json",
    "sdf": "chemical/x-mdl-sdfile",
    "zip": "application/zip",
    "parquet": "application/vnd.apache.parquet",
}
logger = logging.getLogger("omtx_hub.analytics")


class _Sink(io.RawIOBase):
    """A write-only, unseekable stream whose bytes are taken out as they come (for zip and parquet)."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out, self.chunks = b"".join(self.chunks), []
        return out


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _spreadsheet_safe(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula (``=HYPERLINK(…)``, ``+…``, ``-…``, ``@…``)
    gets a leading apostrophe, as OWASP advises for CSV; numbers stay numbers (``-7.2`` is a score)."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _csv_lines(columns: list[str], rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for count, row in enumerate(rows, start=1):
        writer.writerow({k: _spreadsheet_safe(v) for k, v in row.items()})
        if count % 200 == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def _json_document(head: dict[str, Any], rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    yield (json.dumps(head)[:-1] + ', "results": [').encode()
    parts: list[str] = []
    for count, row in enumerate(rows):
        parts.append(("," if count else "") + json.dumps(row))
        if len(parts) >= 200:
            yield "".join(parts).encode()
            parts = []
    yield ("".join(parts) + "]}").encode()


def _best_pose(store: ResultStore, directory: str, files: list[str], smiles: str) -> Any:
    """The best pose of one job as an RDKit molecule: Vina's first pose, or the ligand of a co-folded
    structure. Raises ValueError saying why there is none."""
    from rdkit import Chem

    if "poses.sdf" in files:
        supplier = Chem.SDMolSupplier()
        supplier.SetData(store.read_bytes(f"{directory}/poses.sdf").decode(), removeHs=False)
        first = supplier[0] if len(supplier) else None
        if first is None:
            raise ValueError("poses.sdf holds no record RDKit can read")
        return first
    if "structure.cif" not in files:
        raise ValueError("the job has no structure file")
    if smiles.lower().startswith("ccd:"):
        raise ValueError("a CCD ligand has no SMILES to rebuild its bonds from")
    import gemmi
    from rdkit.Chem import AllChem

    structure = gemmi.read_structure_string(store.read_bytes(f"{directory}/structure.cif").decode())
    chain = next((c for c in structure[0] if c.name == "B"), None)
    if chain is None:
        raise ValueError("structure.cif has no ligand chain B")
    template = Chem.MolFromSmiles(smiles)
    template = max(Chem.GetMolFrags(template, asMols=True), key=lambda m: m.GetNumHeavyAtoms())
    atoms = [a for r in chain for a in r if a.element.name != "H"]
    if len(atoms) != template.GetNumAtoms():
        raise ValueError(f"chain B has {len(atoms)} heavy atoms, the SMILES {template.GetNumAtoms()}")
    mol = Chem.Mol(template)
    conformer = Chem.Conformer(mol.GetNumAtoms())
    for i, atom in enumerate(atoms):
        conformer.SetAtomPosition(i, (atom.pos.x, atom.pos.y, atom.pos.z))
    mol.RemoveAllConformers()
    mol.AddConformer(conformer, assignId=True)
    AllChem.AssignStereochemistryFrom3D(mol)
    return mol


def _sd_value(value: Any) -> str | None:
    """A value as one SD property line, or None to leave it out. RDKit's writer escapes nothing: a line
    break (an error's traceback) would end the value early, a line that begins with $$$$ the record."""
    if value is None:
        return None
    text = " ".join(str(value).splitlines()).strip()
    return text if text and not text.startswith("$$$$") else None


def _sdf_records(store: ResultStore, batch_id: str, rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    """One record per completed ligand, best first: the ligand's name as its title, its row as SD
    properties, each on one line (RDKit's writer; a value beginning with ``$$$$``, which would end the
    record, is left out; names cannot begin with it). A ligand whose pose cannot be read is
    still there: a record without atoms whose ``pose_error`` says why (counted in the log)."""
    from rdkit import Chem

    out = io.StringIO()
    writer = Chem.SDWriter(out)
    missing = 0
    for row in rows:
        if row["status"] != JobStatus.COMPLETED.value:
            continue
        directory = store.job_dir(row["job_id"], batch_id)
        error = None
        try:
            mol = Chem.Mol(_best_pose(store, directory, store.list_files(directory), row["ligand_smiles"]))
            for name in mol.GetPropNames():
                mol.ClearProp(name)
        except ValueError as exc:
            error = str(exc)
        except Exception as exc:  # noqa: BLE001  (an unreadable structure is reported in the file, never dropped)
            error = f"{type(exc).__name__}: {exc}"
        if error is not None:
            mol = Chem.Mol()
            missing += 1
        mol.SetProp("_Name", row["ligand_name"])
        for key, value in [*row.items(), ("pose_error", error)]:
            text = _sd_value(value)
            if text is not None:
                mol.SetProp(key, text)
        writer.write(mol)
        writer.flush()
        yield out.getvalue().encode()
        out.seek(0)
        out.truncate()
    writer.close()
    yield out.getvalue().encode()
    if missing:
        logger.warning(
            "SDF export of batch %s: %d completed ligands have no readable pose (records without "
            "atoms, with pose_error)",
            batch_id,
            missing,
        )


def _zip_stream(
    store: ResultStore, batch_id: str, columns: list[str], rows: Iterator[dict[str, Any]]
) -> Iterator[bytes]:
    sink = _Sink()
    manifest = io.StringIO()
    writer = csv.DictWriter(manifest, fieldnames=[*columns, "files"], extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for row in rows:
            names: list[str] = []
            if row["status"] == JobStatus.COMPLETED.value:
                directory = store.job_dir(row["job_id"], batch_id)
                for name in store.list_files(directory):
                    if name.endswith((".cif", ".pdb", ".sdf")):
                        arcname = f"structures/{row['job_id']}/{name}"
                        archive.writestr(arcname, store.read_bytes(f"{directory}/{name}"))
                        names.append(arcname)
            writer.writerow({**{k: _spreadsheet_safe(v) for k, v in row.items()}, "files": " ".join(names)})
            yield sink.take()
        archive.writestr("manifest.csv", manifest.getvalue())
    yield sink.take()


# What a Parquet column holds, declared: the row's own columns, the ligand properties, the cost, and
# each predictor's declared result fields. Only a plugin's undeclared fields are typed from the data
# (numbers if every value in the first rows is one, else text).
_TEXT_COLUMNS = {
    "job_id",
    "ligand_name",
    "ligand_smiles",
    "status",
    "duplicate_of",
    "error_code",
    "error_message",
    *TEXT_PROPERTIES,
}
_NUMBER_COLUMNS = {"rank", "batch_index", *(set(PROPERTY_FIELDS) - set(TEXT_PROPERTIES)), *COST_COLUMNS}


def _declared_numeric(column: str, predictor: str) -> bool | None:
    """True for a number column, False for text, None when nothing declares it."""
    if column in _NUMBER_COLUMNS:
        return True
    if column in _TEXT_COLUMNS:
        return False
    spec = SPECS.get(predictor)
    declared = spec.field(column) if spec else None
    return None if declared is None else declared.kind == "number"


def _parquet_stream(columns: list[str], predictor: str, rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    batch: list[dict[str, Any]] = []
    schema: pa.Schema | None = None
    sink = _Sink()
    writer: pq.ParquetWriter | None = None

    def flush() -> None:
        nonlocal schema, writer
        if schema is None:
            fields = []
            for c in columns:
                is_number = _declared_numeric(c, predictor)
                if is_number is None:
                    values = [r.get(c) for r in batch if r.get(c) is not None]
                    is_number = bool(values) and all(number(v) is not None for v in values)
                fields.append(pa.field(c, pa.float64() if is_number else pa.string()))
            schema = pa.schema(fields)
            writer = pq.ParquetWriter(sink, schema)
        data = {}
        for f in schema:
            values = [r.get(f.name) for r in batch]
            data[f.name] = [(number(v) if f.type == pa.float64() else (None if v is None else str(v))) for v in values]
        assert writer is not None
        writer.write_table(pa.table(data, schema=schema))

    for row in rows:
        batch.append(row)
        if len(batch) >= 5000:
            flush()
            batch = []
            yield sink.take()
    if batch or schema is None:
        flush()
    assert writer is not None
    writer.close()
    yield sink.take()


def export_stream(
    fmt: str, manager: QueueManager, store: ResultStore, batch_id: str, ranking: Ranking, settings: Settings
) -> Iterator[bytes]:
    """The export of a batch as a stream of bytes, in ranking order."""
    if fmt not in EXPORT_FORMATS:
        raise InvalidInput(f"unknown export format {fmt!r}; one of {', '.join(EXPORT_FORMATS)}", code="invalid_format")
    rows = stream_rows(manager, batch_id, ranking, settings.price_per_accelerator_hour)
    if fmt == "csv":
        return _csv_lines(ranking.columns, rows)
    if fmt == "json":
        parent = manager.get(batch_id)
        head = {
            "batch_id": batch_id,
            "batch_name": parent["name"],
            "predictor": parent["predictor"],
            "status": parent["status"],
            "rank_by": ranking.sort_key,
            "direction": ranking.direction,
            "counts": {s.value: parent[f"n_{s.value}"] for s in JobStatus},
            "currency": settings.currency,
            "columns": ranking.columns,
            "result_columns": ranking.result_columns,
        }
        return _json_document(head, rows)
    if fmt == "sdf":
        return _sdf_records(store, batch_id, rows)
    if fmt == "zip":
        return _zip_stream(store, batch_id, ranking.columns, rows)
    return _parquet_stream(ranking.columns, manager.get(batch_id)["predictor"], rows)
