"""Two writers upserting overlapping shows in opposite orders at once (two stream workers handling
catalog updates of the same shows): PostgreSQL must never deadlock one of them."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest

from glide.catalog import CatalogDB


def _shows(ids: list[int], rev: int) -> pd.DataFrame:
    return pd.DataFrame({"show_id": [f"s{i:04d}" for i in ids], "title": [f"t{rev}"] * len(ids),
                         "description": "", "host": "", "topics": [["science"]] * len(ids),
                         "locale": "en-US", "popularity": 1.0})


@pytest.mark.parametrize("fresh_db", ["postgresql"], indirect=True)
def test_concurrent_overlapping_upserts_do_not_deadlock(db: CatalogDB) -> None:
    other = CatalogDB(db.url.render_as_string(hide_password=False), schema=db.schema)
    ids = list(range(300))
    try:
        with ThreadPoolExecutor(2) as pool:
            for rev in range(6):
                a = pool.submit(db.upsert_shows, _shows(ids, rev))
                b = pool.submit(other.upsert_shows, _shows(ids[::-1], rev))
                assert a.result() == b.result() == len(ids)
    finally:
        other.close()
    assert len(db.shows_frame()) == len(ids)
