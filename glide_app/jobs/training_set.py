"""Point-in-time training inputs from Feast's offline store.

For each candidate target listen (user, show, episode, ts) we ask Feast for the features as they
stood just *before* the listen (``habits.feature_lookup_time``): the `glide_inputs` service (recent
SIDs, CF embedding, user context) plus the (user, show) listening state that decides whether the
listen is a non-habitual target and whether it is familiar or unfamiliar. These are the same views
the online worker reads, so train and serve cannot drift apart.
"""

from __future__ import annotations

import pandas as pd

from glide import habits

LISTENING_FEATURES = [
    "user_show_listening_28d:listen_seconds_28d",
    "user_show_listening_28d:ever_listened",
    "user_show_listening_28d:habitual",
]


def input_feature_refs(store) -> list[str]:
    """The `glide_inputs` service's feature refs plus the listening state of the target's show."""
    service = store.get_feature_service("glide_inputs")
    refs = [f"{p.name}:{f.name}" for p in service.feature_view_projections for f in p.features]
    return refs + LISTENING_FEATURES


def historical_inputs(store, listens: pd.DataFrame) -> pd.DataFrame:
    """One row per listen with the features known just before it (Feast get_historical_features)."""
    keep = [c for c in ("event_id", "user_id", "show_id", "episode_id", "ts", "surface", "listened_seconds")
            if c in listens.columns]
    entity_df = listens[keep].copy()
    entity_df["event_timestamp"] = habits.feature_lookup_time(entity_df["ts"])
    joined = store.get_historical_features(entity_df=entity_df, features=input_feature_refs(store)).to_df()
    # Feast does not promise row order; restore the listens' order.
    key = "event_id" if "event_id" in keep else None
    if key:
        joined = joined.set_index(key).loc[entity_df[key]].reset_index()
    # No row for (user, show) means the user never listened to the show before the listen.
    joined["listen_seconds_28d"] = pd.to_numeric(joined["listen_seconds_28d"]).fillna(0).astype("int64")
    for column in ("ever_listened", "habitual"):
        joined[column] = joined[column].astype("boolean").fillna(False).astype(bool)
    return joined
