"""GLIDE's feature definitions: the one contract between the streams, the GLIDE worker, the rankers
and the offline training jobs.

Read top to bottom:
1. Entities are the join keys: a listener (`user`), a podcast series (`show`), an installment (`episode`),
   the mode a candidate set was generated for (`candidate_mode`).
2. Every feature view has a *batch source* (Parquet under `<data_dir>/offline/` on the embedded
   profile, a PostgreSQL table on the cluster profile) that the offline jobs write and training reads
   point-in-time correct, and a *push source* that the stream processors and the GLIDE worker write
   to the online store with low latency. Both carry the same columns, so train and serve see the same
   features.
3. Feature services name what each consumer reads: `glide_inputs` (the GLIDE worker and training)
   and `ranker_candidates` (the downstream rankers).

Run stock `feast apply` / `feast ui` inside this folder (feature_store.yaml here points at the
embedded stores under ../.glide); `glide stack up` applies the same objects programmatically with
the settings of the active profile (GLIDE_PROFILE, GLIDE_DATA_DIR).
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource, ValueType
from feast.data_source import DataSource
from feast.types import Array, Bool, Float32, Int64, String, UnixTimestamp

# --- Where batch data lives -------------------------------------------------------------------
# The offline jobs write one table per view; the profile decides the storage. Kept in this file so
# that stock `feast apply` sees exactly what `glide stack up` applies.
PROFILE = os.environ.get("GLIDE_PROFILE", "embedded")
DATA_DIR = Path(os.environ.get("GLIDE_DATA_DIR", Path(__file__).resolve().parent.parent / ".glide"))
OFFLINE_DIR = DATA_DIR.expanduser().resolve() / "offline"
# Stock `feast apply` in a fresh clone: the SQLite registry and online store of feature_store.yaml
# live under ../.glide/feast, which SQLite will not create.
if PROFILE == "embedded":
    (DATA_DIR.expanduser().resolve() / "feast").mkdir(parents=True, exist_ok=True)
POSTGRES_SCHEMA = os.environ.get("GLIDE_POSTGRES_SCHEMA", "glide")
TIMESTAMP = "event_timestamp"


def batch_source(view: str) -> DataSource:
    """The offline table behind ``view``: Parquet (duckdb offline store) or PostgreSQL."""
    if PROFILE == "cluster":
        from feast.infra.offline_stores.contrib.postgres_offline_store.postgres_source import (
            PostgreSQLSource,
        )

        return PostgreSQLSource(
            name=f"{view}_batch",
            query=f'SELECT * FROM "{POSTGRES_SCHEMA}"."{view}"',
            timestamp_field=TIMESTAMP,
        )
    return FileSource(
        name=f"{view}_batch", path=str(OFFLINE_DIR / f"{view}.parquet"), timestamp_field=TIMESTAMP
    )


def push_source(view: str) -> PushSource:
    """Low-latency writes to the online store; push name is ``<view>_push``."""
    return PushSource(name=f"{view}_push", batch_source=batch_source(view))


# --- Entities ---------------------------------------------------------------------------------
user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.STRING, description="A listener.")
show = Entity(name="show", join_keys=["show_id"], value_type=ValueType.STRING, description="A podcast series.")
episode = Entity(
    name="episode", join_keys=["episode_id"], value_type=ValueType.STRING, description="One installment of a show."
)

# --- Listening state (written by the streams) --------------------------------------------------
# The paper's habit rule (§3): a show is habitual for a user with >= 600 s of listening in the past
# 28 days. `listen_seconds_28d` is the rolling total at `event_timestamp`; offline rows exist at every
# listen AND every expiry (listen + 28 d), so a point-in-time join is exact at any instant.
user_show_listening_28d = FeatureView(
    name="user_show_listening_28d",
    entities=[user, show],
    ttl=timedelta(days=365),
    schema=[
        Field(name="listen_seconds_28d", dtype=Int64, description="Seconds listened in (t-28d, t]."),
        Field(name="ever_listened", dtype=Bool, description="Any listen before t: familiar vs unfamiliar."),
        Field(name="last_listened_at", dtype=UnixTimestamp),
        Field(name="habitual", dtype=Bool, description="listen_seconds_28d >= 600."),
    ],
    source=push_source("user_show_listening_28d"),
    online=True,
    description="Per user and show: the 28-day listening total that decides habitual / familiar / unfamiliar.",
)

# Recent listening context, newest last. Feast has no nested arrays, so SID codes are flattened:
# `recent_sid_codes[i*M:(i+1)*M]` are the M codes of `recent_episode_ids[i]`.
user_recent_sids = FeatureView(
    name="user_recent_sids",
    entities=[user],
    ttl=timedelta(days=365),
    schema=[
        Field(name="recent_episode_ids", dtype=Array(String)),
        Field(name="recent_sid_codes", dtype=Array(Int64), description="Flattened, M codes per episode."),
        Field(name="sid_levels", dtype=Int64, description="M, the codes per episode."),
    ],
    source=push_source("user_recent_sids"),
    online=True,
    description="The user's last N (default 50) episodes with their Semantic IDs: the prompt's history.",
)

# --- User representation (written by offline jobs) ----------------------------------------------
user_cf_embedding = FeatureView(
    name="user_cf_embedding",
    entities=[user],
    ttl=timedelta(days=365),
    schema=[
        Field(name="cf_embedding", dtype=Array(Float32), description="Collaborative-filtering user vector."),
        # A GLIDE model's projector is trained on one CF space (its manifest's cf_version); the worker
        # serves a vector of another version with the default vector instead (streams/candidates.py).
        Field(name="cf_version", dtype=String,
              description="CFModel.version of the CF model that produced the vector (its content hash)."),
    ],
    source=push_source("user_cf_embedding"),
    online=True,
    description="Long-term taste from the CF model; projected into a soft-prompt token (§4.1.2).",
)

user_context = FeatureView(
    name="user_context",
    entities=[user],
    ttl=timedelta(days=365),
    schema=[
        Field(name="locale", dtype=String),
        Field(name="country", dtype=String),
        Field(name="affinity_topics", dtype=Array(String)),
    ],
    source=push_source("user_context"),
    online=True,
    description="Light text context for the prompt.",
)

# --- Catalog (written by the catalog-updates stream) --------------------------------------------
episode_catalog = FeatureView(
    name="episode_catalog",
    entities=[episode],
    ttl=timedelta(days=3650),
    schema=[
        Field(name="show_id", dtype=String),
        Field(name="sid_codes", dtype=Array(Int64)),
        Field(name="quantizer_version", dtype=String),
        Field(name="popularity", dtype=Float32),
        Field(name="locale", dtype=String),
        Field(name="published_at", dtype=UnixTimestamp),
        Field(name="playable", dtype=Bool),
    ],
    source=push_source("episode_catalog"),
    online=True,
    description="What collision resolution and rankers need to know about an episode.",
)

# --- GLIDE output (written by the GLIDE worker at session start) --------------------------------
# The control token a set was generated with (paper §4.3.1). Candidates are keyed by (user, mode), not
# one row per user holding both lists: each mode is then its own online row with its own event
# timestamp, so the worker writes one mode's set without reading or overwriting the other (a push
# writes whole rows, and Feast's Redis store drops a row that is not newer than the stored one), the
# two sets age and refresh independently, and a ranker reads both with one batch lookup of two keys.
candidate_mode = Entity(
    name="candidate_mode", join_keys=["mode"], value_type=ValueType.STRING,
    description="The mode a candidate set was generated for: familiar | unfamiliar.",
)

glide_candidates = FeatureView(
    name="glide_candidates",
    entities=[user, candidate_mode],
    ttl=timedelta(days=2),
    schema=[
        Field(name="candidate_episode_ids", dtype=Array(String)),
        Field(name="candidate_scores", dtype=Array(Float32)),
        Field(name="model_version", dtype=String),
        Field(name="quantizer_version", dtype=String, description="The SIDs the model spoke."),
        Field(name="surface", dtype=String, description="The surface of the session start that asked."),
        Field(name="generated_at", dtype=UnixTimestamp),
        # The refresh policy's "listened since": a newer user_recent_sids row than this means the
        # history changed after the set was generated (streams/candidates.py, refresh).
        Field(name="history_as_of", dtype=UnixTimestamp,
              description="Event time of the user_recent_sids row the set was generated from."),
    ],
    source=push_source("glide_candidates"),
    online=True,
    description="Cached beam-search candidates per user and mode, for downstream rankers.",
)

# --- Who reads what ---------------------------------------------------------------------------
glide_inputs = FeatureService(
    name="glide_inputs",
    features=[user_recent_sids, user_cf_embedding, user_context],
    description="The GLIDE worker's and the training jobs' inputs for one user.",
)

ranker_candidates = FeatureService(
    name="ranker_candidates",
    features=[glide_candidates],
    description="GLIDE's cached candidates, as rankers read them: one row per (user_id, mode).",
)

ALL_OBJECTS = [
    user,
    show,
    episode,
    candidate_mode,
    user_show_listening_28d,
    user_recent_sids,
    user_cf_embedding,
    user_context,
    episode_catalog,
    glide_candidates,
    glide_inputs,
    ranker_candidates,
]
