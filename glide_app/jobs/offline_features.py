"""Write the batch side of every Feast feature view from raw events, with the same rule the
streams apply online (glide/habits.py), so training reads exactly what serving reads.

Embedded profile: one Parquet file per view under ``<data_dir>/offline/`` (duckdb offline store).
Cluster profile: one table per view in PostgreSQL schema ``GLIDE_POSTGRES_SCHEMA``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from glide import habits
from glide.config import GlideSettings


def feature_tables(
    listens: pd.DataFrame,
    users: pd.DataFrame,
    episodes: pd.DataFrame,
    assignments: Mapping[str, Sequence[int]],
    quantizer_version: str,
    cf_embeddings: pd.DataFrame | None = None,
    cf_timestamp: pd.Timestamp | None = None,
    cf_version: str | None = None,
    context_timestamp: pd.Timestamp | None = None,
) -> dict[str, pd.DataFrame]:
    """The batch rows of each view, keyed by view name (columns as in feature_repo/definitions.py).

    ``cf_version`` (``CFModel.version``) is stamped on every CF vector ("" when not given: a vector no
    versioned model accepts online).
    """
    levels = len(next(iter(assignments.values()))) if assignments else 0
    start = context_timestamp if context_timestamp is not None else listens["ts"].min()
    tables: dict[str, pd.DataFrame] = {}
    tables["user_show_listening_28d"] = habits.user_show_feature_history(listens)
    recent = habits.user_recent_sids_history(listens, assignments)
    recent["sid_levels"] = levels
    tables["user_recent_sids"] = recent
    tables["user_context"] = pd.DataFrame({
        "user_id": users["user_id"],
        "locale": users["locale"],
        "country": users["country"],
        "affinity_topics": users["affinity_topics"].map(list),
        "event_timestamp": start,
    })
    coded = episodes[episodes["episode_id"].isin(assignments.keys())]
    tables["episode_catalog"] = pd.DataFrame({
        "episode_id": coded["episode_id"],
        "show_id": coded["show_id"],
        "sid_codes": [list(map(int, assignments[e])) for e in coded["episode_id"]],
        "quantizer_version": quantizer_version,
        "popularity": coded["popularity"].astype(np.float32),
        "locale": coded["locale"],
        "published_at": coded["published_at"],
        "playable": coded["playable"].astype(bool),
        "event_timestamp": coded["published_at"],
    })
    if cf_embeddings is None:  # every view needs its table, even before the first CF model
        cf_embeddings, cf_timestamp = pd.DataFrame({"user_id": [], "embedding": []}), start
    if cf_timestamp is None:
        raise ValueError("cf_timestamp is required with cf_embeddings: it is when they became known")
    cf_embeddings = cf_embeddings.reset_index(drop=True)  # columns below are aligned by position
    tables["user_cf_embedding"] = pd.DataFrame({
        "user_id": pd.Series(cf_embeddings["user_id"], dtype=object),
        "cf_embedding": pd.Series(
            [np.asarray(v, dtype=np.float32).tolist() for v in cf_embeddings["embedding"]], dtype=object),
        "cf_version": pd.Series(cf_version or "", index=cf_embeddings.index, dtype=object),
        "event_timestamp": pd.Series(cf_timestamp, index=cf_embeddings.index, dtype="datetime64[ns, UTC]"),
    })
    return tables


def write_tables(settings: GlideSettings, tables: Mapping[str, pd.DataFrame]) -> dict[str, int]:
    """Store the batch rows where the profile's offline store reads them; returns rows per view."""
    counts = {}
    if settings.profile == "cluster":
        import sqlalchemy

        engine = sqlalchemy.create_engine(settings.postgres_url)
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text(f'CREATE SCHEMA IF NOT EXISTS "{settings.postgres_schema}"'))
        for view, frame in tables.items():
            frame.to_sql(view, engine, schema=settings.postgres_schema, if_exists="replace", index=False,
                         chunksize=10_000, method="multi")
            counts[view] = len(frame)
        engine.dispose()
        return counts
    settings.offline_dir.mkdir(parents=True, exist_ok=True)
    for view, frame in tables.items():
        tmp = settings.offline_dir / f".{view}.parquet.tmp"
        pq.write_table(_arrow(view, frame), tmp)
        tmp.replace(settings.offline_dir / f"{view}.parquet")  # readers never see half a file
        counts[view] = len(frame)
    return counts


# Explicit types for list columns, so that an empty table still has the schema Feast expects.
_LIST_TYPES = {
    "recent_episode_ids": pa.list_(pa.string()),
    "recent_sid_codes": pa.list_(pa.int64()),
    "affinity_topics": pa.list_(pa.string()),
    "sid_codes": pa.list_(pa.int64()),
    "cf_embedding": pa.list_(pa.float32()),
}


def _arrow(view: str, frame: pd.DataFrame) -> pa.Table:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    fields = []
    for f in table.schema:
        if f.name in _LIST_TYPES:
            f = pa.field(f.name, _LIST_TYPES[f.name])
        elif f.type == pa.null():  # empty table: ids and text columns (user_id, cf_version) are strings
            f = pa.field(f.name, pa.string())
        fields.append(f)
    return table.cast(pa.schema(fields))
