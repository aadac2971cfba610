"""Instruction-tuning examples (§3, §4.3.1): one row per non-habitual target listen.

A listen is a *target* when its show is not habitual for the user just before the listen (< 600 s
in the 28 days before, see glide/habits.py), the listen lasted at least ``min_listen_seconds`` and
the episode has a Semantic ID. Its mode is ``familiar`` when the user listened to the show before,
``unfamiliar`` otherwise.

Example contract (what the LLM trainer consumes), one row per example:

=================== ===========================================================================
user_id             str
ts                  target listen time (UTC)
target_episode_id   str
target_show_id      str
target_codes        tuple[int, ...] of length M: the target's SID
mode                "familiar" | "unfamiliar"
history_codes       list of M-tuples, time order (newest last): last ``history_len`` episodes
                    strictly before ts (may be empty)
history_episode_ids list[str] aligned with history_codes
consumed_episode_ids list[str]: every recent episode the feature store held (the serving rule's
                    "consumed", up to the streams' cap; history_* are its last ``history_len``)
locale, country     str (None when unknown)
affinity_topics     list[str] (empty when unknown)
cf_embedding        np.ndarray float32, or None when the user has no CF vector
surface             where the target listen happened
weight              float loss/sampling weight (surface weight x exploration upweighting)
=================== ===========================================================================

Rows are sorted by (ts, user_id, target_episode_id); ``frame.attrs["sampling"]`` holds the config
record and the row counts after each stage, for the run record.

Two input paths give the same output:

- :func:`build_examples` from raw listens, SID assignments, users and CF embeddings (pure pandas);
- :func:`examples_from_features` from a point-in-time-joined *feature frame*, i.e. what Feast's
  ``get_historical_features`` returns for an entity frame built by :func:`feature_entity_frame`
  (entity timestamp = ``glide.habits.feature_lookup_time(ts)``, 1 µs before the listen). Columns:

  - the listen itself: ``user_id``, ``show_id``, ``episode_id``, ``listened_seconds``, ``surface``,
    ``ts`` (the listen time; if absent, ``event_timestamp + LOOKUP_OFFSET``), ``event_timestamp``
    (the lookup time), optional ``event_id``;
  - view ``user_show_listening_28d``: ``listen_seconds_28d``, ``ever_listened``, ``habitual``
    (null = the user never listened to the show);
  - view ``user_recent_sids``: ``recent_episode_ids``, ``recent_sid_codes`` (flat, M per episode),
    optional ``sid_levels``;
  - view ``user_context``: ``locale``, ``country``, ``affinity_topics`` (each optional);
  - view ``user_cf_embedding``: ``cf_embedding`` (optional; name set by ``cf_column``);
  - the target's SID: ``sid_codes`` (view ``episode_catalog``) or the ``assignments`` argument.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from glide import habits

FAMILIAR, UNFAMILIAR = "familiar", "unfamiliar"
EXAMPLE_COLUMNS = (
    "user_id", "ts", "target_episode_id", "target_show_id", "target_codes", "mode", "history_codes",
    "history_episode_ids", "consumed_episode_ids", "locale", "country", "affinity_topics", "cf_embedding",
    "surface", "weight",
)


@dataclass(frozen=True)
class ExampleSamplingConfig:
    """Which target listens become examples, and with what weight (§4.3.1)."""

    history_len: int = 20  # SIDs of the last N episodes before the target
    min_listen_seconds: int = 30  # shorter target listens are not a preference signal
    modes: tuple[str, ...] = (FAMILIAR, UNFAMILIAR)
    # Cross-surface sampling: target share of examples per surface (renormalised over surfaces that
    # have targets; surfaces not named are dropped). None keeps every surface at its natural share.
    surface_quotas: Mapping[str, float] | None = None
    surface_weights: Mapping[str, float] | None = None  # per-surface weight multiplier
    exploration_weight: float = 2.0  # extra weight for exploration-placement listens
    exploration_surface: str = "exploration"
    max_examples_per_episode: int | None = 100  # popularity capping
    max_examples_per_user: int | None = None
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes kept in the record

    def __post_init__(self) -> None:
        if self.history_len < 0 or self.min_listen_seconds < 0:
            raise ValueError("history_len and min_listen_seconds must be >= 0")
        bad = set(self.modes) - {FAMILIAR, UNFAMILIAR}
        if bad or not self.modes:
            raise ValueError(f"modes must be a non-empty subset of ('familiar', 'unfamiliar'), got {self.modes}")
        if self.surface_quotas is not None:
            if any(v < 0 for v in self.surface_quotas.values()) or sum(self.surface_quotas.values()) <= 0:
                raise ValueError(f"surface_quotas must be >= 0 with a positive sum, got {dict(self.surface_quotas)}")
        if self.surface_weights is not None and any(v < 0 for v in self.surface_weights.values()):
            raise ValueError("surface_weights must be >= 0")
        if self.exploration_weight < 0:
            raise ValueError("exploration_weight must be >= 0")
        for cap in (self.max_examples_per_episode, self.max_examples_per_user):
            if cap is not None and cap < 1:
                raise ValueError("per-episode/per-user caps must be >= 1 or None")

    def to_record(self) -> dict[str, Any]:
        """Every knob as plain JSON-able values, for the run record."""
        record = asdict(self)
        record["modes"] = list(self.modes)
        for key in ("surface_quotas", "surface_weights"):
            record[key] = None if record[key] is None else dict(record[key])
        record["habit_window_days"] = habits.HABIT_WINDOW.days
        record["habit_threshold_seconds"] = habits.HABIT_THRESHOLD_SECONDS
        return record


# ------------------------------------------------------------------ entity frame / feature frame
def feature_entity_frame(listens: pd.DataFrame, config: ExampleSamplingConfig | None = None) -> pd.DataFrame:
    """Entity rows for Feast ``get_historical_features``: candidate target listens at lookup time.

    Only listens long enough to be targets are kept; the habit filter needs the features, so it is
    applied by :func:`examples_from_features`.
    """
    config = config or ExampleSamplingConfig()
    habits._require(listens, ["user_id", "show_id", "episode_id", "ts", "listened_seconds", "surface"], "listens")
    keep = [c for c in ("event_id", "user_id", "show_id", "episode_id", "ts", "surface", "listened_seconds")
            if c in listens.columns]
    out = listens.loc[listens["listened_seconds"] >= config.min_listen_seconds, keep].copy()
    out["event_timestamp"] = habits.feature_lookup_time(out["ts"])
    return out.reset_index(drop=True)


def feature_frame(
    listens: pd.DataFrame,
    assignments: pd.DataFrame | Mapping[str, Sequence[int]],
    users: pd.DataFrame | None = None,
    cf_embeddings: pd.DataFrame | None = None,
    config: ExampleSamplingConfig | None = None,
) -> pd.DataFrame:
    """The pandas twin of Feast's point-in-time join: the feature frame for candidate targets.

    Habit state comes from :func:`glide.habits.label_listens`, recent history from
    :func:`glide.habits.user_recent_sids_history`, both strictly before each listen.
    ``cf_embeddings`` is DataFrame[user_id, embedding] (e.g. ``CFModel.user_embeddings()``).
    """
    config = config or ExampleSamplingConfig()
    habits._require(listens, ["user_id", "show_id", "episode_id", "ts", "listened_seconds", "surface"], "listens")
    labelled = habits.label_listens(listens)
    cand = labelled[(~labelled["habitual_before"]) & (labelled["listened_seconds"] >= config.min_listen_seconds)]
    frame = feature_entity_frame(cand, config)
    frame["listen_seconds_28d"] = cand["listen_seconds_28d_before"].to_numpy()
    frame["ever_listened"] = cand["ever_before"].to_numpy()
    frame["habitual"] = cand["habitual_before"].to_numpy()

    # The streams' cap, not history_len: the rule's "consumed" is every recent episode the store holds.
    recent = habits.user_recent_sids_history(listens, assignments, cap=habits.RECENT_SIDS_CAP)
    frame["_row"] = np.arange(len(frame))
    joined = pd.merge_asof(
        frame.sort_values("event_timestamp", kind="stable"),
        recent.sort_values("event_timestamp", kind="stable").rename(columns={"event_timestamp": "_recent_at"}),
        left_on="event_timestamp", right_on="_recent_at", by="user_id", direction="backward",
    )
    frame = joined.sort_values("_row").drop(columns=["_row", "_recent_at"]).reset_index(drop=True)

    if users is not None:
        habits._require(users, ["user_id"], "users")
        ctx = [c for c in ("user_id", "locale", "country", "affinity_topics") if c in users.columns]
        frame = frame.merge(users[ctx].drop_duplicates("user_id"), on="user_id", how="left")
    if cf_embeddings is not None:
        habits._require(cf_embeddings, ["user_id", "embedding"], "cf_embeddings")
        cf = cf_embeddings[["user_id", "embedding"]].rename(columns={"embedding": "cf_embedding"})
        frame = frame.merge(cf.drop_duplicates("user_id"), on="user_id", how="left")
    return frame


# ------------------------------------------------------------------ examples
def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, (list, tuple, np.ndarray)):
        return False
    return bool(pd.isna(value))


def _target_ts(frame: pd.DataFrame) -> pd.Series:
    if "ts" in frame.columns:
        if "event_timestamp" in frame.columns and (frame["event_timestamp"] >= frame["ts"]).any():
            raise ValueError(
                "feature rows were looked up at or after the listen (event_timestamp >= ts), so they "
                "contain the target itself; build the entity frame with feature_entity_frame() "
                "(event_timestamp = glide.habits.feature_lookup_time(ts))"
            )
        return frame["ts"]
    if "event_timestamp" not in frame.columns:
        raise ValueError("feature frame needs `ts` (listen time) or `event_timestamp` (lookup time)")
    return frame["event_timestamp"] + habits.LOOKUP_OFFSET


def _history(
    ids: Any, flat_codes: Any, width: Any, m: int, history_len: int
) -> tuple[list[tuple[int, ...]], list[str]]:
    """Last ``history_len`` (codes, episode ids) from one row's recent-SID features."""
    if _is_missing(ids) or history_len == 0 or m == 0:
        return [], []
    if not _is_missing(width) and int(width) != m:
        raise ValueError(f"history SIDs have {int(width)} levels but targets have {m}: mixed quantizer versions?")
    codes = habits.unflatten_codes(flat_codes, m)
    ids = [str(e) for e in ids]
    if len(codes) != len(ids):
        raise ValueError("recent_sid_codes does not hold M codes per recent_episode_ids entry")
    return codes[-history_len:], ids[-history_len:]


