"""Write a CF model's user vectors to the ONLINE store (`user_cf_embedding`), stamped with its version.

The offline jobs write CF vectors to the offline store (training reads them point-in-time); the
GLIDE worker reads them from the online store. Without this step the online store holds no vector,
and every listener is conditioned on the projector's learned default vector while offline evaluation
feeds real ones.

Every vector carries ``cf_version`` (``CFModel.version``); a GLIDE model records the version it was
trained on in its manifest, and the worker serves a vector of another version with the default
vector (streams/candidates.py). Who calls this decides *when* the online space changes:
`glide train` after its model is trained, `glide retrain` only for a promoted challenger, and before
the registry promotion (glide_app/jobs/retrain.py).

Rows are stamped with the wall clock (µs) at publish time, not with the CF model's data time: the
online writes are newest-wins (Feast's Redis store, and streams/online_writer.py on both stores),
so a stamp that is not newer than the stored vectors' would leave the old vectors in place.
"""

from __future__ import annotations

import time

import numpy as np

from glide.config import GlideSettings

VIEW = "user_cf_embedding"


def cf_rows(cf_model, feature_order: list[str], ts_us: int) -> list:
    """streams.online_rows rows of every user of ``cf_model``: vector + version in the view's order."""
    version = cf_model.version
    rows = []
    for user_id, vector in zip(cf_model.user_ids.tolist(), cf_model.user_factors):
        by_name = {"cf_embedding": np.asarray(vector, dtype=np.float32).tolist(), "cf_version": version}
        rows.append(((str(user_id),), [by_name[f] for f in feature_order], ts_us))
    return rows


def publish_cf_vectors(settings: GlideSettings, cf_model, store=None, at_us: int | None = None) -> int:
    """Write every user's CF vector online with ``cf_model.version``; returns the users written.

    The view layout is read from the Feast registry (``store``, or one opened for ``settings``), not
    the workers' layout cache, which may predate the ``cf_version`` feature. ``at_us`` overrides the
    publish time (µs since the epoch; default now, see the module docstring)."""
    from streams.feature_store import open_store
    from streams.online_layout import layout_of_store
    from streams.online_writer import OnlineWriter

    writer = OnlineWriter(settings, layout=layout_of_store(store if store is not None else open_store(settings)))
    try:
        features = writer.view(VIEW).features
        if "cf_version" not in features:
            from glide.config import ConfigError

            raise ConfigError(f"online view {VIEW} has no cf_version feature: run `glide stack up` "
                              "(feast apply) with the current feature_repo/definitions.py")
        ts_us = at_us if at_us is not None else time.time_ns() // 1000
        return writer.write(VIEW, cf_rows(cf_model, features, ts_us))
    finally:
        writer.close()
