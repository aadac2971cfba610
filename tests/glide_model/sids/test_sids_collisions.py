import numpy as np
import pandas as pd
import pytest

from glide_model.sids.collisions import CollisionTable, Eligibility

SID = (1, 2, 3)


def _table() -> CollisionTable:
    episodes = pd.DataFrame(
        {
            "episode_id": ["ep_b", "ep_a", "ep_c", "ep_d", "ep_e", "ep_other"],
            "popularity": [5.0, 5.0, 9.0, 1.0, 0.5, 100.0],
            "playable": [True, True, False, True, True, True],
            "locale": ["en-US", "en-US", "en-US", "de-DE", "en-GB", "en-US"],
        }
    )
    assignments = {eid: SID for eid in ["ep_b", "ep_a", "ep_c", "ep_d", "ep_e"]}
    assignments["ep_other"] = (0, 0, 0)
    return CollisionTable.from_frame(episodes, assignments)


def test_bucket_order_is_popularity_desc_then_episode_id():
    table = _table()
    assert table.episodes(SID) == ["ep_c", "ep_a", "ep_b", "ep_d", "ep_e"]
    assert table.episodes((7, 7, 7)) == []
    assert table.n_sids == 2 and len(table) == 6


def test_default_resolution_skips_unplayable_and_breaks_ties_by_id():
    table = _table()
    assert table.resolve(SID) == "ep_a"  # ep_c is more popular but not playable; ep_a < ep_b on the tie
    assert table.resolve(SID, Eligibility(require_playable=False)) == "ep_c"


def test_locale_rule():
    table = _table()
    assert table.resolve(SID, Eligibility.for_user("de-DE")) == "ep_d"
    assert table.resolve(SID, Eligibility.for_user({"de-DE", "en-GB"})) == "ep_d"
    assert table.resolve(SID, Eligibility.for_user("en-GB")) == "ep_e"
    assert table.resolve(SID, Eligibility.for_user("fr-FR")) is None


def test_candidate_set_rule():
    table = _table()
    assert table.resolve(SID, exclude={"ep_a"}) == "ep_b"
    assert table.resolve(SID, exclude={"ep_a", "ep_b", "ep_d", "ep_e"}) is None


def test_consumed_rule():
    table = _table()
    assert table.resolve(SID, Eligibility.for_user("en-US", consumed=["ep_a"])) == "ep_b"
    assert table.resolve(SID, Eligibility.for_user("en-US", consumed=["ep_a", "ep_b"])) is None


def test_predicate_rule():
    table = _table()
    assert table.resolve(SID, Eligibility(predicate=lambda e: e.endswith("d"))) == "ep_d"


def test_resolve_many_never_repeats_an_episode():
    table = _table()
    picks = table.resolve_many([SID, SID, (0, 0, 0), SID, (5, 5, 5), SID, SID])
    assert picks == ["ep_a", "ep_b", "ep_other", "ep_d", None, "ep_e", None]


def test_incremental_add_move_and_popularity_refresh():
    table = _table()
    table.add_episode("ep_new", SID, popularity=6.0, playable=True, locale="en-US")
    assert table.resolve(SID) == "ep_new"
    table.add_episode("ep_new", (0, 0, 0), popularity=6.0)  # metadata revised -> moved, not duplicated
    assert "ep_new" not in table.episodes(SID) and table.codes_of("ep_new") == (0, 0, 0)
    table.update_popularity({"ep_b": 50.0, "unknown": 1.0})
    assert table.resolve(SID) == "ep_b"
    table.set_playable("ep_c", True)
    assert table.resolve(SID) == "ep_b"  # 50 > 9
    table.remove_episode("ep_b")
    assert table.resolve(SID) == "ep_c"


def test_bad_input_is_rejected():
    table = _table()
    with pytest.raises(ValueError, match="expected 3 SID codes"):
        table.add_episode("x", (1, 2))
    with pytest.raises(ValueError, match="popularity"):
        table.add_episode("x", SID, popularity=float("nan"))
    episodes = pd.DataFrame({"episode_id": ["a"], "popularity": [1.0], "playable": [True]})
    with pytest.raises(ValueError, match="locale"):
        CollisionTable.from_frame(episodes, {"a": SID})
    episodes["locale"] = "en-US"
    with pytest.raises(ValueError, match="not in the episodes frame"):
        CollisionTable.from_frame(episodes, {"zzz": SID})


def test_from_arrays_matches_from_frame():
    codes = np.array([[1, 2], [1, 2], [0, 1]])
    table = CollisionTable.from_arrays(["x", "y", "z"], codes, [1.0, 2.0, 0.0])
    assert table.episodes((1, 2)) == ["y", "x"] and table.resolve((0, 1)) == "z"
