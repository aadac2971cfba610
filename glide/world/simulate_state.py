"""The arrays the listening simulation (simulate.py) works on, and its vectorised sampling primitives.

Everything is an index into a dense numpy array: shows, topics, languages, users and sessions are
numbered, so one simulation step is a handful of array operations over all users at once. The
dataclasses only name those arrays; they hold no behaviour, which is why both the simulation and the
table assembly (simulate_tables.py) can import them without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from glide.world.catalog import Catalog
from glide.world.config import WorldConfig
from glide.world.schema import epoch_ints


@dataclass
class ShowIndex:
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


def index_catalog(catalog: Catalog, languages: list[str], end_s: int) -> ShowIndex:
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
    return ShowIndex(
        topic_mask=mask, lang=lang, pop=shows["popularity"].to_numpy(dtype=np.float64),
        ep_sorted=order, ep_key=key, ep_off=off, key_span=span, base_s=base,
        prev_playable=prev_p, next_playable=next_p,
        ep_duration=eps["duration_s"].to_numpy(dtype=np.int64)[order],
        ep_topic=eps["topic"].map(t_index).to_numpy()[order],
    )


@dataclass
class UserTruth:
    """Per-user ground truth, drawn once before any session: locale, tastes, exploration, favourites."""

    loc: np.ndarray  # [U] index into vocab.LOCALES
    lang: np.ndarray  # [U] language index
    taste: np.ndarray  # [U, T] topic taste, every topic > 0
    taste_cdf: np.ndarray  # [U, T] its running sum, for sampling a topic
    taste_norm: np.ndarray  # [U, T] taste / the user's top taste, for listen length
    explore: np.ndarray  # [U] exploration rate
    activity: np.ndarray  # [U] sessions per day
    favs: np.ndarray  # [U, <= 4] favourite show indices, -1 padded
    is_fav: np.ndarray  # [U, S]


@dataclass
class SessionPlan:
    """Planned sessions, grouped by user (user i owns rows off[i]:off[i + 1]); ts and intent are
    filled in while simulating, because both depend on how the user's previous session went."""

    n: np.ndarray  # [U] sessions per user
    user: np.ndarray  # [N] user index
    off: np.ndarray  # [U + 1]
    planned: np.ndarray  # [N] planned start, epoch seconds
    surface: np.ndarray  # [N] index into SURFACES
    device: np.ndarray  # [N] index into DEVICES
    n_listens: np.ndarray  # [N] 1..5 listen slots
    ts: np.ndarray  # [N] actual start
    intent: np.ndarray  # [N] intent topic index


@dataclass
class ListeningState:
    """What the lockstep loop reads: the catalog index and the fixed sampling tables, plus the
    per-user state it updates as listens happen."""

    idx: ShowIndex
    lang_match: np.ndarray  # [languages, S] 1 for the user's language, OTHER_LANGUAGE_WEIGHT otherwise
    new_cdf: np.ndarray  # flat CDFs of discovering a show, one row per (topic, language)
    n_lang: int
    n_topics: int
    config: WorldConfig
    known: np.ndarray  # [U, S] shows the user has heard
    secs: np.ndarray  # [U, S] seconds heard per show
    n_known_other: np.ndarray  # [U] known shows that are not favourites
    intent: np.ndarray  # [U] current intent topic
    prev_end: np.ndarray  # [U] end of the user's previous session


# The parallel arrays a simulated listen is made of: planned-session row, user, sorted-episode position,
# show index, seconds listened, start (epoch seconds).
LISTEN_FIELDS = ("sess", "user", "pos", "show", "sec", "ts")


def sample_rows(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One column index per row, proportional to that row's non-negative weights."""
    cdf = np.cumsum(weights, axis=1)
    u = rng.random(len(weights)) * cdf[:, -1]
    return np.minimum((cdf <= u[:, None]).sum(axis=1), weights.shape[1] - 1)


def flat_cdf(weights: np.ndarray) -> np.ndarray:
    """Row r's CDF shifted by r, flattened: searchsorted(flat, r + u) samples row r in one call."""
    # A row with no positive weight (e.g. no show in the user's language yet) samples uniformly
    # instead of dividing by zero.
    weights = np.where(weights.sum(axis=1, keepdims=True) > 0, weights, 1.0)
    cdf = np.cumsum(weights, axis=1)
    cdf = cdf / cdf[:, -1:]
    cdf[:, -1] = 1.0
    return (np.arange(len(weights))[:, None] + cdf).ravel()
