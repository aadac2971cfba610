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
scoring is costly (the LLM) can pass a smaller ``quick_users``.
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
from glide_model.sequential.systems import SYSTEMS, TrainingData, load_system

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
    """Evaluate ``systems`` (default: every registered one) on a dataset folder or named source.

    Returns {"source", "dataset", "quick", "seed", "protocols", "systems": {name: {"metrics":
    {protocol: {segment: {metric: value, "n"}}}, "info", "seconds", "resumed"}}, "skipped": {name:
    reason}, "comparisons": {name: {"vs <ref>": {protocol: {metric: CI}}}}}.
    """
    say = progress or (lambda message: None)
    names = list(SYSTEMS) if systems is None else list(dict.fromkeys(systems))
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
    for name in names:
        path = out / "systems" / f"{name}.json" if out is not None else None
        saved = _load_checkpoint(path, key) if path is not None else None
        if saved is not None:
            say(f"{name}: finished in an earlier run, loaded {path}")
            if "skipped" in saved:
                skipped[name] = saved["skipped"]
            else:
                results[name] = {**saved["result"], "resumed": True}
                per_user[name] = saved["per_user"]
            continue
        system = load_system(name)
        reason = system.skip_reason(data)
        if reason is not None:
            say(f"{name}: skipped ({reason})")
            skipped[name] = reason
            if path is not None:
                _write_json(path, {"fingerprint": key, "skipped": reason})
            continue
        started = time.perf_counter()
        say(f"{name}: fitting")
        fitted = system.fit(data)
        fit_seconds = time.perf_counter() - started
        scored = score_system(fitted.ranker, test, segments, say, name)
        result = {"metrics": scored["metrics"], "info": fitted.info, "fit_seconds": round(fit_seconds, 1),
                  "seconds": round(time.perf_counter() - started, 1)}
        say(f"{name}: recall@10 {result['metrics']['history_excluded']['overall']['recall@10']:.4f} "
            f"(history excluded) in {result['seconds']:.0f}s")
        results[name] = {**result, "resumed": False}
        per_user[name] = scored["per_user"]
        if path is not None:
            _write_json(path, {"fingerprint": key, "result": result, "per_user": scored["per_user"]})
    record = {
        "source": str(source), "dataset": _describe(dataset, len(test)), "quick": quick, "seed": seed,
        "protocols": list(PROTOCOLS), "systems": results, "skipped": skipped,
        "comparisons": comparisons(per_user, seed),
    }
    if out is not None:
        _write_json(out / "results.json", record)
    return record


def comparisons(per_user: dict[str, dict], seed: int = 0) -> dict[str, dict]:
    """Paired bootstrap CI of every system against each reference system that ran."""
    out: dict[str, dict] = {}
    for ref in (r for r in REFERENCES if r in per_user):
        for name, values in per_user.items():
            if name == ref:
                continue
            out.setdefault(name, {})[f"vs {ref}"] = {
                protocol: compare(values[protocol], per_user[ref][protocol], seed=seed) for protocol in PROTOCOLS
            }
    return out


def _describe(dataset: SequenceDataset, n_test: int) -> dict[str, Any]:
    return {
        "name": dataset.name, "users": len(dataset.user_ids), "items": dataset.n_items,
        "interactions": dataset.n_interactions, "test_users": n_test, "item_text": dataset.items is not None,
        "sid_table": dataset.sids.source if dataset.sids is not None else None,
    }
