"""A/B assignment is random across users and stable across runs (glide_app/jobs/ab/assign.py)."""

from __future__ import annotations

from glide_app.jobs.ab.assign import CONTROL, TREATMENT, assign

USERS = [f"user_{i:05d}" for i in range(4000)]


def test_stable_for_a_salt_and_independent_of_order():
    a = assign(USERS, "s1").set_index("user_id")
    b = assign(list(reversed(USERS)), "s1").set_index("user_id").loc[a.index]
    assert (a["arm"] == b["arm"]).all() and (a["aa_half"] == b["aa_half"]).all()


def test_random_split_of_the_asked_share():
    arms = assign(USERS, "s1")
    share = (arms["arm"] == TREATMENT).mean()
    assert abs(share - 0.5) < 0.03  # 4000 users: 4 sd of a fair coin is 0.032
    assert abs((assign(USERS, "s1", 0.2)["arm"] == TREATMENT).mean() - 0.2) < 0.03
    # Neighbouring ids do not cluster: runs of one arm are as short as a coin's.
    flips = (arms["arm"] != arms["arm"].shift()).sum()
    assert 1800 < flips < 2200
    control = arms[arms["arm"] == CONTROL]
    assert abs(control["aa_half"].mean() - 0.5) < 0.04


def test_another_salt_is_another_split():
    a, b = assign(USERS, "s1"), assign(USERS, "s2")
    agree = (a["arm"] == b["arm"]).mean()
    assert 0.45 < agree < 0.55
