"""A given SID table: any <label code> spelling and any number of levels load, collisions are kept,
and a table that does not fit the dataset fails with one clear line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from glide_model.sequential.dataset import load_dataset
from glide_model.sequential.errors import DatasetError
from glide_model.sequential.sid_table import parse_sid_token, read_sid_table, sid_table_from_mapping
from tests.glide_model.sequential.synthetic import write_dataset


@pytest.mark.parametrize(("token", "expected"), [
    ("<a_113>", ("a", 113)), ("<SID_1=13>", ("SID_1", 13)), ("<L2-7>", ("L2", 7)), ("<113>", ("", 113)),
    ("<lvl3:0>", ("lvl3", 0)), (" <b 4> ", ("b", 4)), ("<c5>", ("c", 5)),
])
def test_token_spellings(token, expected):
    assert parse_sid_token(token) == expected


@pytest.mark.parametrize("token", ["a_113", "<a_>", "<>", 113, None, "<a_1><b_2>"])
def test_tokens_of_another_shape_are_rejected(token):
    with pytest.raises(DatasetError, match="SID token"):
        parse_sid_token(token)


def test_collisions_and_unusual_spelling_load(tmp_path):
    sequences = {"u1": ["x", "y", "z"], "u2": ["z", "y", "w"]}
    sids = {"x": ["<L1-0>", "<L2-3>", "<L3-1>"], "y": ["<L1-0>", "<L2-3>", "<L3-1>"],  # x and y collide
            "z": ["<L1-2>", "<L2-0>", "<L3-0>"], "w": ["<L1-1>", "<L2-9>", "<L3-4>"]}
    folder = write_dataset(tmp_path, "Odd", sequences=sequences, sids=sids)
    dataset = load_dataset(folder, folder / "Odd.sids.json")
    table = dataset.sids
    assert table.levels == 3 and table.codebook_size == 10 and table.labels == ("L1", "L2", "L3")
    row = {item: table.codes[i].tolist() for i, item in enumerate(dataset.item_ids)}
    assert row == {"x": [0, 3, 1], "y": [0, 3, 1], "z": [2, 0, 0], "w": [1, 9, 4]}
    assert table.collided_items() == 2


def test_single_level_table(tmp_path):
    table = sid_table_from_mapping({"a": ["<7>"], "b": ["<2>"]}, ["a", "b"])
    assert table.codes.tolist() == [[7], [2]] and table.levels == 1 and table.codebook_size == 8


@pytest.mark.parametrize(("table", "message"), [
    ({"a": ["<x_1>"], "b": ["<x_2>"], "zz": ["<x_3>"]}, r"1 item id\(s\) not in the dataset, e\.g\. \['zz'\]"),
    ({"a": ["<x_1>"]}, r"1 dataset item\(s\) have no SID, e\.g\. \['b'\]"),
    ({"a": ["<x_1>", "<y_1>"], "b": ["<x_2>"]}, "item 'b' has 1 SID levels, the first item has 2"),
    ({"a": ["<x_1>", "<y_1>"], "b": ["<y_2>", "<x_2>"]}, "at level 1, where the first item has label 'x'"),
    ({"a": "<x_1>", "b": ["<x_2>"]}, "not a non-empty list of SID tokens"),
    ({"a": [], "b": ["<x_2>"]}, "not a non-empty list of SID tokens"),
    ({}, "non-empty JSON object"),
])
def test_tables_that_do_not_fit_are_rejected(table, message):
    with pytest.raises(DatasetError, match=message):
        sid_table_from_mapping(table, ["a", "b"], source="t.json")


def test_unreadable_table_file(tmp_path):
    bad = tmp_path / "sids.json"
    bad.write_text("{not json")
    with pytest.raises(DatasetError, match="sids.json is not readable JSON"):
        read_sid_table(bad, ["a"])
    with pytest.raises(DatasetError, match="does not exist"):
        read_sid_table(tmp_path / "absent.json", ["a"])
    assert np.array_equal(sid_table_from_mapping(json.loads('{"a": ["<q_1>"]}'), ["a"]).codes, [[1]])
