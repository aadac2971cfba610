"""Simulated arrays -> the world's contract tables (users, sessions, listens; glide/world/schema.py).

No random draws happen here: the simulation has finished, and these steps only filter to the
world window, give ids in (time, user) order and map indices back to ids and names.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from glide.world import vocab
from glide.world.catalog import Catalog
from glide.world.schema import DAY_S, SURFACES
from glide.world.simulate_state import SessionPlan, ShowIndex, UserTruth

DEVICES = ("mobile", "desktop", "smart_speaker", "car")  # the `device` of a session's context


def sessions_frame(
    plan: SessionPlan, listens: dict[str, np.ndarray], end_s: int, user_ids: np.ndarray, topics: list[str]
) -> tuple[pd.DataFrame, np.ndarray]:
    """Sessions that started in the window and kept a listen, ids in (ts, user) order; also the
    session id per planned session (for the listens)."""
    total = len(plan.user)
    s_keep = np.zeros(total, dtype=bool)
    s_keep[listens["sess"]] = True
    s_keep &= plan.ts < end_s
    s_rows = np.flatnonzero(s_keep)
    s_rows = s_rows[np.lexsort((plan.user[s_rows], plan.ts[s_rows]))]
    session_ids = np.empty(total, dtype=object)
    session_ids[s_rows] = [f"sess_{i + 1:07d}" for i in range(len(s_rows))]
    sessions = pd.DataFrame(
        {
            "session_id": session_ids[s_rows],
            "user_id": user_ids[plan.user[s_rows]],
            "ts": pd.to_datetime(plan.ts[s_rows], unit="s", utc=True),
            "surface": np.array(SURFACES, dtype=object)[plan.surface[s_rows]],
            "context": context_strings(plan.ts[s_rows], plan.device[s_rows]),
            "intent_topic": np.array(topics, dtype=object)[plan.intent[s_rows]],
        }
    )
    return sessions, session_ids


def listens_frame(
    listens: dict[str, np.ndarray], plan: SessionPlan, users: UserTruth, session_ids: np.ndarray,
    user_ids: np.ndarray, catalog: Catalog, idx: ShowIndex,
) -> pd.DataFrame:
    """Listens in (ts, user) order, event ids in that order."""
    order = np.lexsort((listens["user"], listens["ts"]))
    L = {name: arr[order] for name, arr in listens.items()}
    ep_rows = idx.ep_sorted[L["pos"]]
    return pd.DataFrame(
        {
            "event_id": [f"ev_{i + 1:08d}" for i in range(len(order))],
            "session_id": session_ids[L["sess"]],
            "user_id": user_ids[L["user"]],
            "episode_id": catalog.episodes["episode_id"].to_numpy(dtype=object)[ep_rows],
            "show_id": catalog.shows["show_id"].to_numpy(dtype=object)[L["show"]],
            "listened_seconds": L["sec"].astype(np.int64),
            "ts": pd.to_datetime(L["ts"], unit="s", utc=True),
            "surface": np.array(SURFACES, dtype=object)[plan.surface[L["sess"]]],
            "locale": np.array(list(vocab.LOCALES), dtype=object)[users.loc[L["user"]]],
        }
    )


def users_frame(users: UserTruth, user_ids: np.ndarray, catalog: Catalog) -> pd.DataFrame:
    """The users table: the drawn ground truth, top-3 taste topics, favourites by show id."""
    locale_keys = list(vocab.LOCALES)
    show_ids = catalog.shows["show_id"].to_numpy(dtype=object)
    top3 = np.argsort(-users.taste, axis=1, kind="stable")[:, :3]
    topic_arr = np.array(catalog.topics, dtype=object)
    return pd.DataFrame(
        {
            "user_id": user_ids,
            "locale": np.array(locale_keys, dtype=object)[users.loc],
            "country": np.array([vocab.LOCALES[k][0] for k in locale_keys], dtype=object)[users.loc],
            "favourite_show_ids": [list(show_ids[f[f >= 0]]) for f in users.favs],
            "affinity_topics": [list(topic_arr[t]) for t in top3],
            "topic_weights": [list(map(float, np.round(w, 6))) for w in users.taste],
            "explore_rate": np.round(users.explore, 6),
        }
    )


def context_strings(ts: np.ndarray, device: np.ndarray) -> np.ndarray:
    """JSON context per session from a 4 x 4 table (device x daypart), not one json.dumps per row."""
    hour = (ts % DAY_S) // 3600
    daypart = np.select([hour < 5, hour < 12, hour < 17, hour < 22], [3, 0, 1, 2], 3)
    dayparts = ("morning", "afternoon", "evening", "night")
    table = np.array(
        [[json.dumps({"device": d, "daypart": p}, sort_keys=True) for p in dayparts] for d in DEVICES],
        dtype=object,
    )
    return table[device, daypart]
