"""A listener panel: the world's simulated users, answering the slates a recommender serves them.

The world's own simulation (simulate.py) decides every listen by itself. An online experiment needs
the opposite: the system serves a slate, the user reacts. `ListenerPanel` keeps each user's ground
truth (topic taste, language, favourites, exploration rate, activity) and their memory (shows heard,
seconds per show, the current intent topic), and per time slot

1. `plan_slot` draws who opens the app (Poisson on the user's sessions per day), on which surface,
   with which intent and how many listen slots, in one pass over all users;
2. `respond` plays each session: on a recommendation surface (home, exploration) each listen slot
   first looks at the slate, choosing an item with weight
       position_bias(rank) x true_preference(u, e) ** PREFERENCE_POWER x (INTENT_BOOST if on intent)
   against NO_PICK_WEIGHT for "none of these" (true_preference is computed once per user and
   playable episode at construction); otherwise (and on search and show pages) the listen is
   organic, drawn like the world draws it (favourite, revisit or a new show on the intent topic).
   How long a listen lasts follows the world's length model (simulate.LENGTH_P): longer the better
   the episode matches the user's taste.

The slate changes which episodes users reach and so how long they listen and which shows they
discover; the organic part is the same for every arm. Deterministic for a seed and call order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from glide.world.schema import DAY_S, SURFACES, epoch_ints
from glide.world.simulate import FAV, HOUR_WEIGHTS, LENGTH_P, LISTENS_PER_SESSION_P, MODE_P, NEW, REVISIT
from glide.world.simulate_state import sample_rows
from glide.world.truth import true_preference_matrix

SLATE_SURFACES = ("home", "exploration")  # where the served slate is on screen
PREFERENCE_POWER = 2.0
INTENT_BOOST = 1.5
NO_PICK_WEIGHT = 1.5
INTENT_STICKINESS = 0.8
SURFACE_P = np.array([0.52, 0.24, 0.24])  # home, search, show_page share of the non-exploration rest


def position_bias(rank: np.ndarray) -> np.ndarray:
    """Attention a slate position gets (rank 0 = top): the DCG discount."""
    return 1.0 / np.log2(np.asarray(rank, dtype=np.float64) + 2.0)


@dataclass
class SlotSessions:
    """Sessions of one time slot, one row per session (users appear at most once)."""

    user: np.ndarray  # user index
    ts: np.ndarray  # start, epoch seconds
    surface: np.ndarray  # index into SURFACES
    n_listens: np.ndarray  # 1..5
    session_ids: list[str]

    def __len__(self) -> int:
        return len(self.user)


class ListenerPanel:
    """Ground truth and memory of the world's users; see the module docstring."""

    def __init__(self, world, history: pd.DataFrame, at: pd.Timestamp, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        users = world.users.reset_index(drop=True)
        self.user_ids = users["user_id"].to_numpy(dtype=object)
        self._user_row = {u: i for i, u in enumerate(self.user_ids)}
        self.locale = users["locale"].to_numpy(dtype=object)
        self.taste = np.array(users["topic_weights"].tolist(), dtype=np.float64)
        self.taste_cdf = np.cumsum(self.taste / self.taste.sum(axis=1, keepdims=True), axis=1)
        self.explore = users["explore_rate"].to_numpy(dtype=np.float64)
        self.shows = world.shows.reset_index(drop=True)
        self._show_row = {s: i for i, s in enumerate(self.shows["show_id"])}
        self.is_fav = np.zeros((len(users), len(self.shows)), dtype=bool)
        for i, favs in enumerate(users["favourite_show_ids"]):
            self.is_fav[i, [self._show_row[s] for s in favs]] = True
        self._index_episodes(world.episodes, world.topics)
        self.pref = true_preference_matrix(world.users, world.shows, world.episodes, world.topics,
                                           self.user_ids, self.ep_ids)
        self._remember(history)
        self.activity = self._activity(world.sessions, history, at)
        self.intent = self._last_intents(world.sessions, at, world.topics)
        self._session_counter = 0
        self._event_counter = 0

    # --- setup -----------------------------------------------------------------------------------
    def _index_episodes(self, episodes: pd.DataFrame, topics: Sequence[str]) -> None:
        eps = episodes[episodes["playable"].astype(bool)].sort_values(["show_id", "published_at"], kind="stable")
        self.ep_ids = eps["episode_id"].to_numpy(dtype=object)
        self.ep_show = eps["show_id"].map(self._show_row).to_numpy(dtype=np.int64)
        self.ep_published = epoch_ints(eps["published_at"])
        self.ep_duration = eps["duration_s"].to_numpy(dtype=np.int64)
        self.ep_row = {e: i for i, e in enumerate(self.ep_ids)}
        t_index = {t: i for i, t in enumerate(topics)}
        self.ep_topic = eps["topic"].map(t_index).to_numpy(dtype=np.int64)
        self.show_topic = np.array([t_index[tl[0]] for tl in self.shows["topics"]], dtype=np.int64)
        self.show_lang = np.array([str(loc).split("-")[0] for loc in self.shows["locale"]], dtype=object)
        self.show_pop = self.shows["popularity"].to_numpy(dtype=np.float64)
        self._ep_off = np.searchsorted(self.ep_show, np.arange(len(self.shows) + 1), side="left")

    def _remember(self, history: pd.DataFrame) -> None:
        self.secs = np.zeros(self.is_fav.shape, dtype=np.float64)
        rows = history["user_id"].map(self._user_row)
        cols = history["show_id"].map(self._show_row)
        ok = rows.notna() & cols.notna()
        np.add.at(self.secs, (rows[ok].astype(int).to_numpy(), cols[ok].astype(int).to_numpy()),
                  history.loc[ok, "listened_seconds"].to_numpy(dtype=np.float64))
        self.known = self.secs > 0

    def _activity(self, sessions: pd.DataFrame, history: pd.DataFrame, at: pd.Timestamp) -> np.ndarray:
        """Sessions per day before ``at``, per user (at least 0.05: nobody is gone for good)."""
        before = sessions[sessions["ts"] < at]
        days = max(1.0, (at - history["ts"].min()).total_seconds() / DAY_S) if len(history) else 1.0
        counts = before["user_id"].value_counts().reindex(self.user_ids, fill_value=0).to_numpy(dtype=np.float64)
        return np.maximum(counts / days, 0.05)

    def _last_intents(self, sessions: pd.DataFrame, at: pd.Timestamp, topics: Sequence[str]) -> np.ndarray:
        t_index = {t: i for i, t in enumerate(topics)}
        last = sessions[sessions["ts"] < at].sort_values("ts").groupby("user_id")["intent_topic"].last()
        out = np.array([t_index.get(last.get(u), -1) for u in self.user_ids], dtype=np.int64)
        drawn = self._draw_topics(np.arange(len(out)))
        return np.where(out >= 0, out, drawn)

    def _draw_topics(self, users: np.ndarray) -> np.ndarray:
        u = self.rng.random(len(users))
        return np.minimum((self.taste_cdf[users] <= u[:, None]).sum(axis=1), self.taste.shape[1] - 1)

    # --- one slot ------------------------------------------------------------------------------
    def plan_slot(self, start_s: int, slot_s: int, users: np.ndarray | None = None) -> SlotSessions:
        """Who opens the app in [start_s, start_s + slot_s): at most one session per user and slot."""
        users = np.arange(len(self.user_ids)) if users is None else np.asarray(users)
        rate = self.activity[users] * slot_s / DAY_S
        active = users[self.rng.random(len(users)) < 1.0 - np.exp(-rate)]
        hour0 = (start_s % DAY_S) // 3600
        hours = np.arange(hour0, hour0 + max(1, slot_s // 3600)) % 24
        w = HOUR_WEIGHTS[hours] / HOUR_WEIGHTS[hours].sum()
        ts = start_s + (self.rng.choice(len(hours), size=len(active), p=w) * 3600
                        + self.rng.integers(0, 3000, size=len(active)))
        p_expl = 0.05 + 0.3 * self.explore[active]
        surface = sample_rows(np.column_stack([np.outer(1 - p_expl, SURFACE_P), p_expl]), self.rng)
        n_listens = self.rng.choice(5, size=len(active), p=LISTENS_PER_SESSION_P) + 1
        drift = self.rng.random(len(active)) >= INTENT_STICKINESS
        self.intent[active[drift]] = self._draw_topics(active[drift])
        order = np.argsort(ts, kind="stable")
        ids = [f"ab-sess-{self._session_counter + i + 1:07d}" for i in range(len(active))]
        self._session_counter += len(active)
        return SlotSessions(active[order], ts[order], surface[order], n_listens[order], ids)

    def respond(self, sessions: SlotSessions, slates: Mapping[str, Sequence[str]], end_s: int) -> pd.DataFrame:
        """Play every session (slates by user id; a user without one sees none); the listens, in the
        world's listens-table columns, ended by ``end_s`` (a session still running then stops)."""
        rows: list[dict] = []
        for k in range(len(sessions)):
            u, surface = int(sessions.user[k]), SURFACES[int(sessions.surface[k])]
            slate = [e for e in slates.get(self.user_ids[u], ()) if e in self.ep_row] if surface in SLATE_SURFACES else []
            cursor = int(sessions.ts[k]) + int(self.rng.integers(1, 40))
            heard: set[int] = set()
            for _ in range(int(sessions.n_listens[k])):
                ep, source = self._pick(u, surface, slate, heard, cursor)
                if ep is None:
                    continue
                seconds = self._listen_seconds(u, ep)
                if cursor + seconds > end_s:
                    break
                heard.add(ep)
                rows.append(self._listen_row(u, ep, seconds, cursor, surface, sessions.session_ids[k], source))
                self.secs[u, self.ep_show[ep]] += seconds
                self.known[u, self.ep_show[ep]] = True
                cursor += seconds + int(self.rng.integers(3, 90))
        return pd.DataFrame(rows, columns=LISTEN_COLUMNS)

    def _pick(self, u: int, surface: str, slate: list[str], heard: set[int], now_s: int) -> tuple[int | None, str]:
        if slate:
            eps = [self.ep_row[e] for e in slate]
            pref = self.pref[u, eps]
            on_intent = self.ep_topic[eps] == self.intent[u]
            w = position_bias(np.arange(len(eps))) * pref**PREFERENCE_POWER * np.where(on_intent, INTENT_BOOST, 1.0)
            w[[i for i, e in enumerate(eps) if e in heard or self.ep_published[e] > now_s]] = 0.0
            choice = sample_rows(np.r_[w, NO_PICK_WEIGHT][None, :], self.rng)[0]
            if choice < len(eps):
                return eps[choice], "slate"
        return self._organic(u, surface, now_s), "organic"

    def _organic(self, u: int, surface: str, now_s: int) -> int | None:
        mp = MODE_P[SURFACES.index(surface)].copy()
        mp[NEW] *= np.sqrt(self.explore[u] / 0.25)
        others = self.known[u] & ~self.is_fav[u]
        if not others.any():
            mp[REVISIT] = 0.0
        mode = sample_rows(mp[None, :], self.rng)[0]
        lang_ok = np.where(self.show_lang == str(self.locale[u]).split("-")[0], 1.0, 0.04)
        if mode == FAV:
            w = self.is_fav[u] * (1.0 + 4.0 * (self.show_topic == self.intent[u]))
        elif mode == REVISIT:
            w = others * (0.5 + np.log1p(self.secs[u] / 300.0)) * (1.0 + 2.0 * (self.show_topic == self.intent[u]))
        else:
            w = (self.show_topic == self.intent[u]) * self.show_pop**0.3 * lang_ok
        if w.sum() <= 0:
            w = self.show_pop * lang_ok
        show = sample_rows(w[None, :], self.rng)[0]
        return self._fresh_episode(show, now_s, 0.55 if mode == FAV else 0.35)

    def _fresh_episode(self, show: int, now_s: int, fresh_p: float) -> int | None:
        lo, hi = self._ep_off[show], self._ep_off[show + 1]
        out = lo + int(np.searchsorted(self.ep_published[lo:hi], now_s, side="right"))
        if out == lo:
            return None
        back = min(int(self.rng.geometric(fresh_p)) - 1, out - lo - 1)
        return int(out - 1 - back)

    def _listen_seconds(self, u: int, ep: int) -> int:
        show = self.ep_show[ep]
        mode = FAV if self.is_fav[u, show] else REVISIT if self.known[u, show] else NEW
        match = float(self.taste[u, self.ep_topic[ep]] / self.taste[u].max())
        p = LENGTH_P[mode] * np.array([1.6 - match, 1.0, 0.6 + match])
        kind = sample_rows(p[None, :], self.rng)[0]
        dur = int(self.ep_duration[ep])
        frac = [self.rng.uniform(10, 115) / dur, self.rng.uniform(0.2, 0.85), self.rng.uniform(0.9, 1.0)][kind]
        return int(np.clip(int(frac * dur), 1, dur))

    def preference(self, user_id: str, episode_ids: Sequence[str]) -> np.ndarray:
        """glide.world.truth.true_preference_matrix of ``user_id`` for playable ``episode_ids``."""
        return self.pref[self._user_row[user_id], [self.ep_row[e] for e in episode_ids]]

    def _listen_row(self, u: int, ep: int, seconds: int, ts: int, surface: str, session_id: str, source: str) -> dict:
        self._event_counter += 1
        return {"event_id": f"ab-ev-{self._event_counter:08d}", "session_id": session_id,
                "user_id": self.user_ids[u], "episode_id": self.ep_ids[ep],
                "show_id": self.shows["show_id"].iat[self.ep_show[ep]], "listened_seconds": seconds,
                "ts": pd.Timestamp(ts, unit="s", tz="UTC"), "surface": surface, "locale": self.locale[u],
                "source": source}


LISTEN_COLUMNS = ["event_id", "session_id", "user_id", "episode_id", "show_id", "listened_seconds", "ts",
                  "surface", "locale", "source"]
