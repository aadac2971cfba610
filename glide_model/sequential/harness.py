"""One run, every system: load a dataset, split it leave-one-out, fit each registered system on the
training split and score it on the same test examples, under both protocols and per segment.

Results of each finished system are written to ``<out_dir>/systems/<name>.json`` (summary, fit
info and per-example metric values) as soon as it finishes; a rerun with the same data, mode, seed
and test sample loads them instead of refitting, so a run cut by a time limit keeps what it did.
The per-example values are what the paired bootstrap CIs against the reference systems (SASRec,
and later SID-only) are computed from.

``quick``: systems use their quick schedules (glide_model/sequential/baselines.py) and the test
examples are a sample of ``quick_users`` users (the same sample for every system, drawn with the
seed) when there are more. Scientific's 8,317 test users all fit under the default: scoring the
baselines on every user costs well under two minutes, and on a 3,000-user sample SASRec's
Recall@10 moved by +-0.01 around its bar (0.098 on one sample, 0.110 on all users). Systems whose
scoring is costly (the LLM) ask for a smaller sample of these (``System.test_users``); paired CIs
between systems scored on different samples use the examples both were scored on.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from glide_model.sequential.dataset import SequenceDataset, load_dataset
from glide_model.sequential.metrics import MAX_K, PROTOCOLS, compare, familiarity, per_user_metrics, summarize
from glide_model.sequential.popularity import item_counts
from glide_model.sequential.ranking import rank_in_batches
from glide_model.sequential.split import EvalSet, leave_one_out
from glide_model.sequential.systems import SYSTEMS, TrainingData, default_systems, load_system

QUICK_USERS = 10_000
REFERENCES = ("sasrec", "sid_only")  # every other system gets a paired CI against each one that ran
CHECKPOINT_VERSION = 1


def fingerprint(dataset: SequenceDataset, test: EvalSet, quick: bool, seed: int) -> str:
    """What a saved system result depends on: the data (and SIDs), the test examples, mode and seed."""
    digest = hashlib.sha256()
    digest.update(f"{CHECKPOINT_VERSION}|{dataset.name}|{dataset.n_items}|{quick}|{seed}|".encode())
    for seq in dataset.sequences:
        digest.update(np.asarray(seq, dtype=np.int64).tobytes() + b"|")
    if dataset.sids is not None:
        digest.update(np.ascontiguousarray(dataset.sids.codes).tobytes())
    digest.update(test.users.tobytes())
    return digest.hexdigest()[:16]


def _write_json(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, default=str))
    os.replace(tmp, path)  # a run killed mid-write leaves the old file or none, never half of one


def _load_checkpoint(path: Path, key: str) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return record if record.get("fingerprint") == key else None


def sample_positions(total: int, n: int | None, seed: int = 0) -> np.ndarray:
    """Sorted positions of ``n`` of ``total`` examples (all of them when n is None or larger), seeded."""
    if n is None or n >= total:
        return np.arange(total)
    return np.sort(np.random.default_rng(seed).choice(total, size=n, replace=False))


def score_system(ranker, test: EvalSet, segments: np.ndarray | None,
                 progress: Callable[[str], None] = lambda m: None, name: str = "") -> dict[str, Any]:
    """Both protocols: {"metrics": {protocol: summary}, "per_user": {protocol: {metric: [values]}}}."""
    metrics, per_user = {}, {}
    for protocol in PROTOCOLS:
        top = rank_in_batches(ranker, test.histories, MAX_K, exclude_history=protocol == "history_excluded",
                              progress=lambda done, total: progress(f"{name} {protocol}: ranked {done}/{total}"))
        values = per_user_metrics(top, test.targets)
        metrics[protocol] = summarize(values, segments)
        per_user[protocol] = {m: np.round(v, 6).tolist() for m, v in values.items()}
    return {"metrics": metrics, "per_user": per_user}


def evaluate_source(source: str | Path, systems: Sequence[str] | None = None, quick: bool = False,
                    sids_file: str | Path | None = None, seed: int = 0, out_dir: str | Path | None = None,
                    progress: Callable[[str], None] | None = None, quick_users: int = QUICK_USERS,
                    threads: int | None = None) -> dict[str, Any]:
    """Evaluate ``systems`` (default: every registered one but the LLM systems, which the CLI adds) on a
    dataset folder or named source.

    Returns {"source", "dataset", "quick", "seed", "protocols", "systems": {name: {"metrics":
    {protocol: {segment: {metric: value, "n"}}}, "info", "seconds", "resumed"}}, "skipped": {name:
    reason}, "comparisons": {name: {"vs <ref>": {protocol: {metric: CI}}}}}.
    """
    say = progress or (lambda message: None)
    names = default_systems(include_llm=False) if systems is None else list(dict.fromkeys(systems))
    unknown = [n for n in names if n not in SYSTEMS]
    if unknown:
        raise ValueError(f"unknown system(s) {unknown}; registered: {', '.join(SYSTEMS)}")
    dataset = load_dataset(source, sids_file)
    split = leave_one_out(dataset.sequences)
    test = split.test.sample(quick_users if quick else None, seed=seed)
    segments = familiarity(test, dataset.brand_codes())
    out = Path(out_dir) if out_dir is not None else None
    key = fingerprint(dataset, test, quick, seed)
    data = TrainingData(dataset=dataset, split=split, popularity=item_counts(split.train, dataset.n_items),
                        quick=quick, seed=seed, work_dir=out, threads=threads, progress=say)
    say(f"{dataset.name}: {len(dataset.user_ids)} users, {dataset.n_items} items, "
        f"{dataset.n_interactions} interactions; scoring {len(test)} test users")
    results: dict[str, Any] = {}
    per_user: dict[str, dict] = {}
    skipped: dict[str, str] = {}
    positions: dict[str, np.ndarray] = {}
    for name in names:
        system = load_system(name)
        wanted = getattr(system, "test_users", None)
        picked = sample_positions(len(test), wanted(data) if callable(wanted) else None, seed)
        sys_key = key if len(picked) == len(test) else f"{key}-n{len(picked)}"
        path = out / "systems" / f"{name}.json" if out is not None else None
        saved = _load_checkpoint(path, sys_key) if path is not None else None
        if saved is not None:
            say(f"{name}: finished in an earlier run, loaded {path}")
            if "skipped" in saved:
                skipped[name] = saved["skipped"]
            else:
                results[name] = {**saved["result"], "resumed": True}
                per_user[name] = saved["per_user"]
                positions[name] = np.asarray(saved.get("positions", picked), dtype=np.int64)
            continue
        reason = system.skip_reason(data)
        if reason is not None:
            say(f"{name}: skipped ({reason})")
            skipped[name] = reason
            if path is not None:
                _write_json(path, {"fingerprint": sys_key, "skipped": reason})
            continue
        sys_test = test if len(picked) == len(test) else test.subset(picked)
        sys_segments = segments if segments is None or len(picked) == len(test) else segments[picked]
        started = time.perf_counter()
        say(f"{name}: fitting" + ("" if len(picked) == len(test) else f" (scored on {len(picked)} test users)"))
        fitted = system.fit(data)
        fit_seconds = time.perf_counter() - started
        scored = score_system(fitted.ranker, sys_test, sys_segments, say, name)
        result = {"metrics": scored["metrics"], "info": fitted.info, "fit_seconds": round(fit_seconds, 1),
                  "seconds": round(time.perf_counter() - started, 1)}
        diagnose = getattr(fitted.ranker, "diagnostics", None)
        if callable(diagnose):
            result["diagnostics"] = diagnose(sys_test)
        say(f"{name}: recall@10 {result['metrics']['history_excluded']['overall']['recall@10']:.4f} "
            f"(history excluded) in {result['seconds']:.0f}s")
        results[name] = {**result, "resumed": False}
        per_user[name] = scored["per_user"]
        positions[name] = picked
        if path is not None:
            _write_json(path, {"fingerprint": sys_key, "result": result, "per_user": scored["per_user"],
                               "positions": picked.tolist()})
        del fitted  # an LLM ranker holds its model: let it go before the next system trains
    record = {
        "source": str(source), "dataset": _describe(dataset, len(test)), "quick": quick, "seed": seed,
        "protocols": list(PROTOCOLS), "systems": results, "skipped": skipped,
        "comparisons": comparisons(per_user, seed, positions),
    }
    if out is not None:
        _write_json(out / "results.json", record)
    return record


def comparisons(per_user: dict[str, dict], seed: int = 0,
                positions: dict[str, np.ndarray] | None = None) -> dict[str, dict]:
    """Paired bootstrap CI of every system against each reference system that ran, on the test
    examples both were scored on (``positions``: each system's examples; default all the same)."""
    positions = positions or {}
    out: dict[str, dict] = {}
    for ref in (r for r in REFERENCES if r in per_user):
        for name, values in per_user.items():
            if name == ref:
                continue
            mine, theirs = _aligned(positions.get(name), positions.get(ref))
            if mine is not None and not len(mine):
                continue
            out.setdefault(name, {})[f"vs {ref}"] = {
                protocol: compare(_take(values[protocol], mine), _take(per_user[ref][protocol], theirs), seed=seed)
                for protocol in PROTOCOLS
            }
    return out


def _aligned(a: np.ndarray | None, b: np.ndarray | None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Indices into each system's values of the examples both were scored on (None: take all)."""
    if a is None or b is None or (len(a) == len(b) and np.array_equal(a, b)):
        return None, None
    _, ia, ib = np.intersect1d(a, b, assume_unique=True, return_indices=True)
    return ia, ib


def _take(values: dict[str, list], index: np.ndarray | None) -> dict[str, list]:
    return values if index is None else {m: np.asarray(v)[index].tolist() for m, v in values.items()}


def _describe(dataset: SequenceDataset, n_test: int) -> dict[str, Any]:
    return {
        "name": dataset.name, "users": len(dataset.user_ids), "items": dataset.n_items,
        "interactions": dataset.n_interactions, "test_users": n_test, "item_text": dataset.items is not None,
        "sid_table": dataset.sids.source if dataset.sids is not None else None,
    }
