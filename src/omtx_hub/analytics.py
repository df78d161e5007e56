"""Screen analytics: one flat row per ligand, ranking, statistics and streamed exports.

A row holds the ligand (name, SMILES, properties), its status and error, every scalar result of
the predictor under the predictor's own field names (units in the names, or documented in
docs/analytics.md for boltz's), and its measured cost. Rows are produced in two passes so that a
100,000-ligand export never holds every row: pass 1 reads the children once and keeps only what
ordering needs (index, sort value, which columns exist); pass 2 reads the children again in that
order, a few hundred at a time, and the writers turn each row into bytes as they go.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import statistics
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from omtx_hub.domain import JobStatus
from omtx_hub.errors import InvalidInput
from omtx_hub.ligands import PROPERTY_FIELDS
from omtx_hub.queue import QueueManager
from omtx_hub.settings import Settings
from omtx_hub.storage import ResultStore

__all__ = ["EXPORT_FORMATS", "Ranking", "batch_stats", "export_stream", "plan_rows", "row_of", "stream_rows"]

EXPORT_FORMATS = {"csv": "text/csv", "json": "application/json", "sdf": "chemical/x-mdl-sdfile",
                  "zip": "application/zip", "parquet": "application/vnd.apache.parquet"}  # fmt: skip
BASE_COLUMNS = ["rank", "job_id", "batch_index", "ligand_name", "ligand_smiles", "status"]
COST_COLUMNS = ["wall_seconds", "accelerator_seconds", "cost"]
TAIL_COLUMNS = ["duplicate_of", "error_code", "error_message"]
_PAGE = 500
logger = logging.getLogger("omtx_hub.analytics")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return float(value)


def _scalars(results: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (results or {}).items() if isinstance(v, (int, float, str, bool)) or v is None}


def _property_cells(props: dict[str, Any] | None) -> dict[str, Any]:
    cells: dict[str, Any] = {}
    for name in PROPERTY_FIELDS:
        value = (props or {}).get(name)
        cells[name] = "; ".join(value) if isinstance(value, list) else value
    return cells


def row_of(child: dict[str, Any], price_per_hour: float) -> dict[str, Any]:
    """The flat row of one child (no rank)."""
    error = child["error"] or {}
    accel = child["accelerator_seconds"]
    return {
        "job_id": child["job_id"],
        "batch_index": child["batch_index"],
        "ligand_name": child["input"]["ligand_name"],
        "ligand_smiles": child["input"]["ligand_smiles"],
        "status": child["status"],
        **_property_cells(child["input"].get("properties")),
        **_scalars(child["results"]),
        "wall_seconds": child["wall_seconds"],
        "accelerator_seconds": accel,
        "cost": round(accel / 3600 * price_per_hour, 6) if accel is not None and price_per_hour else None,
        "error_code": error.get("code"),
        "error_message": error.get("message"),
    }


@dataclass
class Ranking:
    """Pass 1: the order of the rows, their ranks, the columns that exist, duplicates by InChIKey."""

    order: list[int]
    ranks: dict[int, int]
    columns: list[str]
    duplicates: dict[int, str] = field(default_factory=dict)
    sort_key: str = ""
    direction: str = "asc"
    result_columns: list[str] = field(default_factory=list)  # the predictor's own fields among ``columns``


def plan_rows(
    manager: QueueManager,
    batch_id: str,
    *,
    sort_key: str,
    direction: str,
    status: str | None = None,
    top: int | None = None,
    observe: Callable[[dict[str, Any]], None] | None = None,
) -> Ranking:
    """Read the children once; rank completed ones with a value of ``sort_key`` (best first), then the rest.

    ``observe`` is shown every child as it is read (its batch_index, status, input and results), so
    a caller that needs more than the ranking (statistics) does not read the batch a second time."""
    scored: list[tuple[float, int]] = []
    rest: list[int] = []
    result_columns: dict[str, None] = {sort_key: None}
    first_by_key: dict[str, str] = {}
    duplicates: dict[int, str] = {}
    for child in manager.iter_children(batch_id, columns=("batch_index", "status", "input", "results")):
        if observe is not None:
            observe(child)
        index = child["batch_index"]
        props = child["input"].get("properties") or {}
        key = props.get("inchikey")
        if key:
            if key in first_by_key:
                duplicates[index] = first_by_key[key]
            else:
                first_by_key[key] = child["input"]["ligand_name"]
        if status is not None and child["status"] != status:
            continue
        results = child["results"] or {}
        result_columns.update(dict.fromkeys(k for k, v in _scalars(results).items()))
        value = _number(results.get(sort_key))
        if value is None and sort_key in PROPERTY_FIELDS:
            value = _number(props.get(sort_key))
        if child["status"] == JobStatus.COMPLETED.value and value is not None:
            scored.append((value if direction == "asc" else -value, index))
        else:
            rest.append(index)
    scored.sort()
    ranks = {index: position for position, (_, index) in enumerate(scored, start=1)}
    order = [index for _, index in scored] + rest
    if top is not None:
        order = order[:top]
    results_only = [c for c in result_columns if c not in PROPERTY_FIELDS and c not in BASE_COLUMNS]
    columns = BASE_COLUMNS + results_only + list(PROPERTY_FIELDS) + COST_COLUMNS + TAIL_COLUMNS
    return Ranking(order, ranks, columns, duplicates, sort_key, direction, results_only)


def stream_rows(manager: QueueManager, batch_id: str, ranking: Ranking, price_per_hour: float) -> Iterator[dict[str, Any]]:
    """Pass 2: the rows in ranking order, read a page at a time."""
    for start in range(0, len(ranking.order), _PAGE):
        wanted = ranking.order[start : start + _PAGE]
        found = {c["batch_index"]: c for c in manager.children_by_index(batch_id, wanted)}
        for index in wanted:
            child = found.get(index)
            if child is None:
                continue  # pruned in between
            row = row_of(child, price_per_hour)
            row["rank"] = ranking.ranks.get(index)
            row["duplicate_of"] = ranking.duplicates.get(index)
            yield row


# ---------------------------------------------------------------------------------- statistics


def _histogram(values: list[float], bins: int = 20) -> dict[str, Any]:
    low, high = min(values), max(values)
    width = (high - low) / bins if high > low else 1.0
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int((v - low) / width))] += 1
    return {"edges": [low + i * width for i in range(bins + 1)], "counts": counts}


def batch_stats(
    manager: QueueManager, batch_id: str, *, primary: str, direction: str, settings: Settings, top: int = 10
) -> dict[str, Any]:
    """Counts by status, summary and histogram of every numeric field, the top N, cost sums."""
    parent = manager.get(batch_id)
    numbers: dict[str, list[float]] = {}

    def collect(child: dict[str, Any]) -> None:
        if child["status"] != JobStatus.COMPLETED.value:
            return
        fields = {**_scalars(child["results"]),
                  **{k: v for k, v in (child["input"].get("properties") or {}).items() if k in PROPERTY_FIELDS}}  # fmt: skip
        for name, value in fields.items():
            number = _number(value)
            if number is not None:
                numbers.setdefault(name, []).append(number)

    ranking = plan_rows(manager, batch_id, sort_key=primary, direction=direction, top=top, observe=collect)
    summary = {
        name: {"count": len(vals), "min": min(vals), "median": statistics.median(vals),
               "mean": statistics.fmean(vals), "max": max(vals), "histogram": _histogram(vals)}
        for name, vals in sorted(numbers.items())
    }  # fmt: skip
    best = [
        {k: row.get(k) for k in ("rank", "job_id", "ligand_name", "ligand_smiles", primary, "heavy_atoms",
                                  "ligand_efficiency_kcal_mol_per_heavy_atom", "qed")}
        for row in stream_rows(manager, batch_id, ranking, settings.price_per_accelerator_hour)
        if row["rank"] is not None
    ]  # fmt: skip
    costs = manager.batch_costs(batch_id)
    price = settings.price_per_accelerator_hour
    costs["cost"] = round(costs["accelerator_seconds"] / 3600 * price, 6) if price else None
    costs["cost_per_ligand"] = (costs["cost"] / costs["jobs_measured"]) if costs["cost"] is not None and costs["jobs_measured"] else None
    costs["price_per_accelerator_hour"] = price or None
    costs["currency"] = settings.currency
    counts = {s.value: parent[f"n_{s.value}"] for s in JobStatus}
    return {"batch_id": batch_id, "predictor": parent["predictor"], "rank_by": primary, "direction": direction,
            "counts": {"total": parent["n_total"], **counts}, "fields": summary, "top": best, "cost": costs}  # fmt: skip


# ---------------------------------------------------------------------------------- exports


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

    structure = gemmi.read_structure_string(store.read_bytes(f"{directory}/structure.cif").decode())  # type: ignore[attr-defined]
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
        except Exception as exc:  # an unreadable structure is reported in the file, never dropped
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
        logger.warning("SDF export of batch %s: %d completed ligands have no readable pose (records without "
                       "atoms, with pose_error)", batch_id, missing)  # fmt: skip


def _zip_stream(store: ResultStore, batch_id: str, columns: list[str], rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
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


def _parquet_stream(columns: list[str], rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    numeric = {"rank", "batch_index", "heavy_atoms", "molecular_weight_da", "clogp", "hbd", "hba", "tpsa_angstrom2",
               "rotatable_bonds", "qed", "lipinski_violations", *COST_COLUMNS}  # fmt: skip
    batch: list[dict[str, Any]] = []
    schema: pa.Schema | None = None
    sink = _Sink()
    writer: pq.ParquetWriter | None = None

    def flush() -> None:
        nonlocal schema, writer
        if schema is None:  # types from the first rows: numbers stay numbers, anything else is text
            fields = []
            for c in columns:
                values = [r.get(c) for r in batch if r.get(c) is not None]
                is_number = c in numeric or (values and all(_number(v) is not None for v in values))
                fields.append(pa.field(c, pa.float64() if is_number else pa.string()))
            schema = pa.schema(fields)
            writer = pq.ParquetWriter(sink, schema)
        data = {}
        for f in schema:
            values = [r.get(f.name) for r in batch]
            data[f.name] = [(_number(v) if f.type == pa.float64() else (None if v is None else str(v))) for v in values]
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
        head = {"batch_id": batch_id, "batch_name": parent["name"], "predictor": parent["predictor"],
                "status": parent["status"], "rank_by": ranking.sort_key, "direction": ranking.direction,
                "counts": {s.value: parent[f"n_{s.value}"] for s in JobStatus}, "currency": settings.currency,
                "columns": ranking.columns, "result_columns": ranking.result_columns}  # fmt: skip
        return _json_document(head, rows)
    if fmt == "sdf":
        return _sdf_records(store, batch_id, rows)
    if fmt == "zip":
        return _zip_stream(store, batch_id, ranking.columns, rows)
    return _parquet_stream(ranking.columns, rows)
