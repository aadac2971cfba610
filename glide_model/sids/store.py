"""Where fitted SID spaces live on disk: ``<data_dir>/sids/<version>/`` holds the quantizer
artifacts plus ``assignments.parquet`` (episode_id, codes) for the catalog it was fitted on;
``<data_dir>/sids/CURRENT`` names the version that serving and `glide sids refresh` use."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from glide_model.sids.quantizer import Quantizer, load_quantizer

ASSIGNMENTS_FILE = "assignments.parquet"
CURRENT_FILE = "CURRENT"


def sids_root(data_dir: str | Path) -> Path:
    return Path(data_dir) / "sids"


def save_fitted(
    quantizer: Quantizer, episode_ids: Sequence[str], codes: np.ndarray, data_dir: str | Path, set_current: bool = True
) -> Path:
    """Write artifacts + assignments under <data_dir>/sids/<version>/ and optionally make it CURRENT."""
    root = sids_root(data_dir)
    directory = quantizer.save(root / quantizer.meta.version)
    frame = pd.DataFrame({"episode_id": list(episode_ids), "codes": [list(map(int, c)) for c in codes]})
    frame.to_parquet(directory / ASSIGNMENTS_FILE, index=False)
    if set_current:
        tmp = root / f".{CURRENT_FILE}.tmp"
        tmp.write_text(quantizer.meta.version + "\n")
        tmp.replace(root / CURRENT_FILE)
    return directory


def current_version(data_dir: str | Path) -> str:
    path = sids_root(data_dir) / CURRENT_FILE
    if not path.exists():
        raise FileNotFoundError(f"no fitted SID quantizer under {sids_root(data_dir)}: run `glide sids fit` first")
    return path.read_text().strip()


def version_dir(data_dir: str | Path, version: str | None = None) -> Path:
    """Artifact folder of ``version`` (default: CURRENT)."""
    version = version or current_version(data_dir)
    directory = sids_root(data_dir) / version
    if not directory.is_dir():
        known = sorted(p.name for p in sids_root(data_dir).glob("*") if p.is_dir())
        raise FileNotFoundError(f"no SID version {version!r} under {sids_root(data_dir)} (known: {known or 'none'})")
    return directory


def load_version(data_dir: str | Path, version: str | None = None) -> Quantizer:
    return load_quantizer(version_dir(data_dir, version))


def read_assignments(directory: str | Path) -> dict[str, tuple[int, ...]]:
    frame = pd.read_parquet(Path(directory) / ASSIGNMENTS_FILE)
    return {eid: tuple(int(c) for c in codes) for eid, codes in zip(frame["episode_id"], frame["codes"])}
