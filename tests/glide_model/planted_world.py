"""A tiny listening log with planted taste structure, for tests that need CF to have something to find.

Users belong to taste groups; each group has its own shows; a user listens mostly to their group's
shows (a few favourites often, the rest occasionally) and sometimes to a few globally popular shows.
Columns follow the world contract (glide/world schema) so the same tests run on a generated world.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

T0 = pd.Timestamp("2026-01-01", tz="UTC")
SURFACES = ("home", "search", "show_page", "exploration")


@dataclass
class Planted:
    listens: pd.DataFrame
    users: pd.DataFrame
    episodes: pd.DataFrame
    assignments: dict[str, tuple[int, ...]]
    user_group: dict[str, int]
    show_group: dict[str, int]


def planted_world(
    seed: int = 0,
    groups: int = 6,
    shows_per_group: int = 10,
    popular_shows: int = 4,
    episodes_per_show: int = 4,
    users: int = 240,
    listens_per_user: int = 40,
    days: int = 60,
) -> Planted:
    rng = np.random.default_rng(seed)
    locales = ("en-US", "de-DE")
    show_ids, show_group = [], {}
    for g in range(groups):
        for s in range(shows_per_group):
            sid = f"show_{g:02d}{s:02d}"
            show_ids.append(sid)
            show_group[sid] = g
    popular = [f"show_p{p:02d}" for p in range(popular_shows)]
    for p in popular:
        show_group[p] = -1
    all_shows = show_ids + popular

    ep_rows, assignments = [], {}
    for k, show in enumerate(all_shows):
        g = show_group[show]
        locale = locales[g % 2] if g >= 0 else "en-US"
        for e in range(episodes_per_show):
            eid = f"ep_{show[5:]}_{e}"
            ep_rows.append((eid, show, locale, float(rng.gamma(2.0)) + (5.0 if g < 0 else 0.0)))
            assignments[eid] = (g + 1 if g >= 0 else 0, k % 16, e)
    episodes = pd.DataFrame(ep_rows, columns=["episode_id", "show_id", "locale", "popularity"])
    episodes["playable"] = True
    by_show = episodes.groupby("show_id")["episode_id"].apply(list).to_dict()

    user_rows, listen_rows, user_group = [], [], {}
    for u in range(users):
        uid = f"user_{u:05d}"
        g = int(rng.integers(groups))
        user_group[uid] = g
        mine = [s for s in show_ids if show_group[s] == g]
        favourites = list(rng.choice(mine, 2, replace=False))
        user_rows.append((uid, locales[g % 2], "US" if g % 2 == 0 else "DE", favourites, [f"topic_{g}"]))
        times = np.sort(rng.uniform(0, days, listens_per_user))
        for t in times:
            r = rng.random()
            if r < 0.45:
                show = favourites[int(rng.integers(2))]
            elif r < 0.85:
                show = mine[int(rng.integers(len(mine)))]
            else:
                show = popular[int(rng.integers(len(popular)))]
            eid = by_show[show][int(rng.integers(episodes_per_show))]
            surface = SURFACES[int(rng.choice(4, p=[0.5, 0.2, 0.2, 0.1]))]
            listen_rows.append((uid, eid, show, int(rng.integers(30, 1500)), T0 + pd.Timedelta(days=float(t)), surface))
    listens = pd.DataFrame(
        listen_rows, columns=["user_id", "episode_id", "show_id", "listened_seconds", "ts", "surface"]
    )
    listens["ts"] = listens["ts"].dt.floor("s")
    listens = listens.sort_values(["ts", "user_id"], kind="stable").reset_index(drop=True)
    listens.insert(0, "event_id", [f"ev_{i:07d}" for i in range(len(listens))])
    listens["session_id"] = listens["event_id"]
    user_frame = pd.DataFrame(user_rows, columns=["user_id", "locale", "country", "favourite_show_ids", "affinity_topics"])
    listens["locale"] = listens["user_id"].map(user_frame.set_index("user_id")["locale"])
    return Planted(listens, user_frame, episodes, assignments, user_group, show_group)
