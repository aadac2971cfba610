"""Serving precision on the worker's real load path: a bfloat16 export is served in bfloat16 and ranks
exactly as evaluation's loader ranks it (one loader, glide_model/llm/serving_model.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from glide.catalog import CatalogDB
from glide_model.llm.decoding import HFBackend
from glide_model.serving.contract import RecRequest
from glide_model.sids.trie import SidTrie
from streams.candidates import CandidateConfig
from streams.serving import build_service
from tests.streams.helpers import QUANTIZER, register_sids, tiny_glide_export

M, K = 3, 8


def _catalog(settings) -> dict[str, tuple[int, ...]]:
    db = CatalogDB.from_settings(settings)
    db.migrate()
    db.upsert_shows([{"show_id": f"ps{j}", "title": f"Show {j}", "locale": "en-US"} for j in range(4)])
    episodes = pd.DataFrame([{
        "episode_id": f"pe{i:03d}", "show_id": f"ps{i % 4}", "title": f"Episode {i}", "description": f"About {i}",
        "locale": "en-US", "playable": True, "popularity": float(i),
        "published_at": pd.Timestamp("2026-01-01", tz="UTC"), "duration_s": 1800, "topic": "news"}
        for i in range(40)])
    db.upsert_episodes(episodes)
    db.close()
    return register_sids(settings, episodes, levels=M, codebook=K)


def test_the_worker_decodes_in_the_exports_serving_dtype_as_evaluation_does(embedded_stack, tmp_path):
    settings, _ = embedded_stack
    sids = _catalog(settings)
    export = tiny_glide_export(tmp_path, M, K, QUANTIZER, seed=5, serving_dtype="bfloat16")

    service = build_service(settings, export, num_beams=K, config=CandidateConfig(refresh_ttl_s=0))
    evaluated = HFBackend.from_checkpoint(export, SidTrie(np.asarray(list(sids.values())), K),
                                          quantizer_version=QUANTIZER, catalog_version=None, num_beams=K)

    assert service.backend.glm.model.dtype == torch.bfloat16
    assert evaluated.glm.model.dtype == torch.bfloat16
    reqs = [RecRequest(history_codes=[(1, 2, 0), (3, 4, 1)], mode=mode, locale="en-US", affinity_topics=["news"])
            for mode in ("familiar", "unfamiliar")]
    served = service.backend.generate(reqs)
    assert all(len(r) == K for r in served)
    assert served == evaluated.generate(reqs)
