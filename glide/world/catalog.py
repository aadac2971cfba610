"""Podcast catalogs (shows + episodes) that simulated users listen to: the synthetic one lives here,
the real iTunes one in itunes.py; both produce a `Catalog` in the world's column contract."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from glide.world import vocab
from glide.world.schema import DAY_S, check_table


@dataclass
class Catalog:
    """Shows and episodes in the world contract, plus the topic list their `topics`/`topic` use."""

    shows: pd.DataFrame
    episodes: pd.DataFrame
    topics: list[str]
    name: str = "synthetic"

    def validate(self) -> None:
        """Raise ValueError on a broken catalog (missing columns, dangling ids, unknown topics)."""
        check_table("shows", self.shows)
        check_table("episodes", self.episodes)
        if self.shows.empty or self.episodes.empty:
            raise ValueError(f"catalog {self.name!r} is empty: it needs shows and episodes")
        if self.shows["show_id"].duplicated().any() or self.episodes["episode_id"].duplicated().any():
            raise ValueError(f"catalog {self.name!r} has duplicate show_id or episode_id values")
        dangling = ~self.episodes["show_id"].isin(self.shows["show_id"])
        if dangling.any():
            raise ValueError(f"catalog {self.name!r}: {int(dangling.sum())} episodes name unknown shows")
        without = ~self.shows["show_id"].isin(self.episodes["show_id"])
        if without.any():
            raise ValueError(f"catalog {self.name!r}: {int(without.sum())} shows have no episodes")
        known = set(self.topics)
        bad = {t for ts in self.shows["topics"] for t in ts} - known
        bad |= set(self.episodes["topic"]) - known
        if bad:
            raise ValueError(f"catalog {self.name!r} uses topics {sorted(bad)} missing from its topic list")
        if (self.episodes["duration_s"] <= 0).any():
            raise ValueError(f"catalog {self.name!r} has episodes with non-positive duration_s")


def show_popularity_prior(n: int, rng: np.random.Generator, exponent: float = 0.9) -> np.ndarray:
    """Zipf-like prior over `n` shows in random rank order, scaled so the top show has 1.0."""
    ranks = rng.permutation(n) + 1
    return (1.0 / ranks.astype(np.float64) ** exponent).round(6)


def spread_published_at(
    n_episodes: np.ndarray, start: pd.Timestamp, end: pd.Timestamp, rng: np.random.Generator
) -> list[np.ndarray]:
    """Per show, publish times (epoch seconds, oldest first): a back catalog before `start`
    (the oldest always is) and new episodes arriving through the window at the show's cadence."""
    start_s, end_s = int(start.timestamp()), int(end.timestamp())
    out = []
    for n in n_episodes:
        back_s = int(rng.uniform(14, 365) * DAY_S)
        first = start_s - back_s
        rest = np.sort(rng.integers(first + 1, end_s, size=int(n) - 1)) if n > 1 else np.empty(0, np.int64)
        out.append(np.concatenate([[first], rest]).astype(np.int64))
    return out


def _cap(word: str) -> str:
    return word[:1].upper() + word[1:]


def synthetic_catalog(
    n_shows: int,
    episodes_per_show: int,
    topics: list[str],
    start: pd.Timestamp,
    end: pd.Timestamp,
    rng: np.random.Generator,
) -> Catalog:
    """Shows with topics, hosts and a Zipf popularity prior; episodes whose titles and descriptions
    are built from their topic's vocabulary, published from a back catalog through the window.

    The steps draw from `rng` in a fixed order (show plan, show texts, episode plan, episode texts):
    the catalog is identical for a seed only as long as that order is kept."""
    plan = _plan_shows(n_shows, len(topics), rng)
    shows, show_topic_lists = _shows_frame(plan, topics, rng)
    ep = _plan_episodes(plan, show_topic_lists, episodes_per_show, start, end, rng)
    titles, descriptions = _episode_texts(ep.topic, ep.show, shows, topics, rng)
    order = np.argsort(ep.published, kind="stable")  # episode ids follow publication order
    total = len(ep.show)
    episodes = pd.DataFrame(
        {
            "episode_id": [f"ep_{i + 1:06d}" for i in range(total)],
            "show_id": shows["show_id"].to_numpy()[ep.show[order]],
            "title": np.asarray(titles, dtype=object)[order],
            "description": np.asarray(descriptions, dtype=object)[order],
            "topic": np.asarray(topics, dtype=object)[ep.topic[order]],
            "locale": shows["locale"].to_numpy()[ep.show[order]],
            "published_at": pd.to_datetime(ep.published[order], unit="s", utc=True),
            "duration_s": ep.duration[order],
            "playable": ep.playable[order],
            "popularity": np.zeros(total),
        }
    )
    return Catalog(shows=shows, episodes=episodes, topics=list(topics), name="synthetic")


