"""Rows and ranking: one flat row per ligand, ranked in two passes.

A row holds the ligand (name, SMILES, properties), its status and error, every scalar result of
the predictor under the predictor's own field names, and its measured cost. Pass 1
(:func:`plan_rows`) reads the children once and keeps only what ordering needs (index, sort value,
which columns exist); pass 2 (:func:`stream_rows`) reads them again in that order, a few hundred at
a time, so a 100,000-ligand export never holds every row.

Most requests skip pass 1 (:func:`indexed_ranking`). By the predictor's primary score (the batch
page, exports, the top of the statistics, a rescoring funnel) the rows are walked from the ``score``
column's index in keyset pages (a whole batch, its best N, or a page after a :class:`Position`), and
their duplicates come from the ``inchikey`` index, so the best N cost the same at a million children
as at a hundred. The best N by any other numeric field are chosen by the database in one pass over
the JSON. Rows are made as lists of cells in column order (:func:`stream_cells`; :func:`stream_rows`
gives them as dicts).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import re
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from omtx_hub.domain import JobStatus, number, scalar_results
from omtx_hub.errors import InvalidInput
from omtx_hub.interactions import Requirement, parse_requirements
from omtx_hub.ligands import PROPERTY_FIELDS
from omtx_hub.queue import QueueManager

__all__ = [
    "BASE_COLUMNS",
    "COST_COLUMNS",
    "ROW_COLUMNS",
    "TAIL_COLUMNS",
    "Position",
    "Ranking",
    "RankingRules",
    "RowMaker",
    "duplicate_names",
    "indexed_ranking",
    "number",
    "plan_rows",
    "rank_batch",
    "stream_cells",
    "stream_rows",
]


BASE_COLUMNS = ["rank", "job_id", "batch_index", "ligand_name", "ligand_smiles", "status"]
COST_COLUMNS = ["wall_seconds", "accelerator_seconds", "cost"]
TAIL_COLUMNS = ["duplicate_of", "error_code", "error_message"]
_PAGE = 500
_WALK_PAGE = 2000  # a keyset page of a walk (5,000 was slower on SQLite: more rows outlive a collection)


_SCALARS = frozenset({int, float, str, bool, type(None)})
_PROPERTIES = frozenset(PROPERTY_FIELDS)


def _is_cell(value: Any) -> bool:
    """Whether a value is one table cell: a number, text, a boolean, or a list of names."""
    return value.__class__ in _SCALARS or (value.__class__ is list and all(v.__class__ is str for v in value))


def _cell(value: Any) -> Any:
    """A value as its table cell (see :func:`omtx_hub.domain.scalar_results`): a list of names joined
    with ``; ``; None for what is not one cell (every pose's score)."""
    if value.__class__ is list:
        return "; ".join(value) if all(v.__class__ is str for v in value) else None
    return value if value.__class__ in _SCALARS else None


class RowMaker:
    """Makes the flat rows of a ranking: the list of a row's cells in the order of
    ``ranking.columns``, with the predictor's one-cell results under their own names."""

    def __init__(self, ranking: Ranking, price_per_hour: float) -> None:
        self.columns = ranking.columns
        self.results = ranking.result_columns
        first_property = len(BASE_COLUMNS) + len(self.results)  # where the property cells begin
        self.shadowing = [(first_property + PROPERTY_FIELDS.index(name), name) for name in ranking.shadowing]
        self.price_per_second = price_per_hour / 3600

    def __call__(self, child: dict[str, Any], rank: int | None, duplicate_of: str | None) -> list[Any]:
        ligand = child["input"]
        results = child["results"] or {}
        error = child["error"] or {}
        accel = child["accelerator_seconds"]
        cells = [rank, child["job_id"], child["batch_index"], ligand["ligand_name"], ligand["ligand_smiles"]]
        cells.append(child["status"])
        cells += [v if v.__class__ in _SCALARS else _cell(v) for v in map(results.get, self.results)]
        props = ligand.get("properties") or {}
        cells += [v if v.__class__ in _SCALARS else _cell(v) for v in map(props.get, PROPERTY_FIELDS)]
        for position, name in self.shadowing:
            if name in results and _is_cell(results[name]):
                cells[position] = _cell(results[name])
        cost = round(accel * self.price_per_second, 6) if accel is not None and self.price_per_second else None
        cells += (child["wall_seconds"], accel, cost, duplicate_of, error.get("code"), error.get("message"))
        return cells


@dataclass(frozen=True)
class Position:
    """Where a page of a walk ended: the rank of its last ranked row, and its score and index
    (``score`` None: the page ended among the unscored rows, after ``index``). As an opaque cursor,
    the ``after`` of the next page."""

    rank: int
    score: float | None
    index: int

    def cursor(self) -> str:
        return base64.urlsafe_b64encode(json.dumps([self.rank, self.score, self.index]).encode()).decode().rstrip("=")

    @classmethod
    def of_cursor(cls, cursor: str) -> Position:
        try:
            rank, score, index = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
            if not (type(rank) is int and type(index) is int and (score is None or type(score) in (int, float))):
                raise ValueError(cursor)
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
            raise InvalidInput("after is not a cursor this API issued", code="invalid_cursor") from exc
        return cls(rank, None if score is None else float(score), index)


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
    rules: RankingRules = field(default_factory=lambda: RankingRules())
    # walk: no ``order`` was planned; the rows are read from the score index in keyset pages (the
    # scored ones best first, then the others of ``status`` in submission order), ``limit`` of them
    walk: bool = False
    status: str | None = None
    limit: int | None = None
    # result fields named as a ligand property (Vina's heavy_atoms): a row's value fills that cell
    shadowing: list[str] = field(default_factory=list)
    # a walk's page: where the previous page ended (None: from the best row); and, as it streams,
    # where this one has got to and how many rows it has given
    start: Position | None = None
    reached: Position | None = None
    given: int = 0
    # a walk: how many children its batch had (a whole export is made by a pool from 100,000 on)
    children: int = 0

    def next_cursor(self) -> str | None:
        """After a walk of ``limit`` rows has streamed: the ``after`` of the next page (None: no
        more rows, or not a page of a walk)."""
        full = self.walk and self.limit is not None and self.given == self.limit
        return self.reached.cursor() if full and self.reached is not None else None


@dataclass(frozen=True)
class RankingRules:
    """What a pose must show to be ranked: every required interaction, and with ``pose_checks``
    ``"require"``, passed PoseBusters checks. A completed ligand that does not is listed after the
    ranked ones, without a rank."""

    required_interactions: tuple[Requirement, ...] = ()
    pose_checks: str = "any"  # or "require"

    def admit(self, results: dict[str, Any]) -> bool:
        if self.pose_checks == "require" and results.get("pose_checks_passed") is not True:
            return False
        if not self.required_interactions:
            return True
        contacts = set(str(results.get("interactions") or "").split(", "))
        return all(req.met_by(contacts) for req in self.required_interactions)

    @classmethod
    def of_batch(cls, parent: dict[str, Any]) -> RankingRules:
        """The rules the batch was submitted with (none: every scored ligand is ranked)."""
        stored = (parent.get("input") or {}).get("ranking") or {}
        required = tuple(parse_requirements(stored.get("required_interactions") or []))
        return cls(required, stored.get("pose_checks") or "any")

    def as_document(self) -> dict[str, Any]:
        return {"required_interactions": [str(r) for r in self.required_interactions], "pose_checks": self.pose_checks}


def plan_rows(
    manager: QueueManager,
    batch_id: str,
    *,
    sort_key: str,
    direction: str,
    status: str | None = None,
    top: int | None = None,
    observe: Callable[[dict[str, Any]], None] | None = None,
    rules: RankingRules | None = None,
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
        result_columns.update(dict.fromkeys(k for k, v in scalar_results(results).items()))
        value = number(results.get(sort_key))
        if value is None and sort_key in PROPERTY_FIELDS:
            value = number(props.get(sort_key))
        admitted = rules is None or rules.admit(results)
        if child["status"] == JobStatus.COMPLETED.value and value is not None and admitted:
            scored.append((value if direction == "asc" else -value, index))
        else:
            rest.append(index)
    scored.sort()
    ranks = {index: position for position, (_, index) in enumerate(scored, start=1)}
    order = [index for _, index in scored] + rest
    if top is not None:
        order = order[:top]
    return _ranking(result_columns, order, ranks, duplicates, sort_key, direction, rules or RankingRules())


def indexed_ranking(
    manager: QueueManager,
    parent: dict[str, Any],
    *,
    sort_key: str,
    direction: str,
    top: int | None,
    status: str | None = None,
    rules: RankingRules | None = None,
) -> Ranking | None:
    """The rows as :func:`plan_rows` ranks them, without reading every child in Python; None when
    that cannot be done (ranking rules, which need each pose's results; a whole batch by another
    field than the primary score, or one from before its result columns were kept), and the caller
    plans the rows instead.

    By the primary score (status none or completed), nothing is read yet: :func:`stream_rows` walks
    the score index page by page (the best ``top`` of it, or all), under the batch's kept
    ``result_columns``. A batch from before they were kept has its best ``top`` read now from the
    index. The best ``top`` by another score of the predictor, or by a property whose best ``top``
    the batch's aggregation kept, are read now from ``job_scores``; by any other numeric result or
    property, by one pass of the database over the batch's JSON. Such rows read now bring their own
    columns (plan_rows lists a field that any child has)."""
    if rules is not None and rules != RankingRules():
        return None
    batch_id = parent["job_id"]
    wanted = ("batch_index", "name", "inchikey", "input", "results")
    ranked: list[dict[str, Any]]
    rest: Callable[[int], list[dict[str, Any]]]
    if manager.score_field(parent["predictor"]) == sort_key and status in (None, JobStatus.COMPLETED.value):
        kept = parent.get("result_columns")
        if kept is not None:
            walk = _walk_ranking(kept, sort_key=sort_key, direction=direction, status=status, top=top)
            walk.children = parent["n_total"]
            return walk
        if top is None:
            return None
        ranked = manager.ranked_children(batch_id, direction=direction, limit=top, columns=wanted)

        def rest(n: int) -> list[dict[str, Any]]:
            return manager.unscored_children(batch_id, status=status, limit=n, columns=wanted)

    elif top is not None and _PLAIN_NAME.fullmatch(sort_key):
        with_property = sort_key in _PROPERTIES
        other_scores = manager.sortable_fields(parent["predictor"])
        ranked = []  # only completed children are ranked
        if status in (None, JobStatus.COMPLETED.value):
            if (sort_key in other_scores and not with_property) or sort_key in _indexed_properties(parent, top):
                ranked = manager.best_by_score(batch_id, field=sort_key, direction=direction, limit=top, columns=wanted)
            else:
                ranked = manager.best_by_field(
                    batch_id,
                    field=sort_key,
                    with_property=with_property,
                    direction=direction,
                    limit=top,
                    columns=wanted,
                )

        def rest(n: int) -> list[dict[str, Any]]:
            return manager.unranked_by_field(
                batch_id, field=sort_key, with_property=with_property, status=status, limit=n, columns=wanted
            )

    else:
        return None
    return _read_ranking(manager, batch_id, ranked, rest, sort_key=sort_key, direction=direction, top=top)


def _indexed_properties(parent: dict[str, Any], top: int) -> list[str]:
    """The properties whose best ``top`` (either way) the batch's aggregation kept in ``job_scores``
    (none until the batch is aggregated: a batch reopened by a retry ranks them by the JSON pass
    until it is aggregated again)."""
    summary = parent.get("results")
    if parent.get("aggregated_at") is None or not isinstance(summary, dict):
        return []
    index = summary.get("property_index") or {}
    return list(index.get("fields") or ()) if top <= index.get("ends", 0) else []


_PLAIN_NAME = re.compile(r"[A-Za-z0-9_]+")  # a field the database's JSON path takes as it is


def _walk_ranking(kept: list[str], *, sort_key: str, direction: str, status: str | None, top: int | None) -> Ranking:
    kept_fields: dict[str, None] = {sort_key: None, **dict.fromkeys(kept)}
    ranking = _ranking(kept_fields, [], {}, {}, sort_key, direction, RankingRules())
    ranking.walk, ranking.status, ranking.limit = True, status, top
    return ranking


def _ranking(
    seen: dict[str, None],
    order: list[int],
    ranks: dict[int, int],
    duplicates: dict[int, str],
    sort_key: str,
    direction: str,
    rules: RankingRules,
) -> Ranking:
    """A ranking whose table has the one-cell fields ``seen`` (in order) as its columns."""
    results_only = _results_only(seen)
    columns = _columns(results_only)
    return Ranking(
        order, ranks, columns, duplicates, sort_key, direction, results_only, rules, shadowing=_shadowing(seen)
    )


def _read_ranking(
    manager: QueueManager,
    batch_id: str,
    ranked: list[dict[str, Any]],
    rest: Callable[[int], list[dict[str, Any]]],
    *,
    sort_key: str,
    direction: str,
    top: int,
) -> Ranking:
    """A ranking of rows read now: the ranked ones, then (fewer than ``top``) the others in index order."""
    ranks = {row["batch_index"]: position for position, row in enumerate(ranked, start=1)}
    rows = ranked + (rest(top - len(ranked)) if len(ranked) < top else [])
    seen: dict[str, None] = {sort_key: None}
    for row in rows:
        seen.update(dict.fromkeys(scalar_results(row["results"])))
    duplicates = {
        row["batch_index"]: name
        for row, name in zip(rows, _duplicate_of(manager, batch_id, rows), strict=True)
        if name is not None
    }
    return _ranking(seen, [row["batch_index"] for row in rows], ranks, duplicates, sort_key, direction, RankingRules())


def rank_batch(
    manager: QueueManager,
    parent: dict[str, Any],
    *,
    sort_key: str,
    direction: str,
    status: str | None = None,
    top: int | None = None,
    rules: RankingRules | None = None,
    after: Position | None = None,
) -> Ranking:
    """A batch's ranking: from the score index when it can answer, else planned from every child.
    ``after``: the next ``top`` rows of a walk of the score index after that position (a page)."""
    indexed = indexed_ranking(
        manager, parent, sort_key=sort_key, direction=direction, top=top, status=status, rules=rules
    )
    if after is not None:
        if indexed is None or not indexed.walk or top is None:
            raise InvalidInput(
                "after= pages through the ranking by the primary score (with top=, no other sort, a status "
                "of completed or none, no ranking rules) of a batch that keeps its result columns",
                code="invalid_cursor",
            )
        indexed.start = after
    if indexed is not None:
        return indexed
    return plan_rows(
        manager, parent["job_id"], sort_key=sort_key, direction=direction, status=status, top=top, rules=rules
    )


def _results_only(seen: dict[str, None]) -> list[str]:
    return [c for c in seen if c not in PROPERTY_FIELDS and c not in BASE_COLUMNS]


def _shadowing(seen: dict[str, None]) -> list[str]:
    return [c for c in seen if c in _PROPERTIES]


def _columns(results_only: list[str]) -> list[str]:
    return BASE_COLUMNS + results_only + list(PROPERTY_FIELDS) + COST_COLUMNS + TAIL_COLUMNS


def _duplicate_of(manager: QueueManager, batch_id: str, children: list[dict[str, Any]]) -> list[str | None]:
    """For each child, the name of the batch's first ligand with its InChIKey when that is another one."""
    return duplicate_names(
        manager.first_by_inchikey(batch_id, [c["inchikey"] for c in children if c["inchikey"]]), children
    )


def duplicate_names(first: dict[str, tuple[int, str]], children: list[dict[str, Any]]) -> list[str | None]:
    """:func:`_duplicate_of` from ``first`` (InChIKey: the first child's index and name)."""
    return [
        first[c["inchikey"]][1] if c["inchikey"] in first and first[c["inchikey"]][0] != c["batch_index"] else None
        for c in children
    ]


# what a row is made of (RowMaker), and what the walk's cursor needs (score, index)
ROW_COLUMNS = (
    "job_id",
    "batch_index",
    "status",
    "input",
    "results",
    "error",
    "wall_seconds",
    "accelerator_seconds",
    "score",
    "inchikey",
)


def _walk(manager: QueueManager, batch_id: str, ranking: Ranking, rows: RowMaker) -> Iterator[list[Any]]:
    """Every row from the score index (from ``ranking.start`` on): the scored ones best first, a
    keyset page at a time, then the others in submission order. Nothing is planned, so the first row
    comes at once (a whole batch's first after its first page and one scan of its InChIKeys, for its
    duplicates; a top N's are looked up page by page)."""
    pages: Iterable[tuple[bool, list[dict[str, Any]]]]
    shared = None
    if ranking.limit is None:
        pages, shared = _whole_walk_duplicates(manager, batch_id, ranking, _walk_pages(manager, batch_id, ranking))
    else:
        pages = _walk_pages(manager, batch_id, ranking)
    rank = ranking.start.rank if ranking.start is not None else 0
    for ranked, page in pages:
        names = _duplicate_of(manager, batch_id, page) if shared is None else duplicate_names(shared, page)
        for child, duplicate_of in zip(page, names, strict=True):
            if ranked:
                rank += 1
            yield rows(child, rank if ranked else None, duplicate_of)
        ranking.given += len(page)
        ranking.reached = Position(rank, page[-1]["score"] if ranked else None, page[-1]["batch_index"])


def _whole_walk_duplicates(
    manager: QueueManager, batch_id: str, ranking: Ranking, pages: Iterator[tuple[bool, list[dict[str, Any]]]]
) -> tuple[Iterable[tuple[bool, list[dict[str, Any]]]], dict[str, tuple[int, str]]]:
    """The pages of a whole walk, and the first child of each InChIKey that more than one child has.
    A batch whose every child fits in the first pages (fewer than a page; no status filter, which
    would leave children out) has them found among its rows, in this process; a larger one, by one
    scan of the InChIKey index (a ten-ligand export is then two statements, not three)."""
    read: list[tuple[bool, list[dict[str, Any]]]] = []
    held = 0
    for page in pages:
        read.append(page)
        held += len(page[1])
        if held >= _WALK_PAGE:
            return itertools.chain(read, pages), manager.first_by_inchikey(batch_id, None)
    if ranking.status is not None:
        return read, manager.first_by_inchikey(batch_id, None)
    first: dict[str, tuple[int, str]] = {}
    count: Counter[str] = Counter()
    for _, rows in read:
        for child in rows:
            key = child["inchikey"]
            if key:
                count[key] += 1
                if key not in first or child["batch_index"] < first[key][0]:
                    first[key] = (child["batch_index"], child["input"]["ligand_name"])  # its name
    return read, {key: found for key, found in first.items() if count[key] > 1}


def _walk_pages(manager: QueueManager, batch_id: str, ranking: Ranking) -> Iterator[tuple[bool, list[dict[str, Any]]]]:
    """The walk's pages, each with whether its rows are ranked: the scored ones from the score
    index, then the unscored ones in submission order (from ``ranking.start`` on)."""
    start = ranking.start
    left = ranking.limit if ranking.limit is not None else -1  # rows still to give; -1: all
    if start is None or start.score is not None:
        first = (start.score, start.index) if start is not None and start.score is not None else None

        def scored(size: int, previous: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
            after = (previous[-1]["score"], previous[-1]["batch_index"]) if previous else first
            return manager.ranked_children(
                batch_id, direction=ranking.direction, limit=size, after=after, columns=ROW_COLUMNS
            )

        left = yield from _keyset_pages(scored, left, ranked=True)
    begin = start.index if start is not None and start.score is None else -1

    def unscored(size: int, previous: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
        after_index = previous[-1]["batch_index"] if previous else begin
        return manager.unscored_children(
            batch_id, status=ranking.status, limit=size, after_index=after_index, columns=ROW_COLUMNS
        )

    yield from _keyset_pages(unscored, left, ranked=False)


_Read = Callable[[int, list[dict[str, Any]] | None], list[dict[str, Any]]]


def _keyset_pages(read: _Read, left: int, *, ranked: bool) -> Generator[tuple[bool, list[dict[str, Any]]], None, int]:
    """Pages of ``read(size, previous page)`` until ``left`` rows are given (-1: all) or a page is
    shorter than asked (the last: no query to find an empty one, so a ten-ligand export is two
    queries); returns the rows still to give."""
    previous = None
    while left:
        size = _page(left)
        page = read(size, previous)
        if page:
            yield ranked, page
            left -= len(page) if left > 0 else 0
            previous = page
        if len(page) < size:
            break
    return left


def _page(left: int) -> int:
    return _WALK_PAGE if left < 0 else min(_WALK_PAGE, left)


def stream_rows(
    manager: QueueManager, batch_id: str, ranking: Ranking, price_per_hour: float
) -> Iterator[dict[str, Any]]:
    """Pass 2: the rows in ranking order, read a page at a time, as dicts keyed by ``ranking.columns``."""
    columns = ranking.columns
    for cells in stream_cells(manager, batch_id, ranking, price_per_hour):
        yield dict(zip(columns, cells, strict=True))


def stream_cells(manager: QueueManager, batch_id: str, ranking: Ranking, price_per_hour: float) -> Iterator[list[Any]]:
    """:func:`stream_rows` as lists of cells in the order of ``ranking.columns`` (what a table
    writer wants: no dict per row)."""
    rows = RowMaker(ranking, price_per_hour)
    if ranking.walk:
        yield from _walk(manager, batch_id, ranking, rows)
        return
    for start in range(0, len(ranking.order), _PAGE):
        wanted = ranking.order[start : start + _PAGE]
        found = {c["batch_index"]: c for c in manager.children_by_index(batch_id, wanted)}
        for index in wanted:
            child = found.get(index)
            if child is None:
                continue  # pruned in between
            yield rows(child, ranking.ranks.get(index), ranking.duplicates.get(index))
