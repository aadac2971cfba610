"""Simulated listeners: users with tastes and favourite shows, sessions with drifting intent, listens.

The simulation walks session index k (and listen slot j inside a session) in lockstep for all users,
so each step is a handful of numpy operations over the users still active; per-user state (which
shows a user has heard, for how long) is a dense [users, shows] matrix.

Listen modes: `fav` replays one of the user's favourite shows, `revisit` returns to a show heard
before, `new` samples a show for the session's intent topic by popularity (exploration placements
skip known shows). Modes feed the habitual / familiar / unfamiliar mix the recommender learns from.

`simulate_listening` reads as its steps: draw users, plan sessions, run the lockstep loop, build the
tables. The arrays the steps pass around are named in simulate_state.py; the tables are assembled in
simulate_tables.py, after the last random draw.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from glide.world import vocab
from glide.world.catalog import Catalog
from glide.world.config import WorldConfig
from glide.world.schema import DAY_S, SURFACES
from glide.world.simulate_state import (
    LISTEN_FIELDS, ListeningState, SessionPlan, ShowIndex, UserTruth, flat_cdf, index_catalog, sample_rows,
)
from glide.world.simulate_tables import DEVICES, listens_frame, sessions_frame, users_frame

Progress = Callable[[str, int, int], None]

# Hour-of-day weights for session starts: commute, lunch and evening peaks.
HOUR_WEIGHTS = np.array(
    [1, 0.5, 0.3, 0.2, 0.3, 0.8, 2.5, 4.5, 4.5, 3, 2, 2, 2.8, 2.5, 2, 2, 2.5, 3.5, 4, 4, 4, 3.5, 2.5, 1.5]
)
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


def simulate_listening(
    catalog: Catalog, config: WorldConfig, start: pd.Timestamp, rng: np.random.Generator,
    progress: Progress | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Users, sessions and listens over `config.days` days from `start` (UTC).

    The steps below draw from `rng` in a fixed order (users, then planned sessions, then the lockstep
    loop); the world is bit-identical for a seed only as long as that order is kept."""
    start_s = int(start.timestamp())
    end_s = start_s + config.days * DAY_S
    locale_keys = list(vocab.LOCALES)
    languages = sorted({loc.split("-")[0] for loc in locale_keys} | {loc.split("-")[0] for loc in catalog.shows["locale"]})
    idx = index_catalog(catalog, languages, end_s)
    _check_back_catalog(catalog, idx, start, start_s)
    lang_match = np.where(np.arange(len(languages))[:, None] == idx.lang[None, :], 1.0, OTHER_LANGUAGE_WEIGHT)

    users = _draw_users(config, len(catalog.topics), idx, languages, lang_match, rng)
    plan = _plan_sessions(users, config, start_s, rng)
    sim = _start_listening(idx, lang_match, len(catalog.topics), len(languages), config)
    listens = _run_sessions(plan, users, sim, rng, progress)

    in_window = listens["ts"] < end_s
    listens = {name: arr[in_window] for name, arr in listens.items()}
    user_ids = np.array([f"user_{i + 1:05d}" for i in range(config.users)], dtype=object)
    sessions_df, session_ids = sessions_frame(plan, listens, end_s, user_ids, catalog.topics)
    listens_df = listens_frame(listens, plan, users, session_ids, user_ids, catalog, idx)
    return users_frame(users, user_ids, catalog), sessions_df, listens_df


def _check_back_catalog(catalog: Catalog, idx: ShowIndex, start: pd.Timestamp, start_s: int) -> None:
    """Every show must have an episode out by the world start, so the first listen finds one."""
    n_shows = len(catalog.shows)
    first_pub = idx.ep_key[idx.ep_off[:-1]] - np.arange(n_shows) * idx.key_span + idx.base_s
    if (first_pub > start_s).any():
        late = catalog.shows["show_id"].to_numpy()[first_pub > start_s][:3].tolist()
        raise ValueError(
            f"shows {late} publish their first episode after the world start {start}; every show needs "
            "a back catalog: load the catalog with the same start as the WorldConfig"
        )


