"""`glide review export` then `glide review import` of a filled-in file."""

from __future__ import annotations

import json

import pandas as pd
from click.testing import CliRunner

from glide_app.cli import cli


def test_export_then_import_a_labelled_file(tmp_path) -> None:
    packet = tmp_path / "packet"
    result = CliRunner().invoke(cli, ["review", "export", "--quick", "--users", "3", "-k", "3", "--model", "tiny",
                                      "--out", str(packet), "--data-dir", str(tmp_path / "data"), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["items"] == 18 and summary["users"] == 3
    assert summary["systems"] == ["popularity", "topic_popularity"] and "no trained model" in summary["systems_note"]
    key_path = tmp_path / "packet.key.json"
    assert summary["key"] == str(key_path) and not list(packet.glob("*key*"))  # the key stays out of the packet
    rows = pd.read_csv(packet / "review.csv")
    html = (packet / "review.html").read_text()
    assert set(rows["list"]) == {"A", "B"} and rows["label"].isna().all()
    assert "listener_01" in html and "popularity" not in " ".join(rows.columns)
    assert not rows.astype(str).apply(lambda c: c.str.contains("user_0")).any().any()  # anonymised
    key = json.loads(key_path.read_text())
    assert all(v["judge"] is not None for v in key["items"].values())

    # A reviewer who likes topic_popularity's items and dislikes popularity's.
    system = rows["review_id"].map(lambda r: key["items"][r]["system"])
    rows["label"] = system.map({"topic_popularity": 5, "popularity": 1})
    rows.loc[rows.index[:2], "label"] = None  # unlabelled rows are skipped
    labelled = tmp_path / "labels.csv"
    rows.to_csv(labelled, index=False)
    result = CliRunner().invoke(cli, ["review", "import", str(labelled), "--key", str(key_path), "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["labelled"] == 16 and record["items"] == 18
    assert record["preference"]["preferred"] == "topic_popularity"
    assert record["preference"]["mean_label"] == {"popularity": 1.0, "topic_popularity": 5.0}
    assert set(record["agreement"]) >= {"kappa", "kappa_quadratic", "pairwise_agreement", "n_pairs"}
    assert "reviewers prefer" in result.stdout


def test_import_rejects_labels_off_the_scale(tmp_path) -> None:
    packet = tmp_path / "packet"
    CliRunner().invoke(cli, ["review", "export", "--quick", "--users", "1", "-k", "2", "--no-judge",
                             "--out", str(packet), "--data-dir", str(tmp_path / "data")])
    rows = pd.read_csv(packet / "review.csv")
    rows["label"] = 9
    rows.to_csv(packet / "review.csv", index=False)
    result = CliRunner().invoke(cli, ["review", "import", str(packet / "review.csv")])  # key found beside the packet
    assert result.exit_code != 0 and "1-5" in result.output


def test_asking_for_glide_without_a_trained_model_says_what_to_run(tmp_path) -> None:
    result = CliRunner().invoke(cli, ["review", "export", "--glide", "--no-judge", "--data-dir", str(tmp_path)])
    assert result.exit_code != 0 and "glide train" in result.output
    result = CliRunner().invoke(cli, ["review", "export", "--glide", "--quick", "--no-judge", "--data-dir", str(tmp_path)])
    assert result.exit_code != 0 and "drop --quick" in result.output
