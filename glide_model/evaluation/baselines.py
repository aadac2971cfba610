"""Non-LLM reference recommenders over the same example frames the LLM is evaluated on.

Both baselines recommend *non-habitual* content like GLIDE: episodes of shows that are habitual
for the user just before the example's ts are never recommended (glide.habits), nor are the
episodes in the example's own history. Like GLIDE's control token, they follow the example's
``mode`` when ``mode_aware``: ``unfamiliar`` excludes every show the user listened to before,
``familiar`` keeps only those (non-habitual) shows. ``context_listens`` is the log the show state is
read from; passing listens beyond the evaluation period is safe (only listens before each ts count).
These show rules are the serving rule's (glide_model/serving/rules.py: ``constraints``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from glide_model.cf import CFModel
from glide_model.serving.rules import Constraint, constraints  # noqa: F401 - re-exported: the serving rule's rules 1-3


@runtime_checkable
class Recommender(Protocol):
    name: str

    def recommend(self, examples: pd.DataFrame, k: int) -> list[list[str]]:
        """Top-k episode ids for each row of an example frame (glide_model/data/examples.py)."""
        ...


def episode_popularity(listens: pd.DataFrame) -> pd.Series:
    """Distinct listeners per episode, most popular first (ties by episode_id)."""
    pop = listens.groupby("episode_id")["user_id"].nunique()
    return pop.sort_index().sort_values(ascending=False, kind="stable")


def with_popularity(episodes: pd.DataFrame, known: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``episodes`` whose ``popularity`` is the distinct listeners in ``known`` (0 if none):
    popularity as it stood at the end of ``known``, not the catalog's own column, which counts the future."""
    out = episodes.copy()
    out["popularity"] = out["episode_id"].map(episode_popularity(known)).fillna(0.0).astype(float)
    return out


class PopularityRecommender:
    """Most-listened episodes (distinct listeners in ``train_listens``), per locale when known."""

    name = "popularity"

    def __init__(
        self,
        train_listens: pd.DataFrame,
        context_listens: pd.DataFrame | None = None,
        episodes: pd.DataFrame | None = None,
        locale_aware: bool = True,
        mode_aware: bool = True,
        exclude_history: bool = True,
    ):
        self.context = train_listens if context_listens is None else context_listens
        self.mode_aware = mode_aware
        self.exclude_history = exclude_history
        self.show_of = dict(zip(train_listens["episode_id"], train_listens["show_id"]))
        playable = None
        if episodes is not None:
            self.show_of.update(zip(episodes["episode_id"], episodes["show_id"]))
            if "playable" in episodes.columns:
                playable = set(episodes.loc[episodes["playable"].astype(bool), "episode_id"])
        pop = episode_popularity(train_listens)
        if playable is not None:
            pop = pop[pop.index.isin(playable)]
        self.ranking: list[str] = pop.index.tolist()
        self.by_locale: dict[str, list[str]] = {}
        if locale_aware and "locale" in train_listens.columns:
            # what listeners of the same locale play
            for locale, part in train_listens.groupby("locale"):
                ranked = episode_popularity(part)
                self.by_locale[str(locale)] = [e for e in ranked.index if playable is None or e in playable]
        elif locale_aware and episodes is not None and "locale" in episodes.columns:
            locale_of = dict(zip(episodes["episode_id"], episodes["locale"]))
            for locale in set(locale_of.values()):
                self.by_locale[str(locale)] = [e for e in self.ranking if locale_of.get(e) == locale]

        self.by_show: dict[str, list[str]] = {}
        for e in self.ranking:  # popularity order within each show
            self.by_show.setdefault(self.show_of[e], []).append(e)
        self.rank = {e: r for r, e in enumerate(self.ranking)}

    def recommend(self, examples: pd.DataFrame, k: int) -> list[list[str]]:
        rules = constraints(self.context, examples, self.mode_aware, self.exclude_history)
        return self.recommend_constrained(examples, k, rules)

    def recommend_constrained(self, examples: pd.DataFrame, k: int, rules: Sequence[Constraint]) -> list[list[str]]:
        locales = examples["locale"].tolist() if "locale" in examples.columns else [None] * len(examples)
        return [self._top(loc, k, rule) for loc, rule in zip(locales, rules)]

    def _top(self, locale: str | None, k: int, rule: Constraint) -> list[str]:
        if rule.allowed_shows is not None:  # few shows: rank their episodes directly
            pool = [e for s in rule.allowed_shows for e in self.by_show.get(s, [])]
            rankings: Iterable[Iterable[str]] = [sorted(pool, key=self.rank.__getitem__)]
        else:  # the user's locale first, then everything
            rankings = [self.by_locale.get(str(locale), []), self.ranking]
        out: list[str] = []
        taken: set[str] = set()
        for ranking in rankings:
            for e in ranking:
                if len(out) == k:
                    return out
                if e not in taken and rule.allows(self.show_of.get(e), e):
                    taken.add(e)
                    out.append(e)
        return out


