"""The online layout cache: each feature view's join keys and feature types, as a JSON file.

The online writer needs the layout to encode rows, but reading it from Feast's registry means
importing Feast (7-16 s), which every stream-worker restart would pay. So ``feast apply`` time
(``streams.feature_store.apply_definitions``) writes ``<feast_dir>/layout-<project>.json`` and
workers read that; only when the file is missing is Feast imported, once, to write it.

The cache is plain JSON data: ``{"project", "versioning", "views": {name: {"join_keys",
"features": [[name, value type], ...]}}}``.
"""

from __future__ import annotations

import json
from pathlib import Path

from glide.config import GlideSettings
from streams.feast_config import open_store, repo_config_dict


def layout_path(settings: GlideSettings, project: str) -> Path:
    return settings.feast_dir / f"layout-{project}.json"


def layout_of_store(store) -> dict:
    """Views, join keys and feature types of a (feast) FeatureStore, as plain JSON data."""
    views = {}
    for fv in store.list_feature_views():
        views[fv.name] = {"join_keys": [c.name for c in fv.entity_columns],
                          "features": [[f.name, f.dtype.to_value_type().name] for f in fv.features]}
    versioning = bool(getattr(store.config.registry, "enable_online_feature_view_versioning", False))
    return {"project": store.config.project, "versioning": versioning, "views": views}


def write_layout(settings: GlideSettings, store) -> Path:
    """Write the store's layout atomically (a reader never sees half a file); returns its path."""
    path = layout_path(settings, store.config.project)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(layout_of_store(store), indent=1))
    tmp.replace(path)
    return path


def load_layout(settings: GlideSettings, project: str | None = None) -> dict:
    """The cached layout; without one, import Feast once and write it."""
    project = repo_config_dict(settings, project)["project"]
    path = layout_path(settings, project)
    if not path.exists():
        write_layout(settings, open_store(settings, project))
    return json.loads(path.read_text())
