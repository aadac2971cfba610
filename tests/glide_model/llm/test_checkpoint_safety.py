"""Resuming training never unpickles code: the train state loads with weights_only=True, or not at all."""

from __future__ import annotations

import os
import pickle
import random

import numpy as np
import pytest
import torch

from glide_model.llm.checkpoint import TRAIN_STATE, CheckpointError, load_train_state
from glide_model.llm.trainer import rng_state, set_rng_state


class _Evil:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_train_state_holding_a_malicious_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    torch.save({"step": 3, "optimizer": _Evil(str(marker))}, ckpt / TRAIN_STATE)
    with pytest.raises(CheckpointError, match="refused"):
        load_train_state(ckpt)
    assert not marker.exists()


def test_a_plain_pickle_file_is_refused_too(tmp_path):
    marker = tmp_path / "pwned"
    (tmp_path / TRAIN_STATE).write_bytes(pickle.dumps(_Evil(str(marker))))
    with pytest.raises(CheckpointError):
        load_train_state(tmp_path)
    assert not marker.exists()


def test_no_train_state_is_none_and_a_corrupt_one_is_a_checkpoint_error(tmp_path):
    assert load_train_state(tmp_path) is None
    (tmp_path / TRAIN_STATE).write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError):
        load_train_state(tmp_path)


def test_the_real_train_state_round_trips_through_weights_only(tmp_path):
    """What the trainer saves (optimizer, scheduler, sampler, every RNG) loads safely and resumes exactly."""
    from glide_model.llm.trainer import BatchSampler

    param = torch.nn.Parameter(torch.randn(3, 2))
    opt = torch.optim.AdamW([param], lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 / (step + 1))
    param.grad = torch.ones_like(param)
    opt.step()
    sched.step()
    sampler = BatchSampler(10, 3, seed=1)
    sampler.next()
    state = {"name": "s", "step": 1, "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
             "sampler": sampler.state_dict(), "rng": rng_state(), "losses": [0.5]}
    torch.save(state, tmp_path / TRAIN_STATE)
    expected = (torch.rand(3), random.random(), np.random.rand(3), sampler.next())

    torch.rand(5), random.random(), np.random.rand(7)  # move every RNG on
    loaded = load_train_state(tmp_path)
    set_rng_state(loaded["rng"])
    again = BatchSampler(10, 3, seed=99)
    again.load_state_dict(loaded["sampler"])
    opt2 = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(3, 2))], lr=0.1)
    opt2.load_state_dict(loaded["optimizer"])
    torch.testing.assert_close(torch.rand(3), expected[0])
    assert random.random() == expected[1]
    np.testing.assert_array_equal(np.random.rand(3), expected[2])
    assert again.next() == expected[3]
    torch.testing.assert_close(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