class CFRecommender:
    """Highest user-factor x item-factor scores of a :class:`CFModel` (episode or show level).

    At show level the best shows contribute their most popular episodes. Users without a CF vector
    get the popularity baseline's list.
    """

    name = "cf"

    def __init__(
        self,
        model: CFModel,
        train_listens: pd.DataFrame,
        context_listens: pd.DataFrame | None = None,
        episodes: pd.DataFrame | None = None,
        episodes_per_show: int = 3,
        mode_aware: bool = True,
        exclude_history: bool = True,
        batch_size: int = 1024,
    ):
        self.model = model
        self.context = train_listens if context_listens is None else context_listens
        self.mode_aware = mode_aware
        self.exclude_history = exclude_history
        self.episodes_per_show = episodes_per_show
        self.batch_size = batch_size
        self.fallback = PopularityRecommender(train_listens, self.context, episodes)
        self.show_of = self.fallback.show_of
        self.top_episodes = self.fallback.by_show
        item_show = [self.show_of.get(i) for i in model.item_ids] if model.config.level == "episode" else list(model.item_ids)
        self.item_show = np.array(item_show, dtype=object)

    def recommend(self, examples: pd.DataFrame, k: int) -> list[list[str]]:
        rules = constraints(self.context, examples, self.mode_aware, self.exclude_history)
        vectors = [self.model.user_vector(u) for u in examples["user_id"].tolist()]
        out: list[list[str]] = [[] for _ in vectors]
        unknown = [i for i, v in enumerate(vectors) if v is None]
        if unknown:
            fallback = self.fallback.recommend_constrained(examples.iloc[unknown], k, [rules[i] for i in unknown])
            for i, recs in zip(unknown, fallback):
                out[i] = recs
        known = [i for i, v in enumerate(vectors) if v is not None]
        for start in range(0, len(known), self.batch_size):
            rows = known[start : start + self.batch_size]
            scores = self.model.scores(np.stack([vectors[i] for i in rows]))
            for row, s in zip(rows, scores):
                rule = rules[row]
                if rule.banned_shows:
                    s[np.isin(self.item_show, list(rule.banned_shows))] = -np.inf
                if rule.allowed_shows is not None:
                    s[~np.isin(self.item_show, list(rule.allowed_shows))] = -np.inf
                out[row] = self._expand(np.argsort(-s, kind="stable"), s, k, rule)
        return out

    def _expand(self, order: np.ndarray, scores: np.ndarray, k: int, rule: Constraint) -> list[str]:
        """Items in score order -> k episodes; at show level, rounds of ``episodes_per_show`` per
        show (best shows first) until k are found, so a few allowed shows still fill the list."""
        items = self.model.item_ids[order[: int(np.isfinite(scores).sum())]]  # -inf sorts last
        out: list[str] = []
        if self.model.config.level == "episode":
            for e in items:
                if e not in rule.seen_episodes:
                    out.append(str(e))
                    if len(out) == k:
                        break
            return out
        per, depth = self.episodes_per_show, 0
        while len(out) < k:
            added = False
            for show in items:
                for e in self.top_episodes.get(show, [])[depth : depth + per]:
                    added = True
                    if e not in rule.seen_episodes:
                        out.append(e)
                        if len(out) == k:
                            return out
            if not added:
                break
            depth += per
        return out