def _listening_state(frame: pd.DataFrame) -> tuple[pd.Series, np.ndarray]:
    """(habitual before the listen, mode) per feature row."""
    seconds = pd.to_numeric(frame["listen_seconds_28d"]).fillna(0)
    habitual = (frame["habitual"].fillna(False).astype(bool) if "habitual" in frame.columns
                else seconds >= habits.HABIT_THRESHOLD_SECONDS)
    ever = frame["ever_listened"].fillna(False).astype(bool)
    return habitual, np.where(ever, FAMILIAR, UNFAMILIAR)


def _target_codes(frame: pd.DataFrame, assignments: pd.DataFrame | Mapping[str, Sequence[int]] | None
                  ) -> list[tuple[int, ...] | None]:
    """Each row's target SID (None when the episode has none): the ``sid_codes`` column, else ``assignments``."""
    if "sid_codes" in frame.columns:
        return [None if _is_missing(c) else tuple(int(x) for x in c) for c in frame["sid_codes"]]
    if assignments is not None:
        lookup = habits.codes_by_episode(assignments)
        return [lookup.get(e) for e in frame["episode_id"]]
    raise ValueError("the target SIDs are unknown: pass `assignments` or include a `sid_codes` column")


def _target_rows(frame: pd.DataFrame, habitual: pd.Series, has_sid: np.ndarray, mode: np.ndarray,
                 config: ExampleSamplingConfig, counts: dict[str, int]) -> np.ndarray:
    """Rows that are targets (non-habitual, long enough, with a SID, in a configured mode); the rows
    left after each filter are counted into ``counts``."""
    counts["input_rows"] = len(frame)
    keep = ~habitual.to_numpy()
    counts["non_habitual"] = int(keep.sum())
    keep &= frame["listened_seconds"].to_numpy() >= config.min_listen_seconds
    counts["long_enough"] = int(keep.sum())
    keep &= has_sid
    counts["with_sid"] = int(keep.sum())
    keep &= np.isin(mode, list(config.modes))
    counts["in_modes"] = int(keep.sum())
    return np.flatnonzero(keep)


