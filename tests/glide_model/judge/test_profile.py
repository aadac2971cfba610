"""Profile building on a hand-made history: top shows, top episodes, topics, habits, the 90-day window."""

from __future__ import annotations

import pandas as pd

from glide_model.judge.profile import ProfileConfig, build_profile

AS_OF = pd.Timestamp("2026-03-31T12:00:00Z")


def _tables():
    shows = pd.DataFrame({"show_id": ["s1", "s2", "s3"], "title": ["Crime Daily", "Space Talk", "Old Show"],
                          "host": ["Ann", "Bob", "Cy"]})
    episodes = pd.DataFrame({"episode_id": ["e1", "e2", "e3", "e4"], "show_id": ["s1", "s1", "s2", "s3"],
                             "title": ["The heist", "The trial", "Mars", "Ancient"],
                             "topic": ["true crime", "true crime", "science", "history"]})
    rows = [  # (episode, show, days before AS_OF, seconds, hour)
        ("e1", "s1", 1, 1800, 8), ("e2", "s1", 2, 1200, 8), ("e1", "s1", 5, 600, 9),  # habitual crime
        ("e3", "s2", 40, 900, 20),  # science, long ago but inside 90 days: familiar, not habitual
        ("e4", "s3", 120, 5000, 8),  # outside the 90-day window: must not appear
    ]
    listens = pd.DataFrame({
        "user_id": "u1", "episode_id": [r[0] for r in rows], "show_id": [r[1] for r in rows],
        "ts": [AS_OF.normalize() - pd.Timedelta(days=r[2]) + pd.Timedelta(hours=r[4]) for r in rows],
        "listened_seconds": [r[3] for r in rows],
    })
    other = listens.assign(user_id="u2")  # another user's listens never leak in
    return pd.concat([listens, other], ignore_index=True), episodes, shows


def test_profile_of_a_hand_made_history() -> None:
    listens, episodes, shows = _tables()
    p = build_profile(listens, episodes, shows, "u1", AS_OF, locale="en-GB")
    assert p.listens == 4
    assert p.top_shows == ["Crime Daily", "Space Talk"]
    assert p.top_topics == ["true crime", "science"]
    assert p.habitual_shows == ["Crime Daily"]  # 3600 s in 28 days >= 600; Space Talk's listen is 40 days old
    text = p.text
    assert "last 90 days, locale en-GB" in text and "4 listens" in text
    assert "Crime Daily (host Ann; 1.0 h, habitual)" in text
    assert "Space Talk (host Bob; 15 min)" in text
    assert '"The heist" (Crime Daily)' in text.split("Top episodes:")[1].split(";")[0]  # most listened episode first
    assert "true crime 80%" in text and "science 20%" in text
    assert "Old Show" not in text and "Ancient" not in text and "history" not in text
    assert "habitual now: Crime Daily" in text and "mostly in the morning" in text


def test_window_and_empty_history() -> None:
    listens, episodes, shows = _tables()
    short = build_profile(listens, episodes, shows, "u1", AS_OF, config=ProfileConfig(days=10))
    assert short.listens == 3 and "Space Talk" not in short.text
    nobody = build_profile(listens, episodes, shows, "u9", AS_OF)
    assert nobody.listens == 0 and "no listens" in nobody.text
    # Listens after as_of are the future: not in the profile.
    early = build_profile(listens, episodes, shows, "u1", AS_OF - pd.Timedelta(days=30))
    assert early.listens == 1 and early.top_shows == ["Space Talk"]
