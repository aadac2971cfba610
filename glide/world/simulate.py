"""Simulated listeners: users with tastes and favourite shows, sessions with drifting intent, listens.

The simulation walks session index k (and listen slot j inside a session) in lockstep for all users,
so each step is a handful of numpy operations over the users still active; per-user state (which
shows a user has heard, for how long) is a dense [users, shows] matrix.

Listen modes: `fav` replays one of the user's favourite shows, `revisit` returns to a show heard
before, `new` samples a show for the session's intent topic by popularity (exploration placements
skip known shows). Modes feed the habitual / familiar / unfamiliar mix the recommender learns from.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from glide.world import vocab
from glide.world.catalog import DAY_S, Catalog
from glide.world.schema import SURFACES, epoch_ints

if TYPE_CHECKING:
    from glide.world.generator import WorldConfig

Progress = Callable[[str, int, int], None]

# Hour-of-day weights for session starts: commute, lunch and evening peaks.
HOUR_WEIGHTS = np.array(
    [1, 0.5, 0.3, 0.2, 0.3, 0.8, 2.5, 4.5, 4.5, 3, 2, 2, 2.8, 2.5, 2, 2, 2.5, 3.5, 4, 4, 4, 3.5, 2.5, 1.5]
)
DEVICES = ("mobile", "desktop", "smart_speaker", "car")
DEVICE_P = np.array([0.68, 0.12, 0.08, 0.12])
LISTENS_PER_SESSION_P = np.array([0.32, 0.26, 0.2, 0.13, 0.09])  # 1..5 listens

FAV, REVISIT, NEW = 0, 1, 2
# Per surface (home, search, show_page, exploration): P(fav), P(revisit), P(new).
MODE_P = np.array(
    [
        [0.50, 0.22, 0.28],
        [0.22, 0.23, 0.55],
        [0.55, 0.40, 0.05],
        [0.05, 0.07, 0.88],
    ]
)
SAMPLE, PARTIAL, FULL = 0, 1, 2
# Per mode: P(sampling listen < 2 min), P(partial), P(full), before the taste-match adjustment.
LENGTH_P = np.array(
    [
        [0.08, 0.32, 0.60],
        [0.32, 0.40, 0.28],
        [0.55, 0.28, 0.17],
    ]
)
OTHER_LANGUAGE_WEIGHT = 0.04


@dataclass
class _ShowIndex:
    """Numeric view of the catalog for vectorised sampling."""

    topic_mask: np.ndarray  # [S, T] 1.0 primary topic, 0.5 secondary
    lang: np.ndarray  # [S] language index
    pop: np.ndarray  # [S]
    ep_sorted: np.ndarray  # catalog episode rows sorted by (show, published_at)
    ep_key: np.ndarray  # show * key_span + published offset, sorted
    ep_off: np.ndarray  # [S + 1] start of each show's run in ep_sorted
    key_span: int
    base_s: int
    prev_playable: np.ndarray  # per sorted position: nearest playable position at or before it
    next_playable: np.ndarray  # ... at or after it (len if none)
    ep_duration: np.ndarray  # per sorted position
    ep_topic: np.ndarray  # per sorted position, topic index


def _index_catalog(catalog: Catalog, languages: list[str], end_s: int) -> _ShowIndex:
    shows, eps = catalog.shows, catalog.episodes
    t_index = {t: i for i, t in enumerate(catalog.topics)}
    s_index = {s: i for i, s in enumerate(shows["show_id"])}
    mask = np.zeros((len(shows), len(catalog.topics)), dtype=np.float64)
    for s, tl in enumerate(shows["topics"]):
        for rank, t in enumerate(tl):
            mask[s, t_index[t]] = max(mask[s, t_index[t]], 1.0 if rank == 0 else 0.5)
    lang_index = {lang: i for i, lang in enumerate(languages)}
    lang = np.array([lang_index[loc.split("-")[0]] for loc in shows["locale"]])
    ep_show = eps["show_id"].map(s_index).to_numpy()
    pub_s = epoch_ints(eps["published_at"])
    base = int(pub_s.min())
    span = max(end_s, int(pub_s.max())) - base + 1
    order = np.lexsort((pub_s, ep_show))
    key = ep_show[order].astype(np.int64) * span + (pub_s[order] - base)
    off = np.searchsorted(ep_show[order], np.arange(len(shows) + 1), side="left")
    playable = eps["playable"].to_numpy(dtype=bool)[order]
    pos = np.arange(len(order))
    prev_p = np.maximum.accumulate(np.where(playable, pos, -1))
    next_p = np.minimum.accumulate(np.where(playable, pos, len(pos))[::-1])[::-1]
    return _ShowIndex(
        topic_mask=mask, lang=lang, pop=shows["popularity"].to_numpy(dtype=np.float64),
        ep_sorted=order, ep_key=key, ep_off=off, key_span=span, base_s=base,
        prev_playable=prev_p, next_playable=next_p,
        ep_duration=eps["duration_s"].to_numpy(dtype=np.int64)[order],
        ep_topic=eps["topic"].map(t_index).to_numpy()[order],
    )


def _sample_rows(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One column index per row, proportional to that row's non-negative weights."""
    cdf = np.cumsum(weights, axis=1)
    u = rng.random(len(weights)) * cdf[:, -1]
    return np.minimum((cdf <= u[:, None]).sum(axis=1), weights.shape[1] - 1)


