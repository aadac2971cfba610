import json

import numpy as np
import pytest

from glide_model.sids.quantizer import NotFittedError, Quantizer, load_quantizer, read_meta
from glide_model.sids.rkmeans import RKMeans, kmeans

from tests.glide_model.sids.sid_fixtures import clustered_embeddings


@pytest.fixture(scope="module")
def fitted(emb):
    return RKMeans(levels=4, codebook_size=16, seed=3).fit(emb, encoder="toy")


def test_residual_error_falls_level_by_level(fitted, emb):
    errors = fitted.meta.metrics["residual_error"]
    assert len(errors) == 4
    assert all(b < a for a, b in zip(errors, errors[1:]))
    assert errors[0] < float(np.mean(np.sum(emb**2, axis=1)))
    # decoding longer prefixes reconstructs better, matching the recorded residuals
    codes = fitted.encode(emb)
    recon = [float(np.mean(np.sum((emb - fitted.decode(codes[:, : m + 1])) ** 2, axis=1))) for m in range(4)]
    assert all(b < a for a, b in zip(recon, recon[1:]))
    np.testing.assert_allclose(recon, errors, rtol=1e-3)


def test_codes_shape_range_and_nearest_centroid(fitted, emb):
    codes = fitted.encode(emb)
    assert codes.shape == (len(emb), 4) and codes.dtype == np.int64
    assert codes.min() >= 0 and codes.max() < 16
    # eq. 2: level 1 code is the nearest level-1 centroid
    d = ((emb[:, None, :] - fitted.centroids[0][None]) ** 2).sum(-1)
    np.testing.assert_array_equal(codes[:, 0], d.argmin(1))


def test_deterministic_by_seed(emb):
    a = RKMeans(levels=3, codebook_size=16, seed=7).fit(emb)
    b = RKMeans(levels=3, codebook_size=16, seed=7).fit(emb)
    c = RKMeans(levels=3, codebook_size=16, seed=8).fit(emb)
    np.testing.assert_array_equal(a.centroids, b.centroids)
    np.testing.assert_array_equal(a.encode(emb), b.encode(emb))
    assert not np.array_equal(a.centroids, c.centroids)


def test_unseen_items_get_the_codes_of_their_near_duplicates(fitted, emb):
    rng = np.random.default_rng(1)
    unseen = emb[:50] + 1e-4 * rng.normal(size=emb[:50].shape).astype(np.float32)
    codes = fitted.encode(unseen)
    assert (codes[:, 0] == fitted.encode(emb[:50])[:, 0]).all()
    # new items on the same topics get valid codes and reconstruct about as well as training items
    new = clustered_embeddings(n=40, dim=emb.shape[1], sample_seed=99)
    assert fitted.encode(new).shape == (40, 4)
    err = np.sum((new - fitted.decode(fitted.encode(new))) ** 2, axis=1).mean()
    assert err < 1.5 * fitted.meta.metrics["residual_error"][-1]


def test_minibatch_path_is_used_for_large_catalogs_and_works():
    x = clustered_embeddings(n=3000, dim=16, clusters=20, seed=2)
    full = kmeans(x, 20, seed=0)
    mini = kmeans(x, 20, seed=0, minibatch_threshold=1000, batch_size=256, minibatch_epochs=5)
    assert mini.n_iter == 5 * 12  # 5 epochs x ceil(3000/256) steps: the mini-batch branch ran
    assert mini.inertia < 1.15 * full.inertia
    again = kmeans(x, 20, seed=0, minibatch_threshold=1000, batch_size=256, minibatch_epochs=5)
    np.testing.assert_array_equal(mini.centroids, again.centroids)


def test_duplicate_points_fewer_than_k_still_give_finite_centroids():
    x = np.repeat(np.eye(4, dtype=np.float32), 10, axis=0)  # 4 distinct points, 40 rows
    res = kmeans(x, 8, seed=0)
    assert np.isfinite(res.centroids).all() and res.inertia == pytest.approx(0.0, abs=1e-6)


def test_k_larger_than_catalog_is_a_clear_error(emb):
    with pytest.raises(ValueError, match=r"larger than the catalog \(N=10\).*--codebook 8"):
        RKMeans(levels=2, codebook_size=16).fit(emb[:10])


def test_nan_embeddings_are_rejected_with_row_numbers(emb, fitted):
    bad = emb.copy()
    bad[[5, 17]] = np.nan
    with pytest.raises(ValueError, match=r"NaN/inf in 2 row\(s\) \(first: \[5, 17\]\)"):
        RKMeans(levels=2, codebook_size=8).fit(bad)
    with pytest.raises(ValueError, match="NaN"):
        fitted.encode(bad)


def test_bad_shapes_and_codes(fitted, emb):
    with pytest.raises(ValueError, match="dimension 5"):
        fitted.encode(np.zeros((3, 5), dtype=np.float32))
    with pytest.raises(ValueError, match="non-empty"):
        fitted.encode(np.zeros((0, emb.shape[1]), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\[0, 16\)"):
        fitted.decode(np.array([[0, 16, 0, 0]]))
    with pytest.raises(ValueError):
        fitted.decode(np.zeros((2, 5), dtype=np.int64))  # more levels than fitted
    with pytest.raises(NotFittedError):
        RKMeans(levels=2, codebook_size=8).encode(emb)


def test_save_load_round_trip(fitted, emb, tmp_path):
    fitted.save(tmp_path / "q")
    meta = json.loads((tmp_path / "q" / "quantizer.json").read_text())
    for key in ("version", "kind", "levels", "codebook_size", "dim", "seed", "encoder", "fit_seconds", "created_at"):
        assert key in meta
    assert meta["kind"] == "rkmeans" and meta["encoder"] == "toy" and meta["version"].startswith("rkmeans-4x16-")
    loaded = Quantizer.load(tmp_path / "q")
    assert isinstance(loaded, RKMeans) and loaded.meta == fitted.meta
    np.testing.assert_array_equal(loaded.encode(emb), fitted.encode(emb))
    np.testing.assert_array_equal(load_quantizer(tmp_path / "q").centroids, fitted.centroids)
    assert read_meta(tmp_path / "q").version == fitted.meta.version


def test_load_of_missing_folder_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="glide sids fit"):
        load_quantizer(tmp_path)


def test_thread_cap_gives_the_same_codes(emb):
    capped = RKMeans(levels=2, codebook_size=8, seed=0, num_threads=1).fit(emb)
    free = RKMeans(levels=2, codebook_size=8, seed=0).fit(emb)
    assert capped.meta.config["num_threads"] == 1
    np.testing.assert_array_equal(capped.encode(emb), free.encode(emb))