def _sid_length(target_codes: list[tuple[int, ...] | None], rows: np.ndarray) -> int:
    levels = {len(target_codes[i]) for i in rows} or {0}
    if len(levels) > 1:
        raise ValueError(f"target SIDs have mixed lengths {sorted(levels)}")
    return levels.pop()


def _example_rows(sub: pd.DataFrame, ts: pd.Series, target_codes: list, mode: np.ndarray, m: int,
                  config: ExampleSamplingConfig, cf_column: str) -> pd.DataFrame:
    """The contract's columns (module docstring) for the target rows ``sub`` (before sampling)."""
    recent_ids = list(sub["recent_episode_ids"])
    recent_codes = list(sub["recent_sid_codes"])
    widths = list(sub["sid_levels"]) if "sid_levels" in sub.columns else [m] * len(sub)
    hist = [_history(i, c, w, m, config.history_len) for i, c, w in zip(recent_ids, recent_codes, widths)]

    def column(name: str, default: Any = None) -> list[Any]:
        return list(sub[name]) if name in sub.columns else [default] * len(sub)

    out = pd.DataFrame(
        {
            "user_id": sub["user_id"].astype(str).to_numpy(),
            "ts": ts,
            "target_episode_id": sub["episode_id"].astype(str).to_numpy(),
            "target_show_id": sub["show_id"].astype(str).to_numpy(),
            "target_codes": target_codes,
            "mode": mode,
            "history_codes": [h[0] for h in hist],
            "history_episode_ids": [h[1] for h in hist],
            "consumed_episode_ids": [[] if _is_missing(ids) else [str(e) for e in ids] for ids in recent_ids],
            "locale": [None if _is_missing(v) else str(v) for v in column("locale")],
            "country": [None if _is_missing(v) else str(v) for v in column("country")],
            "affinity_topics": [[] if _is_missing(v) else [str(t) for t in v] for v in column("affinity_topics")],
            "cf_embedding": [None if _is_missing(v) else np.asarray(v, dtype=np.float32) for v in column(cf_column)],
            "surface": sub["surface"].astype(str).to_numpy(),
            "event_id": column("event_id"),
        }
    )
    if not isinstance(out["ts"].dtype, pd.DatetimeTZDtype):
        out["ts"] = pd.to_datetime(out["ts"], utc=True)
    return out