@dataclass
class _ShowPlan:
    """Per-show numbers drawn before any text: topics, locale, popularity, typical episode length."""

    primary: np.ndarray  # [S] primary topic index
    n_secondary: np.ndarray  # [S] 0-2 secondary topics
    locale: np.ndarray  # [S] index into vocab.LOCALES
    popularity: np.ndarray  # [S] Zipf-like prior
    minutes: np.ndarray  # [S] typical episode length


@dataclass
class _EpisodePlan:
    """Per-episode numbers, in show order (not yet publication order)."""

    show: np.ndarray  # show index
    published: np.ndarray  # epoch seconds
    topic: np.ndarray  # topic index
    duration: np.ndarray  # seconds
    playable: np.ndarray


def _plan_shows(n_shows: int, n_topics: int, rng: np.random.Generator) -> _ShowPlan:
    """Primary and secondary topic counts, locale, popularity and typical length per show."""
    # Every topic gets a show before any topic gets a second; then topic sizes vary.
    topic_share = rng.dirichlet(np.full(n_topics, 4.0))
    primary = np.concatenate(
        [rng.permutation(n_topics)[: min(n_shows, n_topics)],
         rng.choice(n_topics, size=max(0, n_shows - n_topics), p=topic_share)]
    )
    n_secondary = rng.choice(3, size=n_shows, p=[0.45, 0.4, 0.15])
    show_locale_p = np.array([0.55, 0.15, 0.12, 0.10, 0.08])
    show_locale = rng.choice(len(vocab.LOCALES), size=n_shows, p=show_locale_p)
    popularity = show_popularity_prior(n_shows, rng)
    minutes = np.clip(rng.lognormal(np.log(35), 0.5, size=n_shows), 5, 150)
    return _ShowPlan(primary=primary, n_secondary=n_secondary, locale=show_locale, popularity=popularity, minutes=minutes)


def _shows_frame(plan: _ShowPlan, topics: list[str], rng: np.random.Generator) -> tuple[pd.DataFrame, list[list[int]]]:
    """The shows table (titles, descriptions and hosts from vocab patterns) and each show's topic
    indices, primary first."""
    n_topics = len(topics)
    locale_keys = list(vocab.LOCALES)
    first_names, last_names = vocab.FIRST_NAMES, vocab.LAST_NAMES
    show_rows = []
    show_topic_lists: list[list[int]] = []
    for i in range(len(plan.primary)):
        others = [t for t in rng.permutation(n_topics)[: plan.n_secondary[i] + 1] if t != plan.primary[i]]
        tlist = [int(plan.primary[i])] + [int(t) for t in others[: plan.n_secondary[i]]]
        show_topic_lists.append(tlist)
        host = f"{first_names[rng.integers(len(first_names))]} {last_names[rng.integers(len(last_names))]}"
        words = vocab.TOPIC_VOCAB[topics[tlist[0]]]
        w = [words[j] for j in rng.choice(len(words), size=5, replace=False)]
        fmt = dict(
            host=host, w1=w[0], w2=w[1], w3=w[2], w4=w[3], w5=w[4],
            W1=_cap(w[0]), W2=_cap(w[1]),
            f1=vocab.FILLER[rng.integers(len(vocab.FILLER))],
            f2=vocab.FILLER[rng.integers(len(vocab.FILLER))],
            cadence=str(rng.choice(["daily", "weekly", "twice-weekly", "monthly"])),
            unit=str(rng.choice(["day", "week", "month"])),
        )
        fmt["F1"] = _cap(fmt["f1"])
        title = vocab.SHOW_TITLE_PATTERNS[rng.integers(len(vocab.SHOW_TITLE_PATTERNS))].format(**fmt)
        desc = vocab.SHOW_DESCRIPTION_PATTERNS[rng.integers(len(vocab.SHOW_DESCRIPTION_PATTERNS))].format(**fmt)
        show_rows.append(
            dict(
                show_id=f"show_{i + 1:04d}", title=title, description=desc, host=host,
                topics=[topics[t] for t in tlist], locale=locale_keys[plan.locale[i]],
                popularity=float(plan.popularity[i]),
            )
        )
    return pd.DataFrame(show_rows, columns=list(show_rows[0])), show_topic_lists


