"""Leave-one-out: test = last item, validation = second last, training = the rest; nothing held out
is ever trained on."""

from __future__ import annotations

import numpy as np

from glide_model.sequential.split import leave_one_out
from tests.glide_model.sequential.synthetic import ring_sequences


def test_positions():
    split = leave_one_out([np.array([5, 6, 7, 8]), np.array([1, 2, 3])])
    assert [t.tolist() for t in split.train] == [[5, 6], [1]]
    assert split.valid.targets.tolist() == [7, 2] and [h.tolist() for h in split.valid.histories] == [[5, 6], [1]]
    assert split.test.targets.tolist() == [8, 3] and [h.tolist() for h in split.test.histories] == [[5, 6, 7], [1, 2]]
    assert split.test.users.tolist() == [0, 1]


def test_no_held_out_item_is_trained_on():
    rng = np.random.default_rng(3)
    # random sequences with repeats, so a leak by value (not only by position) would show
    sequences = [rng.integers(0, 40, size=rng.integers(3, 12)) for _ in range(300)]
    split = leave_one_out(sequences)
    for eval_set, offset in ((split.test, 1), (split.valid, 2)):
        for user, history, target in zip(eval_set.users, eval_set.histories, eval_set.targets):
            seq = sequences[user]
            assert target == seq[-offset] and history.tolist() == seq[:-offset].tolist()
            # the training sequence is exactly the part before the validation item
            assert split.train[user].tolist() == seq[:-2].tolist()
            assert len(split.train[user]) == len(seq) - 2


def test_test_targets_never_in_training_positions():
    sequences = [np.array(s) for s in ring_sequences().values()]
    split = leave_one_out(sequences)
    for user, target in zip(split.test.users, split.test.targets):
        assert target not in split.train[user]  # ring walks never revisit an item within a user


def test_short_users():
    split = leave_one_out([np.array([4]), np.array([4, 9]), np.array([1, 2, 3])])
    assert [t.tolist() for t in split.train] == [[4], [4], [1]]
    assert split.test.users.tolist() == [1, 2] and split.test.targets.tolist() == [9, 3]
    assert split.valid.users.tolist() == [2]  # a 2-item user has no validation example


def test_sample_is_reproducible_and_ordered():
    split = leave_one_out([np.arange(i % 5 + 3) for i in range(100)])
    a, b = split.test.sample(20, seed=1), split.test.sample(20, seed=1)
    assert len(a) == 20 and a.users.tolist() == b.users.tolist() == sorted(a.users.tolist())
    assert split.test.sample(None) is split.test and split.test.sample(500) is split.test