def _flat_cdf(weights: np.ndarray) -> np.ndarray:
    """Row r's CDF shifted by r, flattened: searchsorted(flat, r + u) samples row r in one call."""
    # A row with no positive weight (e.g. no show in the user's language yet) samples uniformly
    # instead of dividing by zero.
    weights = np.where(weights.sum(axis=1, keepdims=True) > 0, weights, 1.0)
    cdf = np.cumsum(weights, axis=1)
    cdf = cdf / cdf[:, -1:]
    cdf[:, -1] = 1.0
    return (np.arange(len(weights))[:, None] + cdf).ravel()


def simulate_listening(
    catalog: Catalog, config: WorldConfig, start: pd.Timestamp, rng: np.random.Generator,
    progress: Progress | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Users, sessions and listens over `config.days` days from `start` (UTC)."""
    n_users, days = config.users, config.days
    topics = catalog.topics
    n_topics, n_shows = len(topics), len(catalog.shows)
    start_s = int(start.timestamp())
    end_s = start_s + days * DAY_S

    locale_keys = list(vocab.LOCALES)
    languages = sorted({loc.split("-")[0] for loc in locale_keys} | {loc.split("-")[0] for loc in catalog.shows["locale"]})
    idx = _index_catalog(catalog, languages, end_s)
    first_pub = idx.ep_key[idx.ep_off[:-1]] - np.arange(n_shows) * idx.key_span + idx.base_s
    if (first_pub > start_s).any():
        late = catalog.shows["show_id"].to_numpy()[first_pub > start_s][:3].tolist()
        raise ValueError(
            f"shows {late} publish their first episode after the world start {start}; every show needs "
            "a back catalog: load the catalog with the same start as the WorldConfig"
        )

    # ---- users ---------------------------------------------------------------------------
    shares = np.array([vocab.LOCALES[k][1] for k in locale_keys])
    user_loc = rng.choice(len(locale_keys), size=n_users, p=shares / shares.sum())
    lang_of_locale = np.array([languages.index(k.split("-")[0]) for k in locale_keys])
    user_lang = lang_of_locale[user_loc]
    lang_match = np.where(np.arange(len(languages))[:, None] == idx.lang[None, :], 1.0, OTHER_LANGUAGE_WEIGHT)

    taste = rng.dirichlet(np.full(n_topics, config.taste_concentration), size=n_users)
    taste = 0.92 * taste + 0.08 / n_topics  # every topic stays reachable
    taste_cdf = np.cumsum(taste, axis=1)
    taste_norm = taste / taste.max(axis=1, keepdims=True)
    m = config.explore_rate_mean
    explore = rng.beta(2.0, 2.0 * (1 - m) / m, size=n_users)
    activity = np.clip(rng.lognormal(np.log(config.sessions_per_day), 0.6, size=n_users), 0.05, 4.0)

    # Favourites: 2-4 shows, by taste x popularity x language (Gumbel top-k = sampling w/o replacement).
    affinity = (taste @ idx.topic_mask.T) * idx.pop**config.favourite_popularity_exponent * lang_match[user_lang]
    keys = np.log(affinity + 1e-12) + rng.gumbel(size=affinity.shape)
    n_fav_max = min(4, n_shows)
    favs = np.argsort(-keys, axis=1, kind="stable")[:, :n_fav_max]
    n_fav = np.minimum(rng.integers(2, 5, size=n_users), n_fav_max)
    favs = np.where(np.arange(n_fav_max)[None, :] < n_fav[:, None], favs, -1)
    is_fav = np.zeros((n_users, n_shows), dtype=bool)
    rows = np.repeat(np.arange(n_users), n_fav_max)
    is_fav[rows[favs.ravel() >= 0], favs.ravel()[favs.ravel() >= 0]] = True

    # ---- planned sessions (times, surface, device, length), drawn up front ---------------
    n_sess = np.maximum(1, rng.poisson(activity * days))
    total = int(n_sess.sum())
    s_user = np.repeat(np.arange(n_users), n_sess)
    planned = (
        start_s + rng.integers(0, days, size=total) * DAY_S
        + rng.choice(24, size=total, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum()) * 3600
        + rng.integers(0, 3600, size=total)
    )
    planned = planned[np.lexsort((planned, s_user))]  # s_user is already grouped and stays so
    s_off = np.r_[0, np.cumsum(n_sess)]
    p_expl = 0.05 + 0.3 * explore[s_user]
    rest = np.array([0.52, 0.24, 0.24])  # home, search, show_page share of the non-exploration rest
    surf_p = np.column_stack([np.outer(1 - p_expl, rest), p_expl])
    s_surface = _sample_rows(surf_p, rng)
    s_device = rng.choice(len(DEVICES), size=total, p=DEVICE_P)
    s_nlist = rng.choice(5, size=total, p=LISTENS_PER_SESSION_P) + 1
    s_ts = np.zeros(total, dtype=np.int64)
    s_intent = np.zeros(total, dtype=np.int64)

    # ---- lockstep simulation -------------------------------------------------------------
    known = np.zeros((n_users, n_shows), dtype=bool)
    secs = np.zeros((n_users, n_shows), dtype=np.float32)
    n_known_other = np.zeros(n_users, dtype=np.int64)  # known shows that are not favourites
    intent = np.zeros(n_users, dtype=np.int64)
    prev_end = np.full(n_users, np.iinfo(np.int64).min // 2, dtype=np.int64)
    # Discovery by topic: shows whose primary topic it is, much less those that only touch on it.
    on_topic = np.where(idx.topic_mask == 1.0, 1.0, config.secondary_topic_weight * idx.topic_mask)
    new_w = on_topic.T[:, None, :] * (idx.pop**config.discovery_popularity_exponent)[None, None, :] * lang_match[None, :, :]
    new_cdf = _flat_cdf(new_w.reshape(n_topics * len(languages), n_shows))
    n_lang = len(languages)
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("sess", "user", "pos", "show", "sec", "ts")}

    max_k = int(n_sess.max())
    for k in range(max_k):
        users = np.flatnonzero(n_sess > k)
        sess = s_off[users] + k
        drift = rng.random(len(users)) >= config.intent_stickiness
        if k == 0:
            drift[:] = True
        du = users[drift]
        intent[du] = np.minimum((taste_cdf[du] <= rng.random(len(du))[:, None]).sum(axis=1), n_topics - 1)
        s_intent[sess] = intent[users]
        ts0 = np.maximum(planned[sess], prev_end[users] + rng.integers(600, 3 * 3600, size=len(users)))
        s_ts[sess] = ts0
        cursor = ts0 + rng.integers(1, 40, size=len(users))
        for j in range(5):
            live = s_nlist[sess] > j
            if not live.any():
                break
            u, se, cur = users[live], sess[live], cursor[live]
            surf = s_surface[se]
            show, mode = _choose_shows(u, surf, intent, explore, favs, is_fav, known, secs, n_known_other,
                                       taste_cdf, user_lang, lang_match, idx, new_cdf, n_lang, n_topics,
                                       config.exploration_random_topic, rng)
            pos, ok = _choose_episodes(show, cur, mode, idx, rng)
            u, se, cur, show, pos, mode = u[ok], se[ok], cur[ok], show[ok], pos[ok], mode[ok]
            dur = idx.ep_duration[pos]
            match = taste_norm[u, idx.ep_topic[pos]]
            lp = LENGTH_P[mode] * np.column_stack([1.6 - match, np.ones(len(u)), 0.6 + match])
            kind = _sample_rows(lp, rng)
            frac = np.select(
                [kind == SAMPLE, kind == PARTIAL],
                [rng.uniform(10, 115, size=len(u)) / dur, rng.uniform(0.2, 0.85, size=len(u))],
                rng.uniform(0.9, 1.0, size=len(u)),
            )
            sec = np.clip((frac * dur).astype(np.int64), 1, dur)
            newly = ~known[u, show] & ~is_fav[u, show]
            n_known_other[u[newly]] += 1  # each user appears once per step
            known[u, show] = True
            secs[u, show] += sec
            for name, arr in (("sess", se), ("user", u), ("pos", pos), ("show", show), ("sec", sec), ("ts", cur)):
                out[name].append(arr)
            cursor[np.flatnonzero(live)[ok]] = cur + sec + rng.integers(3, 90, size=len(u))
        prev_end[users] = cursor
        if progress is not None:
            progress("listening", k + 1, max_k)

    # ---- tables ----------------------------------------------------------------------------
    L = {name: np.concatenate(parts) if parts else np.empty(0, np.int64) for name, parts in out.items()}
    keep = L["ts"] < end_s
    L = {name: arr[keep] for name, arr in L.items()}
    s_keep = np.zeros(total, dtype=bool)
    s_keep[L["sess"]] = True
    s_keep &= s_ts < end_s

    user_ids = np.array([f"user_{i + 1:05d}" for i in range(n_users)], dtype=object)
    show_ids = catalog.shows["show_id"].to_numpy(dtype=object)
    locales = np.array(locale_keys, dtype=object)

    s_rows = np.flatnonzero(s_keep)
    s_rows = s_rows[np.lexsort((s_user[s_rows], s_ts[s_rows]))]
    session_ids = np.empty(total, dtype=object)
    session_ids[s_rows] = [f"sess_{i + 1:07d}" for i in range(len(s_rows))]
    contexts = _context_strings(s_ts[s_rows], s_device[s_rows])
    sessions = pd.DataFrame(
        {
            "session_id": session_ids[s_rows],
            "user_id": user_ids[s_user[s_rows]],
            "ts": pd.to_datetime(s_ts[s_rows], unit="s", utc=True),
            "surface": np.array(SURFACES, dtype=object)[s_surface[s_rows]],
            "context": contexts,
            "intent_topic": np.array(topics, dtype=object)[s_intent[s_rows]],
        }
    )

    order = np.lexsort((L["user"], L["ts"]))
    L = {name: arr[order] for name, arr in L.items()}
    ep_rows = idx.ep_sorted[L["pos"]]
    listens = pd.DataFrame(
        {
            "event_id": [f"ev_{i + 1:08d}" for i in range(len(order))],
            "session_id": session_ids[L["sess"]],
            "user_id": user_ids[L["user"]],
            "episode_id": catalog.episodes["episode_id"].to_numpy(dtype=object)[ep_rows],
            "show_id": show_ids[L["show"]],
            "listened_seconds": L["sec"].astype(np.int64),
            "ts": pd.to_datetime(L["ts"], unit="s", utc=True),
            "surface": np.array(SURFACES, dtype=object)[s_surface[L["sess"]]],
            "locale": locales[user_loc[L["user"]]],
        }
    )

    top3 = np.argsort(-taste, axis=1, kind="stable")[:, :3]
    topic_arr = np.array(topics, dtype=object)
    users_df = pd.DataFrame(
        {
            "user_id": user_ids,
            "locale": locales[user_loc],
            "country": np.array([vocab.LOCALES[k][0] for k in locale_keys], dtype=object)[user_loc],
            "favourite_show_ids": [list(show_ids[f[f >= 0]]) for f in favs],
            "affinity_topics": [list(topic_arr[t]) for t in top3],
            "topic_weights": [list(map(float, np.round(w, 6))) for w in taste],
            "explore_rate": np.round(explore, 6),
        }
    )
    return users_df, sessions, listens


def _choose_shows(
    u, surf, intent, explore, favs, is_fav, known, secs, n_known_other, taste_cdf, user_lang,
    lang_match, idx: _ShowIndex, new_cdf, n_lang, n_topics, exploration_random_topic: float, rng,
) -> tuple[np.ndarray, np.ndarray]:
    """(show index, mode) per listening user."""
    n = len(u)
    mp = MODE_P[surf].copy()
    mp[:, NEW] *= np.sqrt(explore[u] / 0.25)
    mp[n_known_other[u] == 0, REVISIT] = 0.0
    mode = _sample_rows(mp, rng)
    show = np.empty(n, dtype=np.int64)
    it = intent[u]

    f = np.flatnonzero(mode == FAV)
    if len(f):
        fs = favs[u[f]]
        w = np.where(fs >= 0, 1.0 + 4.0 * idx.topic_mask[np.maximum(fs, 0), it[f][:, None]], 0.0)
        show[f] = fs[np.arange(len(f)), _sample_rows(w, rng)]

    r = np.flatnonzero(mode == REVISIT)
    if len(r):
        ur = u[r]
        w = (known[ur] & ~is_fav[ur]) * (0.5 + np.log1p(secs[ur] / 300.0))
        w = w * (1.0 + 2.0 * idx.topic_mask[:, it[r]].T) * lang_match[user_lang[ur]]
        show[r] = _sample_rows(w, rng)

    e = np.flatnonzero(mode == NEW)
    if len(e):
        ue = u[e]
        exploring = surf[e] == SURFACES.index("exploration")
        # Exploration placements reach beyond the session intent; other surfaces mostly follow it.
        searching = surf[e] == SURFACES.index("search")
        on_intent = rng.random(len(e)) < np.select([exploring, searching], [1.0 - exploration_random_topic, 0.9], 0.75)
        topic = np.where(
            on_intent, it[e],
            np.where(exploring, rng.integers(n_topics, size=len(e)),
                     np.minimum((taste_cdf[ue] <= rng.random(len(e))[:, None]).sum(axis=1), n_topics - 1)),
        )
        row = topic * n_lang + user_lang[ue]
        n_shows = known.shape[1]
        pick = np.searchsorted(new_cdf, row + rng.random(len(e)), side="right") - row * n_shows
        pick = np.clip(pick, 0, n_shows - 1)
        for _ in range(4):  # exploration placements show shows the user has not heard
            again = exploring & known[ue, pick]
            if not again.any():
                break
            ra = row[again]
            redo = np.searchsorted(new_cdf, ra + rng.random(len(ra)), side="right") - ra * n_shows
            pick[again] = np.clip(redo, 0, n_shows - 1)
        show[e] = pick
    return show, mode


def _choose_episodes(
    show: np.ndarray, t: np.ndarray, mode: np.ndarray, idx: _ShowIndex, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted episode position per listen (published by t, playable, freshness-biased) and a keep mask."""
    lo = idx.ep_off[show]
    hi = np.searchsorted(idx.ep_key, show * idx.key_span + (t - idx.base_s), side="right")
    count = hi - lo  # >= 1: every show's first episode precedes the world start
    fresh_p = np.where(mode == FAV, 0.55, 0.35)
    back = rng.geometric(fresh_p) - 1
    back_catalog = rng.random(len(show)) < 0.15
    back = np.where(back_catalog, (rng.random(len(show)) * count).astype(np.int64), back)
    pos = hi - 1 - np.minimum(back, count - 1)
    prev_p = idx.prev_playable[pos]
    next_p = idx.next_playable[pos]
    pos = np.where(prev_p >= lo, prev_p, next_p)
    ok = (pos >= lo) & (pos < hi)
    return np.where(ok, pos, lo), ok


def _context_strings(ts: np.ndarray, device: np.ndarray) -> np.ndarray:
    """JSON context per session from a 4 x 4 table (device x daypart), not one json.dumps per row."""
    hour = (ts % DAY_S) // 3600
    daypart = np.select([hour < 5, hour < 12, hour < 17, hour < 22], [3, 0, 1, 2], 3)
    dayparts = ("morning", "afternoon", "evening", "night")
    table = np.array(
        [[json.dumps({"device": d, "daypart": p}, sort_keys=True) for p in dayparts] for d in DEVICES],
        dtype=object,
    )
    return table[device, daypart]