def _plan_episodes(
    plan: _ShowPlan, show_topic_lists: list[list[int]], episodes_per_show: int, start: pd.Timestamp,
    end: pd.Timestamp, rng: np.random.Generator,
) -> _EpisodePlan:
    """Episode counts, publish times, topics, durations and playability."""
    n_shows = len(plan.primary)
    n_eps = np.maximum(3, rng.poisson(episodes_per_show, size=n_shows))
    published = spread_published_at(n_eps, start, end, rng)
    ep_show = np.repeat(np.arange(n_shows), n_eps)
    total = len(ep_show)
    # Mostly the show's primary topic; sometimes one of its secondary topics.
    use_secondary = rng.random(total) < 0.2
    ep_topic = np.empty(total, dtype=np.int64)
    pick = rng.random(total)
    for k in range(total):
        tl = show_topic_lists[ep_show[k]]
        ep_topic[k] = tl[1 + int(pick[k] * (len(tl) - 1))] if use_secondary[k] and len(tl) > 1 else tl[0]
    duration = np.clip(plan.minutes[ep_show] * 60 * rng.lognormal(0, 0.25, size=total), 60, 4 * 3600).astype(np.int64)
    # A few back-catalog episodes are pulled from distribution; the oldest of each show never is.
    first_of_show = np.r_[0, np.cumsum(n_eps)[:-1]]
    playable = rng.random(total) >= 0.02
    playable[first_of_show] = True
    return _EpisodePlan(
        show=ep_show, published=np.concatenate(published), topic=ep_topic, duration=duration, playable=playable
    )


def _episode_texts(
    ep_topic: np.ndarray, ep_show: np.ndarray, shows: pd.DataFrame, topics: list[str], rng: np.random.Generator
) -> tuple[list[str], list[str]]:
    """Titles and descriptions: five topic words, two filler words, the host, a guest, the show title."""
    total = len(ep_topic)
    # Draw all randomness up front (vectorised); string assembly is the only per-episode work.
    word_u = rng.random((total, max(len(vocab.TOPIC_VOCAB[t]) for t in topics)))
    filler = rng.integers(len(vocab.FILLER), size=(total, 2))
    guest_first = rng.integers(len(vocab.FIRST_NAMES), size=total)
    guest_last = rng.integers(len(vocab.LAST_NAMES), size=total)
    t_pat = rng.integers(len(vocab.EPISODE_TITLE_PATTERNS), size=total)
    d_pat = rng.integers(len(vocab.DESCRIPTION_PATTERNS), size=total)
    show_titles = shows["title"].tolist()
    hosts = shows["host"].tolist()
    vocabs = [vocab.TOPIC_VOCAB[t] for t in topics]
    # Five distinct topic words per episode: the first five of a random permutation of its vocabulary.
    word_idx = np.zeros((total, 5), dtype=np.int64)
    for t, words in enumerate(vocabs):
        rows = np.flatnonzero(ep_topic == t)
        word_idx[rows] = np.argsort(word_u[rows, : len(words)], axis=1)[:, :5]
    titles, descs = [], []
    for k in range(total):
        words = vocabs[ep_topic[k]]
        w = [words[j] for j in word_idx[k]]
        f1, f2 = vocab.FILLER[filler[k, 0]], vocab.FILLER[filler[k, 1]]
        fmt = dict(
            w1=w[0], w2=w[1], w3=w[2], w4=w[3], w5=w[4], W1=_cap(w[0]), W2=_cap(w[1]),
            f1=f1, f2=f2, F1=_cap(f1),
            host=hosts[ep_show[k]],
            guest=f"{vocab.FIRST_NAMES[guest_first[k]]} {vocab.LAST_NAMES[guest_last[k]]}",
        )
        titles.append(vocab.EPISODE_TITLE_PATTERNS[t_pat[k]].format(**fmt))
        descs.append(vocab.DESCRIPTION_PATTERNS[d_pat[k]].format(**fmt) + f" From {show_titles[ep_show[k]]}.")
    return titles, descs
