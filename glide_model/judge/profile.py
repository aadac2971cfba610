"""A listener's profile for the judge: the last 90 days of listens as a few lines of plain English.

Only what a production system knows goes in: the listen log and catalog metadata (show titles,
hosts, topics, episode titles). Ground-truth tastes never do, so the judge has to infer interest
from behaviour the way the paper's judge did (§5.2.6: top shows, top episodes, topics, habits).

Habits follow the project's one habit rule (glide.habits): a show is habitual when the user
listened to it >= 600 s over the 28 days before ``as_of``; each listen is labelled habitual,
familiar or unfamiliar by the state just before it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from glide.habits import label_listens, user_show_features

PROFILE_DAYS = 90
DAYPARTS = ((5, "morning"), (12, "afternoon"), (17, "evening"), (22, "night"))


@dataclass(frozen=True)
class ProfileConfig:
    days: int = PROFILE_DAYS
    top_shows: int = 5
    top_episodes: int = 5
    top_topics: int = 4


@dataclass
class Profile:
    user_id: str
    text: str
    listens: int
    top_shows: list[str] = field(default_factory=list)  # show titles, most listened first
    top_topics: list[str] = field(default_factory=list)
    habitual_shows: list[str] = field(default_factory=list)


def _daypart(hour: int) -> str:
    name = "night"
    for start, label in DAYPARTS:
        if hour >= start:
            name = label
    return name


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def build_profile(
    listens: pd.DataFrame, episodes: pd.DataFrame, shows: pd.DataFrame, user_id: str, as_of: pd.Timestamp,
    locale: str | None = None, config: ProfileConfig | None = None,
) -> Profile:
    """The profile of ``user_id`` from their listens in (as_of - days, as_of] (``listens``: user_id,
    show_id, episode_id, ts, listened_seconds; ``episodes``: episode_id, title, topic; ``shows``:
    show_id, title, host)."""
    config = config or ProfileConfig()
    as_of = pd.Timestamp(as_of)
    mine = listens[(listens["user_id"] == user_id) & (listens["ts"] <= as_of)].sort_values("ts", kind="stable")
    # Habit labels need the history before the window too: a show heard daily up to the window's
    # first day is habitual on that day.
    labelled = label_listens(mine)
    window = labelled[labelled["ts"] > as_of - pd.Timedelta(days=config.days)]
    lead = f"Listener profile (last {config.days} days" + (f", locale {locale})" if locale else ")")
    if window.empty:
        return Profile(user_id, f"{lead}: no listens yet.", 0)
    show_meta = shows.set_index("show_id")
    ep_meta = episodes.set_index("episode_id")
    window = window.assign(topic=window["episode_id"].map(ep_meta["topic"]).fillna("unknown"))

    by_show = window.groupby("show_id")["listened_seconds"].sum().sort_values(ascending=False, kind="stable")
    state = user_show_features(mine, as_of)
    habitual_ids = set(state.loc[state["habitual"], "show_id"])
    show_bits, top_show_titles = [], []
    for show_id, secs in by_show.head(config.top_shows).items():
        title = str(show_meta["title"].get(show_id, show_id))
        host = show_meta["host"].get(show_id) if "host" in show_meta.columns else None
        top_show_titles.append(title)
        extra = ", habitual" if show_id in habitual_ids else ""
        show_bits.append(f"{title}" + (f" (host {host}; {_hours(secs)}{extra})" if host else f" ({_hours(secs)}{extra})"))

    by_episode = window.groupby("episode_id")["listened_seconds"].sum().sort_values(ascending=False, kind="stable")
    episode_bits = []
    for episode_id in by_episode.head(config.top_episodes).index:
        title = ep_meta["title"].get(episode_id, episode_id)
        show = show_meta["title"].get(ep_meta["show_id"].get(episode_id), "?")
        episode_bits.append(f'"{title}" ({show})')

    topic_secs = window.groupby("topic")["listened_seconds"].sum().sort_values(ascending=False, kind="stable")
    total = float(topic_secs.sum())
    top_topics = list(topic_secs.head(config.top_topics).index)
    topic_bits = [f"{t} {100 * topic_secs[t] / total:.0f}%" for t in top_topics]

    modes = window["mode"].value_counts(normalize=True)
    parts = window["ts"].dt.hour.map(_daypart).value_counts()
    habitual_titles = [str(show_meta["title"].get(s, s)) for s in sorted(habitual_ids)]
    habits = (
        f"{100 * modes.get('habitual', 0):.0f}% of listens are to habitual shows, "
        f"{100 * modes.get('familiar', 0):.0f}% return to shows heard before, "
        f"{100 * modes.get('unfamiliar', 0):.0f}% are new shows; "
        f"listens mostly in the {parts.index[0]}; a typical listen lasts {_hours(float(window['listened_seconds'].median()))}"
    )
    if habitual_titles:
        habits += f"; habitual now: {', '.join(habitual_titles[:config.top_shows])}"
    text = "\n".join([
        f"{lead}: {len(window)} listens, {_hours(total)} in total.",
        f"Top shows: {'; '.join(show_bits)}.",
        f"Top episodes: {'; '.join(episode_bits)}.",
        f"Topics: {', '.join(topic_bits)}.",
        f"Habits: {habits}.",
    ])
    return Profile(user_id, text, len(window), top_show_titles, top_topics, habitual_titles)
