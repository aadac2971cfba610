"""Dataset folders load into dense item indices; malformed input fails with one line naming the file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from glide_model.sequential.dataset import load_dataset, resolve_source
from glide_model.sequential.errors import DatasetError
from tests.glide_model.sequential.synthetic import ring_items, write_dataset


def test_folder_loads_with_item_text(tmp_path):
    sequences = {"u1": [3, 1, 2], "u2": ["1", "7"]}  # numbers and strings name the same items
    items = {"1": {"title": "One", "brand": "acme", "categories": ["Tools", "Saws"]}, "2": {"title": "Two"},
             "3": {"title": "Three", "description": None}, "7": {"title": "Seven"}, "9": {"title": "never bought"}}
    dataset = load_dataset(write_dataset(tmp_path, "Shop", sequences=sequences, items=items))
    assert dataset.name == "Shop" and dataset.user_ids == ("u1", "u2")
    assert dataset.item_ids == ("3", "1", "2", "7", "9")  # first appearance, then the item file's rest
    assert [s.tolist() for s in dataset.sequences] == [[0, 1, 2], [1, 3]]
    assert dataset.items[1].categories == "Tools,Saws" and dataset.items[0].description == ""
    assert dataset.brand_codes().tolist() == [-1, 0, -1, -1, -1]
    assert dataset.n_interactions == 5 and dataset.sids is None


def test_folder_without_item_file(tmp_path):
    dataset = load_dataset(write_dataset(tmp_path, sequences={"a": [1, 2]}))
    assert dataset.items is None and dataset.brand_codes() is None


@pytest.mark.parametrize(("sequences", "message"), [
    ({"u1": [1, 2], "u2": []}, "user 'u2' has an empty sequence"),
    ({"u1": [1, [2, 3]]}, "user 'u1' has a nested list \\(ragged sequence\\)"),
    ({"u1": "1 2 3"}, "user 'u1' has str '1 2 3', not a list of item ids"),
    ({"u1": {"a": 1}}, "not a list of item ids"),
    ({"u1": [1, None]}, "user 'u1' has None where an item id"),
    ({"u1": [1, 2.5]}, "user 'u1' has 2.5 where an item id"),
    ({"u1": [True]}, "where an item id"),
    ({}, "expected a non-empty JSON object"),
    ([[1, 2]], "expected a non-empty JSON object"),
])
def test_bad_sequences_are_rejected(tmp_path, sequences, message):
    with pytest.raises(DatasetError, match=message) as err:
        load_dataset(write_dataset(tmp_path, sequences=sequences))
    assert "Ring.inter.json" in str(err.value) and "\n" not in str(err.value)


def test_unreadable_json(tmp_path):
    (tmp_path / "Bad.inter.json").write_text('{"u1": [1, 2')
    with pytest.raises(DatasetError, match="Bad.inter.json is not readable JSON"):
        load_dataset(tmp_path)


def test_item_file_must_cover_interactions(tmp_path):
    folder = write_dataset(tmp_path, sequences={"u1": [0, 1, 99]}, items=ring_items(5))
    with pytest.raises(DatasetError, match=r"1 interacted item\(s\) are missing, e\.g\. \['99'\]"):
        load_dataset(folder)
    (folder / "Ring.item.json").write_text(json.dumps({"0": "just a title", "1": {}, "99": {}}))
    with pytest.raises(DatasetError, match="item '0' has str, not an object"):
        load_dataset(folder)


def test_missing_or_ambiguous_folder(tmp_path):
    with pytest.raises(DatasetError, match="neither a folder nor one of"):
        load_dataset(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="has no <name>.inter.json"):
        load_dataset(tmp_path)
    write_dataset(tmp_path, "A", sequences={"u": [1]})
    write_dataset(tmp_path, "B", sequences={"u": [1]})
    with pytest.raises(DatasetError, match=r"has 2 \(A.inter.json, B.inter.json\)"):
        load_dataset(tmp_path)


def test_sid_table_is_attached(tmp_path):
    folder = write_dataset(tmp_path, sequences={"u": [1, 2]}, sids={"1": ["<a_0>"], "2": ["<a_1>"]})
    dataset = load_dataset(folder, folder / "Ring.sids.json")
    assert dataset.sids.codes.tolist() == [[0], [1]]


@pytest.mark.shared_data
def test_scientific_is_a_named_source():
    assert resolve_source("scientific").name == "amazon18_scientific"
    dataset = load_dataset("scientific")
    assert (len(dataset.user_ids), dataset.n_items, dataset.n_interactions) == (8317, 4344, 58492)
    assert dataset.items is not None and int((dataset.brand_codes() >= 0).sum()) == 4332
    assert all(len(s) >= 5 for s in dataset.sequences) and np.all(np.concatenate(dataset.sequences) < 4344)
