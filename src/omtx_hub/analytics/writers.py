"""Writers: a ranked batch as a stream of bytes in CSV, JSON, SDF (RDKit's writer), ZIP of
structures with a manifest, or Parquet (a declared schema). Each writes as rows arrive."""

from __future__ import annotations

import csv
import functools
import io
import itertools
import json
import logging
import zipfile
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from omtx_hub.analytics.fanout import fanned_out, processes_for
from omtx_hub.analytics.rows import COST_COLUMNS, Ranking, number, stream_cells, stream_rows
from omtx_hub.domain import JobStatus
from omtx_hub.errors import InvalidInput
from omtx_hub.ligands import PROPERTY_FIELDS, TEXT_PROPERTIES
from omtx_hub.poses import best_pose
from omtx_hub.predictors.catalog import declared_field
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


def _csv_chunk(rows: list[list[Any]]) -> bytes:
    """CSV lines of ``rows``, each text cell :func:`_spreadsheet_safe`."""
    buffer = io.StringIO()
    # _spreadsheet_safe, inline: a call per cell is a third of a million-row export's time
    csv.writer(buffer, lineterminator="\n").writerows(
        ["'" + v if v.__class__ is str and v.startswith(_FORMULA_STARTS) else v for v in cells] for cells in rows
    )
    return buffer.getvalue().encode()


def _csv_lines(columns: list[str], rows: Iterator[list[Any]]) -> Iterator[bytes]:
    yield _csv_chunk([columns])
    while chunk := list(itertools.islice(rows, 500)):
        yield _csv_chunk(chunk)


def _csv_fanned(columns: list[str], chunks: Iterator[bytes]) -> Iterator[bytes]:
    """:func:`_csv_lines` with the rows' lines made by pool processes (:mod:`.fanout`); closing it
    closes them."""
    yield _csv_chunk([columns])
    yield from chunks


def _json_document(
    head: dict[str, Any], rows: Iterator[dict[str, Any]], tail: Callable[[], dict[str, Any]]
) -> Iterator[bytes]:
    """``head``'s fields, the rows as ``results``, then ``tail()``'s fields (known once the rows are out)."""
    yield (json.dumps(head)[:-1] + ', "results": [').encode()
    parts: list[str] = []
    for count, row in enumerate(rows):
        parts.append(("," if count else "") + json.dumps(row))
        if len(parts) >= 200:
            yield "".join(parts).encode()
            parts = []
    end = json.dumps(tail())
    yield ("".join(parts) + "]" + (", " + end[1:] if end != "{}" else "}")).encode()


def _reader(store: ResultStore, directory: str) -> Callable[[str], bytes]:
    """Reads one file of a job folder by name."""

    def read(name: str) -> bytes:
        return store.read_bytes(f"{directory}/{name}")

    return read


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
            mol = Chem.Mol(
                best_pose(
                    _reader(store, directory),
                    store.list_files(directory),
                    row["ligand_smiles"],
                )
            )
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


def _declared_type(column: str, predictor: str) -> str | None:
    """``number``, ``text`` or ``bool`` for a declared column, None when nothing declares it."""
    if column in _NUMBER_COLUMNS:
        return "number"
    if column in _TEXT_COLUMNS:
        return "text"
    declared = declared_field(column, predictor)
    return None if declared is None else ("text" if declared.kind == "list" else declared.kind)


def _cell(value: Any, kind: Any) -> Any:
    import pyarrow as pa

    if value is None:
        return None
    if kind == pa.float64():
        return number(value)
    if kind == pa.bool_():
        return value if isinstance(value, bool) else None
    return str(value)


_NONE = type(None)
# the Python types a column's values may all have for pyarrow to convert them as they are (NaN, in a
# number column, converted as null: from_pandas), rather than one _cell at a time
_AS_IS: dict[str, set[type]] = {"double": {float, int, _NONE}, "string": {str, _NONE}, "bool": {bool, _NONE}}


def _column(values: list[Any], kind: Any) -> Any:
    import pyarrow as pa

    if {v.__class__ for v in values} <= _AS_IS[str(kind)]:
        try:
            return pa.array(values, type=kind, from_pandas=True)
        except pa.ArrowInvalid:  # an integer a double cannot hold exactly: number() rounds it
            pass
    return pa.array([_cell(v, kind) for v in values], type=kind)


_ROW_GROUP = 5000  # rows per Parquet row group