def examples_from_features(
    frame: pd.DataFrame,
    config: ExampleSamplingConfig | None = None,
    assignments: pd.DataFrame | Mapping[str, Sequence[int]] | None = None,
    cf_column: str = "cf_embedding",
) -> pd.DataFrame:
    """Examples (module docstring contract) from a point-in-time-joined feature frame."""
    config = config or ExampleSamplingConfig()
    habits._require(frame, ["user_id", "show_id", "episode_id", "listened_seconds", "surface",
                            "listen_seconds_28d", "ever_listened", "recent_episode_ids", "recent_sid_codes"],
                    "feature frame")
    ts = _target_ts(frame)
    habitual, mode = _listening_state(frame)
    target_codes = _target_codes(frame, assignments)
    has_sid = np.array([c is not None for c in target_codes], dtype=bool)

    counts: dict[str, int] = {}
    rows = _target_rows(frame, habitual, has_sid, mode, config, counts)
    m = _sid_length(target_codes, rows)
    out = _example_rows(frame.iloc[rows], ts.iloc[rows].reset_index(drop=True), [target_codes[i] for i in rows],
                        mode[rows], m, config, cf_column)
    out = _sample(out, config, counts)
    out = out.drop(columns=[] if "event_id" in frame.columns else ["event_id"])
    out.attrs["sampling"] = {"config": config.to_record(), "counts": counts}
    return out