class TopicPopularityRecommender:
    """Popularity re-weighted by the user's topic mix so far: a taste-aware reference without a model.

    score(episode) = distinct listeners x (``smoothing`` + share of the episode's topic among the
    user's listens before the example's ts). Needs a ``topic`` column in ``episodes`` (genres in a
    real catalog). Same eligibility rules as the other baselines.
    """

    name = "topic_popularity"

    def __init__(self, train_listens: pd.DataFrame, episodes: pd.DataFrame, context_listens: pd.DataFrame | None = None,
                 smoothing: float = 0.1, mode_aware: bool = True, exclude_history: bool = True):
        if "topic" not in episodes.columns:
            raise ValueError("TopicPopularityRecommender needs episodes with a 'topic' column")
        self.context = train_listens if context_listens is None else context_listens
        self.mode_aware, self.exclude_history, self.smoothing = mode_aware, exclude_history, smoothing
        pop = episode_popularity(train_listens)
        if "playable" in episodes.columns:
            pop = pop[pop.index.isin(episodes.loc[episodes["playable"].astype(bool), "episode_id"])]
        meta = episodes.set_index("episode_id").loc[pop.index]
        self.ids = pop.index.to_numpy()
        self.pop = pop.to_numpy(dtype=np.float64)
        self.shows = meta["show_id"].to_numpy()
        self.topics = sorted(episodes["topic"].unique())
        t_index = {t: i for i, t in enumerate(self.topics)}
        self.topic_idx = meta["topic"].map(t_index).to_numpy()
        topic_of = dict(zip(episodes["episode_id"], episodes["topic"].map(t_index)))
        log = self.context[["user_id", "episode_id", "ts"]].assign(t=self.context["episode_id"].map(topic_of))
        log = log.dropna(subset=["t"]).sort_values(["user_id", "ts"], kind="stable")
        ns = pd.to_datetime(log["ts"], utc=True).dt.tz_convert(None).to_numpy("datetime64[ns]").astype(np.int64)
        log = log.assign(ns=ns)
        self.by_user = {u: (g["ns"].to_numpy(), g["t"].to_numpy(dtype=np.int64)) for u, g in log.groupby("user_id", sort=False)}

    def recommend(self, examples: pd.DataFrame, k: int) -> list[list[str]]:
        rules = constraints(self.context, examples, self.mode_aware, self.exclude_history)
        out = []
        for user, ts, rule in zip(examples["user_id"], examples["ts"], rules):
            share = np.zeros(len(self.topics))
            if user in self.by_user:
                times, topics = self.by_user[user]
                past = topics[: np.searchsorted(times, pd.Timestamp(ts).value, side="left")]
                if len(past):
                    share = np.bincount(past, minlength=len(self.topics)) / len(past)
            order = np.argsort(-(self.pop * (self.smoothing + share[self.topic_idx])), kind="stable")
            recs: list[str] = []
            for i in order:
                if rule.allows(self.shows[i], self.ids[i]):
                    recs.append(str(self.ids[i]))
                    if len(recs) == k:
                        break
            out.append(recs)
        return out


def baseline_recommenders(known: pd.DataFrame, episodes: pd.DataFrame, cf_model: CFModel,
                          context_listens: pd.DataFrame | None = None) -> list[Recommender]:
    """The non-LLM references GLIDE is compared against: popularity, CF and, when the episodes carry
    a ``topic``, topic x popularity. Popularity is counted on ``known``; the rules read ``context_listens``."""
    recommenders: list[Recommender] = [
        PopularityRecommender(known, context_listens=context_listens, episodes=episodes),
        CFRecommender(cf_model, known, context_listens=context_listens, episodes=episodes),
    ]
    if "topic" in episodes.columns:
        recommenders.append(TopicPopularityRecommender(known, episodes, context_listens=context_listens))
    return recommenders


def recommend_all(recommenders: Sequence[Recommender], examples: pd.DataFrame, k: int) -> dict[str, list[list[str]]]:
    """Lists of every recommender, keyed by name."""
    return {r.name: r.recommend(examples, k) for r in recommenders}
