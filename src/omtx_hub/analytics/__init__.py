"""Screen analytics: ranking (:mod:`.rows`), statistics (:mod:`.stats`) and streamed exports
(:mod:`.writers`) of a batch."""

from omtx_hub.analytics.rows import (
    Position,
    Ranking,
    RankingRules,
    indexed_ranking,
    plan_rows,
    rank_batch,
    stream_rows,
)
from omtx_hub.analytics.stats import batch_stats
from omtx_hub.analytics.writers import EXPORT_FORMATS, export_stream

__all__ = [
    "EXPORT_FORMATS",
    "Position",
    "Ranking",
    "RankingRules",
    "batch_stats",
    "export_stream",
    "indexed_ranking",
    "plan_rows",
    "rank_batch",
    "stream_rows",
]