def request_rows(
    frame: pd.DataFrame,
    ts: pd.Series,
    modes: Sequence[str] | np.ndarray,
    config: ExampleSamplingConfig | None = None,
    cf_column: str = "cf_embedding",
) -> pd.DataFrame:
    """Example-contract rows for requests without a target (a session start at ``ts`` in ``modes``)
    from `glide_inputs` feature rows: the same builder as the training examples, target columns None."""
    config = config or ExampleSamplingConfig()
    habits._require(frame, ["user_id", "recent_episode_ids", "recent_sid_codes"], "feature frame")
    widths = [w for w in frame.get("sid_levels", pd.Series(dtype=object)) if not _is_missing(w)]
    m = int(widths[0]) if widths else 0
    sub = frame.assign(episode_id="", show_id="", surface="")
    out = _example_rows(sub, ts, [None] * len(frame), np.asarray(modes), m, config, cf_column)
    return out.assign(target_episode_id=None, target_show_id=None, surface=None, event_id=None)


def build_examples(
    listens: pd.DataFrame,
    assignments: pd.DataFrame | Mapping[str, Sequence[int]],
    users: pd.DataFrame | None = None,
    cf_embeddings: pd.DataFrame | None = None,
    config: ExampleSamplingConfig | None = None,
) -> pd.DataFrame:
    """Examples from raw listens: :func:`feature_frame` then :func:`examples_from_features`."""
    config = config or ExampleSamplingConfig()
    frame = feature_frame(listens, assignments, users, cf_embeddings, config)
    examples = examples_from_features(frame, config, assignments)
    # the frame was pre-filtered; count from the raw listens for the run record
    examples.attrs["sampling"]["counts"] = {"listens": len(listens), **examples.attrs["sampling"]["counts"]}
    return examples


# ------------------------------------------------------------------ sampling
def _capped(keys: pd.Series, priority: np.ndarray, cap: int) -> np.ndarray:
    """Mask keeping, per key, the ``cap`` rows of lowest priority."""
    rank = pd.Series(priority, index=keys.index).groupby(keys.to_numpy()).rank(method="first")
    return (rank <= cap).to_numpy()


def _sample(examples: pd.DataFrame, config: ExampleSamplingConfig, counts: dict[str, int]) -> pd.DataFrame:
    # A canonical order first, so the seeded choice does not depend on how the input was ordered.
    order_cols = ["ts", "user_id", "target_episode_id"] + (["event_id"] if examples["event_id"].notna().all() else [])
    ex = examples.sort_values(order_cols, kind="stable").reset_index(drop=True)
    priority = np.random.default_rng(config.seed).permutation(len(ex))

    if config.surface_quotas is not None and len(ex):
        present = ex["surface"].value_counts()
        quotas = {s: q for s, q in config.surface_quotas.items() if q > 0 and present.get(s, 0) > 0}
        keep = np.zeros(len(ex), dtype=bool)
        if quotas:
            total_q = sum(quotas.values())
            # The largest total that meets every share without repeating an example.
            total = min(present[s] / (q / total_q) for s, q in quotas.items())
            for s, q in quotas.items():
                take = int(np.floor(total * q / total_q + 1e-9))
                idx = np.flatnonzero(ex["surface"].to_numpy() == s)
                keep[idx[np.argsort(priority[idx], kind="stable")[:take]]] = True
        ex, priority = ex[keep].reset_index(drop=True), priority[keep]
    counts["after_surface_quotas"] = len(ex)

    if config.max_examples_per_episode is not None and len(ex):
        keep = _capped(ex["target_episode_id"], priority, config.max_examples_per_episode)
        ex, priority = ex[keep].reset_index(drop=True), priority[keep]
    counts["after_episode_cap"] = len(ex)

    if config.max_examples_per_user is not None and len(ex):
        keep = _capped(ex["user_id"], priority, config.max_examples_per_user)
        ex, priority = ex[keep].reset_index(drop=True), priority[keep]
    counts["after_user_cap"] = len(ex)

    weights = np.ones(len(ex), dtype=np.float64)
    if config.surface_weights is not None:
        weights *= ex["surface"].map(lambda s: config.surface_weights.get(s, 1.0)).to_numpy(dtype=np.float64)
    weights *= np.where(ex["surface"].to_numpy() == config.exploration_surface, config.exploration_weight, 1.0)
    ex["weight"] = weights
    counts["familiar"] = int((ex["mode"] == FAMILIAR).sum())
    counts["unfamiliar"] = int((ex["mode"] == UNFAMILIAR).sum())
    return ex[list(EXAMPLE_COLUMNS) + ["event_id"]]