def _parquet_schema(columns: list[str], predictor: str, first: list[list[Any]]) -> Any:
    """The file's schema: each column's declared type, else what its cells among the ``first`` rows
    are (numbers, or text)."""
    import pyarrow as pa

    types = {"number": pa.float64(), "text": pa.string(), "bool": pa.bool_()}
    by_column = [list(values) for values in zip(*first, strict=True)] if first else [[] for _ in columns]
    fields = []
    for c, cells in zip(columns, by_column, strict=True):
        kind = _declared_type(c, predictor)
        if kind is None:
            values = [v for v in cells if v is not None]
            kind = "number" if values and all(number(v) is not None for v in values) else "text"
        fields.append(pa.field(c, types[kind]))
    return pa.schema(fields)


def _arrow_table(schema: Any, rows: list[list[Any]]) -> Any:
    import pyarrow as pa

    by_column = [list(values) for values in zip(*rows, strict=True)] if rows else [[] for _ in schema]
    arrays = [_column(cells, f.type) for cells, f in zip(by_column, schema, strict=True)]
    return pa.Table.from_arrays(arrays, schema=schema)


def _arrow_chunk(schema: Any, rows: list[list[Any]]) -> bytes:
    """A chunk of rows as an Arrow IPC stream (what a pool process hands back, :mod:`.fanout`)."""
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as stream:
        stream.write_table(_arrow_table(schema, rows))
    return bytes(sink.getvalue())


def _parquet_file(schema: Any, tables: Iterable[Any]) -> Iterator[bytes]:
    """A Parquet file of ``tables`` (row groups of :data:`_ROW_GROUP` rows), streamed as it is written."""
    import pyarrow.parquet as pq

    sink = _Sink()
    writer = pq.ParquetWriter(sink, schema)
    for table in tables:
        for start in range(0, max(table.num_rows, 1), _ROW_GROUP):
            writer.write_table(table.slice(start, _ROW_GROUP))
            yield sink.take()
    writer.close()
    yield sink.take()


def _parquet_stream(columns: list[str], predictor: str, rows: Iterator[list[Any]]) -> Iterator[bytes]:
    first = list(itertools.islice(rows, _ROW_GROUP))
    schema = _parquet_schema(columns, predictor, first)

    def tables() -> Iterator[Any]:
        yield _arrow_table(schema, first)
        while chunk := list(itertools.islice(rows, _ROW_GROUP)):
            yield _arrow_table(schema, chunk)

    return _parquet_file(schema, tables())


def _parquet_fanned(
    columns: list[str],
    predictor: str,
    rows: Iterator[list[Any]],
    manager: QueueManager,
    batch_id: str,
    ranking: Ranking,
    price: float,
    workers: int,
) -> Iterator[bytes]:
    """:func:`_parquet_stream` with the rows' tables made by pool processes (:mod:`.fanout`): the
    schema comes from the first rows, made here, as it does there."""
    import pyarrow as pa

    schema = _parquet_schema(columns, predictor, list(itertools.islice(rows, _ROW_GROUP)))
    chunks = fanned_out(manager, batch_id, ranking, price, functools.partial(_arrow_chunk, schema), workers)
    yield from _parquet_file(schema, (pa.ipc.open_stream(chunk).read_all() for chunk in chunks))


def export_stream(
    fmt: str, manager: QueueManager, store: ResultStore, batch_id: str, ranking: Ranking, settings: Settings
) -> Iterator[bytes]:
    """The export of a batch as a stream of bytes, in ranking order."""
    if fmt not in EXPORT_FORMATS:
        raise InvalidInput(f"unknown export format {fmt!r}; one of {', '.join(EXPORT_FORMATS)}", code="invalid_format")
    price = settings.price_per_accelerator_hour
    if fmt in ("csv", "parquet"):
        cells = stream_cells(manager, batch_id, ranking, price)
        workers = processes_for(manager, ranking)
        if fmt == "csv":
            if workers:
                return _csv_fanned(ranking.columns, fanned_out(manager, batch_id, ranking, price, _csv_chunk, workers))
            return _csv_lines(ranking.columns, cells)
        predictor = manager.get(batch_id)["predictor"]
        if workers:
            return _parquet_fanned(ranking.columns, predictor, cells, manager, batch_id, ranking, price, workers)
        return _parquet_stream(ranking.columns, predictor, cells)
    rows = stream_rows(manager, batch_id, ranking, price)
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
            **ranking.rules.as_document(),  # what a pose had to show to be ranked
        }
        # a page of the walk ends with the cursor of the next (null after the last page)
        paged = ranking.walk and ranking.limit is not None
        return _json_document(head, rows, lambda: {"next_cursor": ranking.next_cursor()} if paged else {})
    if fmt == "sdf":
        return _sdf_records(store, batch_id, rows)
    return _zip_stream(store, batch_id, ranking.columns, rows)