def _draw_users(
    config: WorldConfig, n_topics: int, idx: ShowIndex, languages: list[str], lang_match: np.ndarray,
    rng: np.random.Generator,
) -> UserTruth:
    """Locale, topic taste, exploration rate, activity and 2-4 favourite shows per user."""
    n_users, n_shows = config.users, len(idx.pop)
    locale_keys = list(vocab.LOCALES)
    shares = np.array([vocab.LOCALES[k][1] for k in locale_keys])
    user_loc = rng.choice(len(locale_keys), size=n_users, p=shares / shares.sum())
    lang_of_locale = np.array([languages.index(k.split("-")[0]) for k in locale_keys])
    user_lang = lang_of_locale[user_loc]

    taste = rng.dirichlet(np.full(n_topics, config.taste_concentration), size=n_users)
    taste = 0.92 * taste + 0.08 / n_topics  # every topic stays reachable
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
    return UserTruth(
        loc=user_loc, lang=user_lang, taste=taste, taste_cdf=np.cumsum(taste, axis=1),
        taste_norm=taste / taste.max(axis=1, keepdims=True), explore=explore, activity=activity,
        favs=favs, is_fav=is_fav,
    )


def _plan_sessions(users: UserTruth, config: WorldConfig, start_s: int, rng: np.random.Generator) -> SessionPlan:
    """Session counts, planned times, surface, device and listen slots, all drawn up front."""
    n_users, days = config.users, config.days
    n_sess = np.maximum(1, rng.poisson(users.activity * days))
    total = int(n_sess.sum())
    s_user = np.repeat(np.arange(n_users), n_sess)
    planned = (
        start_s + rng.integers(0, days, size=total) * DAY_S
        + rng.choice(24, size=total, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum()) * 3600
        + rng.integers(0, 3600, size=total)
    )
    planned = planned[np.lexsort((planned, s_user))]  # s_user is already grouped and stays so
    p_expl = 0.05 + 0.3 * users.explore[s_user]
    rest = np.array([0.52, 0.24, 0.24])  # home, search, show_page share of the non-exploration rest
    surf_p = np.column_stack([np.outer(1 - p_expl, rest), p_expl])
    s_surface = sample_rows(surf_p, rng)
    s_device = rng.choice(len(DEVICES), size=total, p=DEVICE_P)
    s_nlist = rng.choice(5, size=total, p=LISTENS_PER_SESSION_P) + 1
    return SessionPlan(
        n=n_sess, user=s_user, off=np.r_[0, np.cumsum(n_sess)], planned=planned, surface=s_surface,
        device=s_device, n_listens=s_nlist, ts=np.zeros(total, dtype=np.int64),
        intent=np.zeros(total, dtype=np.int64),
    )


