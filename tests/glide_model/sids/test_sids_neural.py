"""RQ-VAE and R-LFQ baselines: they train quickly, use their codebooks (no collapse), and share the
Quantizer protocol (encode/decode/save/load) with R-KMeans."""

import numpy as np
import pytest

from glide_model.sids.metrics import codebook_usage, collision_stats
from glide_model.sids.quantizer import Quantizer, make_quantizer

FAST = {"steps": 250, "batch_size": 128, "hidden": [64], "maintain_every": 50}


@pytest.fixture(scope="module", params=["rqvae", "rlfq"])
def trained(request, emb):
    kw = dict(FAST) if request.param == "rlfq" else dict(FAST, latent_dim=16)
    return make_quantizer(request.param, levels=3, codebook_size=16, seed=0, **kw).fit(emb, encoder="toy")


def test_trains_and_uses_many_codes(trained, emb):
    codes = trained.encode(emb)
    assert codes.shape == (len(emb), 3) and codes.min() >= 0 and codes.max() < 16
    usage = codebook_usage(codes, 16)
    # collapse would leave one or two codes per level; a healthy quantizer spreads items out
    assert min(usage["codebook_usage"]) >= 0.5, usage
    assert min(usage["codebook_entropy_bits"]) >= 2.0, usage
    assert collision_stats(codes)["unique_sids"] >= 100


def test_reconstruction_beats_the_mean(trained, emb):
    baseline = float(np.mean(np.sum((emb - emb.mean(0)) ** 2, axis=1)))
    assert trained.reconstruction_error(emb) < 0.9 * baseline
    # more levels, finer reconstruction
    codes = trained.encode(emb)
    errs = [float(np.mean(np.sum((emb - trained.decode(codes[:, :m])) ** 2, axis=1))) for m in (1, 3)]
    assert errs[1] < errs[0]


def test_deterministic_by_seed(trained, emb):
    again = make_quantizer(trained.kind, **trained.meta.config).fit(emb)
    np.testing.assert_array_equal(again.encode(emb), trained.encode(emb))


def test_save_load_round_trip(trained, emb, tmp_path):
    trained.save(tmp_path)
    loaded = Quantizer.load(tmp_path)
    assert type(loaded) is type(trained) and loaded.meta.version == trained.meta.version
    np.testing.assert_array_equal(loaded.encode(emb), trained.encode(emb))
    np.testing.assert_allclose(loaded.decode(trained.encode(emb[:5])), trained.decode(trained.encode(emb[:5])), atol=1e-6)


def test_rlfq_needs_power_of_two_codebook():
    with pytest.raises(ValueError, match="power-of-two"):
        make_quantizer("rlfq", levels=2, codebook_size=12)


def test_unknown_kind():
    with pytest.raises(ValueError, match="rkmeans"):
        make_quantizer("pq")


def test_k_larger_than_catalog(emb):
    with pytest.raises(ValueError, match="larger than the catalog"):
        make_quantizer("rqvae", levels=2, codebook_size=16, **FAST).fit(emb[:8])
