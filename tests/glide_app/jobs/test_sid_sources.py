"""The real catalogs the report runs on (../shared/data), loaded without embedding anything."""

import numpy as np
import pytest

from glide_app.jobs import sid_sources as sources

pytestmark = pytest.mark.shared_data


def test_scientific_items_as_episodes():
    eps = sources.scientific_episodes()
    assert len(eps) == 4344 and eps["episode_id"].is_unique
    assert {"episode_id", "show_id", "title", "description", "topic", "locale", "playable", "popularity"} <= set(eps)
    assert eps["popularity"].sum() == 58_492  # every interaction counted once


def test_scientific_given_tables_parse_to_4x256_codes():
    tables = sources.scientific_given_tables()
    assert set(tables) == {"given_rkmeans", "given_rqvae"}
    ids = sources.scientific_episodes()["episode_id"].tolist()
    for table in tables.values():
        codes = sources.codes_for(table, ids)
        assert codes.shape == (4344, 4) and codes.min() >= 0 and codes.max() < 256
    assert tables["given_rkmeans"]["0"] == (113, 148, 140, 41)
    with pytest.raises(ValueError, match="no SID"):
        sources.codes_for(tables["given_rkmeans"], ["not-an-item"])


def test_podcasts_catalog_has_text():
    eps = sources.podcast_episodes()
    assert len(eps) > 20_000
    assert (eps["title"].fillna("").str.strip() != "").mean() > 0.99
    assert np.isin(["en-US"], eps["locale"].unique()).all()