def _start_listening(
    idx: ShowIndex, lang_match: np.ndarray, n_topics: int, n_lang: int, config: WorldConfig
) -> ListeningState:
    """Empty listening state and the discovery CDFs (no draws)."""
    n_users, n_shows = config.users, len(idx.pop)
    # Discovery by topic: shows whose primary topic it is, much less those that only touch on it.
    on_topic = np.where(idx.topic_mask == 1.0, 1.0, config.secondary_topic_weight * idx.topic_mask)
    new_w = on_topic.T[:, None, :] * (idx.pop**config.discovery_popularity_exponent)[None, None, :] * lang_match[None, :, :]
    return ListeningState(
        idx=idx, lang_match=lang_match, new_cdf=flat_cdf(new_w.reshape(n_topics * n_lang, n_shows)),
        n_lang=n_lang, n_topics=n_topics, config=config,
        known=np.zeros((n_users, n_shows), dtype=bool),
        secs=np.zeros((n_users, n_shows), dtype=np.float32),
        n_known_other=np.zeros(n_users, dtype=np.int64),
        intent=np.zeros(n_users, dtype=np.int64),
        prev_end=np.full(n_users, np.iinfo(np.int64).min // 2, dtype=np.int64),
    )


def _run_sessions(
    plan: SessionPlan, users: UserTruth, sim: ListeningState, rng: np.random.Generator, progress: Progress | None
) -> dict[str, np.ndarray]:
    """The lockstep loop over session index k: every user's k-th session at once. Returns the listens
    as parallel arrays (fields LISTEN_FIELDS; `pos` is a sorted-episode position)."""
    out: dict[str, list[np.ndarray]] = {k: [] for k in LISTEN_FIELDS}
    max_k = int(plan.n.max())
    for k in range(max_k):
        _session_round(k, plan, users, sim, out, rng)
        if progress is not None:
            progress("listening", k + 1, max_k)
    return {name: np.concatenate(parts) if parts else np.empty(0, np.int64) for name, parts in out.items()}


def _session_round(
    k: int, plan: SessionPlan, users: UserTruth, sim: ListeningState, out: dict[str, list[np.ndarray]],
    rng: np.random.Generator,
) -> None:
    """Session k of every user who has one: intent drift, start time, then up to 5 listen slots."""
    active = np.flatnonzero(plan.n > k)
    sess = plan.off[active] + k
    drift = rng.random(len(active)) >= sim.config.intent_stickiness
    if k == 0:
        drift[:] = True
    du = active[drift]
    sim.intent[du] = np.minimum((users.taste_cdf[du] <= rng.random(len(du))[:, None]).sum(axis=1), sim.n_topics - 1)
    plan.intent[sess] = sim.intent[active]
    ts0 = np.maximum(plan.planned[sess], sim.prev_end[active] + rng.integers(600, 3 * 3600, size=len(active)))
    plan.ts[sess] = ts0
    cursor = ts0 + rng.integers(1, 40, size=len(active))
    for j in range(5):
        live = plan.n_listens[sess] > j
        if not live.any():
            break
        ok, next_cursor = _listen_slot(active[live], sess[live], cursor[live], plan, users, sim, out, rng)
        cursor[np.flatnonzero(live)[ok]] = next_cursor
    sim.prev_end[active] = cursor


def _listen_slot(
    u: np.ndarray, se: np.ndarray, cur: np.ndarray, plan: SessionPlan, users: UserTruth, sim: ListeningState,
    out: dict[str, list[np.ndarray]], rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """One listen for each live session: show, episode, listened seconds; updates the user state and
    appends to `out`. Returns the mask of sessions that found an episode and their next cursor."""
    idx = sim.idx
    show, mode = _choose_shows(u, plan.surface[se], users, sim, rng)
    pos, ok = _choose_episodes(show, cur, mode, idx, rng)
    u, se, cur, show, pos, mode = u[ok], se[ok], cur[ok], show[ok], pos[ok], mode[ok]
    dur = idx.ep_duration[pos]
    match = users.taste_norm[u, idx.ep_topic[pos]]
    lp = LENGTH_P[mode] * np.column_stack([1.6 - match, np.ones(len(u)), 0.6 + match])
    kind = sample_rows(lp, rng)
    frac = np.select(
        [kind == SAMPLE, kind == PARTIAL],
        [rng.uniform(10, 115, size=len(u)) / dur, rng.uniform(0.2, 0.85, size=len(u))],
        rng.uniform(0.9, 1.0, size=len(u)),
    )
    sec = np.clip((frac * dur).astype(np.int64), 1, dur)
    newly = ~sim.known[u, show] & ~users.is_fav[u, show]
    sim.n_known_other[u[newly]] += 1  # each user appears once per step
    sim.known[u, show] = True
    sim.secs[u, show] += sec
    for name, arr in zip(LISTEN_FIELDS, (se, u, pos, show, sec, cur)):
        out[name].append(arr)
    return ok, cur + sec + rng.integers(3, 90, size=len(u))


def _choose_shows(
    u: np.ndarray, surf: np.ndarray, users: UserTruth, sim: ListeningState, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(show index, mode) per listening user."""
    idx, known, is_fav, favs = sim.idx, sim.known, users.is_fav, users.favs
    n_topics, n_lang, new_cdf, user_lang = sim.n_topics, sim.n_lang, sim.new_cdf, users.lang
    exploration_random_topic = sim.config.exploration_random_topic
    n = len(u)
    mp = MODE_P[surf].copy()
    mp[:, NEW] *= np.sqrt(users.explore[u] / 0.25)
    mp[sim.n_known_other[u] == 0, REVISIT] = 0.0
    mode = sample_rows(mp, rng)
    show = np.empty(n, dtype=np.int64)
    it = sim.intent[u]

    f = np.flatnonzero(mode == FAV)
    if len(f):
        fs = favs[u[f]]
        w = np.where(fs >= 0, 1.0 + 4.0 * idx.topic_mask[np.maximum(fs, 0), it[f][:, None]], 0.0)
        show[f] = fs[np.arange(len(f)), sample_rows(w, rng)]

    r = np.flatnonzero(mode == REVISIT)
    if len(r):
        ur = u[r]
        w = (known[ur] & ~is_fav[ur]) * (0.5 + np.log1p(sim.secs[ur] / 300.0))
        w = w * (1.0 + 2.0 * idx.topic_mask[:, it[r]].T) * sim.lang_match[user_lang[ur]]
        show[r] = sample_rows(w, rng)

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
                     np.minimum((users.taste_cdf[ue] <= rng.random(len(e))[:, None]).sum(axis=1), n_topics - 1)),
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
    show: np.ndarray, t: np.ndarray, mode: np.ndarray, idx: ShowIndex, rng: np.random.Generator
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
