"""Training/serving parity: does a served request see exactly what training and evaluation see?

For sampled (user, time, mode) it builds the model input twice:
- **online**, as the GLIDE worker does (streams/candidates.py): `glide_inputs` from the online
  store -> :class:`RecRequest`, the CF check, the serving rule's facts from the online
  listening state;
- **offline**, as training and `glide evaluate` do: a point-in-time join of the same feature views
  in Feast's offline store at that time -> example rows (glide_model/data/examples.py) ->
  ``requests_from_examples``, the facts from the logged listens before that time;

and compares the token ids the model reads, the soft-prompt vector and the allowed SID set
(eligibility-aware decoding). :func:`compare_candidates` compares the candidate list the worker
cached for a session start with the one evaluation scores for the same (user, time, mode).

Used by ``pytest -m parity`` (the acceptance test) and by ``glide demo`` (its parity_* keys).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from glide import habits
from glide_model.serving.contract import RecRequest, requests_from_examples


@dataclass
class ParityReport:
    checked: int = 0
    mismatches: list[dict] = field(default_factory=list)  # {user_id, mode, field, online, offline}

    def add(self, user_id: str, mode: str, name: str, online, offline) -> None:
        self.mismatches.append({"user_id": user_id, "mode": mode, "field": name,
                                "online": _short(online), "offline": _short(offline)})


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."


def serving_view(data, db):
    """The job's data with the catalog as the worker reads it (the catalog DB's episodes, popularity
    as the job refreshed it from the log), so evaluation resolves collisions with serving's table."""
    from dataclasses import replace

    return replace(data, episodes=db.episodes_frame())


def sample_requests(listens: pd.DataFrame, n: int, at: pd.Timestamp, seed: int = 0) -> pd.DataFrame:
    """``n`` (user, time, mode) with listens before ``at``, modes alternating: the parity sample."""
    users = sorted(listens.loc[listens["ts"] < at, "user_id"].unique())
    rng = np.random.default_rng(seed)
    picked = sorted(rng.choice(users, size=min(n, len(users)), replace=False).tolist())
    return pd.DataFrame({"user_id": picked, "ts": at,
                         "mode": [("unfamiliar", "familiar")[i % 2] for i in range(len(picked))]})


def online_requests(service, pairs: pd.DataFrame) -> tuple[list[RecRequest], list]:
    """(requests, facts) the GLIDE worker builds from the online store for session starts at (user, ts, mode)."""
    from streams.schemas import SessionStart

    sessions = [SessionStart(f"parity-{u}", u, int(pd.Timestamp(t).value // 1_000_000), "home", {"mode": m})
                for u, t, m in zip(pairs["user_id"], pairs["ts"], pairs["mode"])]
    requests, recent = service.requests(sessions)
    return requests, [service.facts(s, r, c) for s, r, c in zip(sessions, requests, recent)]


def offline_requests(store, pairs: pd.DataFrame, history_len: int) -> pd.DataFrame:
    """Example rows for (user, ts, mode) from a point-in-time join of `glide_inputs` just before ts."""
    from glide_app.jobs.training_set import input_feature_refs
    from glide_model.data.examples import ExampleSamplingConfig, request_rows

    refs = [r for r in input_feature_refs(store) if not r.startswith("user_show_listening_28d:")]
    entity_df = pd.DataFrame({"user_id": pairs["user_id"].to_numpy(),
                              "event_timestamp": habits.feature_lookup_time(pairs["ts"]).to_numpy()})
    entity_df["event_timestamp"] = pd.to_datetime(entity_df["event_timestamp"], utc=True)
    joined = store.get_historical_features(entity_df=entity_df, features=refs).to_df()
    joined = joined.set_index("user_id").loc[pairs["user_id"]].reset_index()  # Feast does not keep order
    return request_rows(joined, pairs["ts"].reset_index(drop=True), pairs["mode"].to_numpy(),
                        ExampleSamplingConfig(history_len=history_len))


def allowed_sids(rules, facts) -> set[tuple[int, ...]]:
    """The SIDs eligibility-aware decoding lets this request produce (the sub-trie's SIDs)."""
    return {tuple(int(c) for c in row) for row in rules.eligible.codes[rules.mask(facts)]}


def compare_inputs(service, recommender, prompts, online: Sequence[RecRequest], online_facts: Sequence,
                   offline_rows: pd.DataFrame) -> ParityReport:
    """Field by field: the token ids, the soft-prompt vector and the allowed SIDs of each request."""
    report = ParityReport()
    offline = requests_from_examples(offline_rows)
    offline_facts = recommender.facts(offline_rows)
    for on, on_facts, off, off_facts in zip(online, online_facts, offline, offline_facts):
        user, mode = on.user_id or "", on.mode or ""
        report.checked += 1
        on_ids, off_ids = (prompts.encode_rec([r.as_row()], with_target=False)[0].input_ids for r in (on, off))
        if on_ids != off_ids:
            report.add(user, mode, "token_ids", on_ids, off_ids)
        if not _same_vector(on.cf_embedding, off.cf_embedding):
            report.add(user, mode, "soft_prompt", on.cf_embedding, off.cf_embedding)
        on_allowed, off_allowed = allowed_sids(service.rules, on_facts), allowed_sids(recommender.rules, off_facts)
        if on_allowed != off_allowed:
            report.add(user, mode, "allowed_sids", sorted(on_allowed ^ off_allowed)[:5], len(off_allowed))
        if on.mode != off.mode:
            report.add(user, mode, "mode", on.mode, off.mode)
    return report


def _same_vector(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return np.array_equal(np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32))


def compare_candidates(served: dict[str, list[str]], scored: dict[str, list[str]]) -> ParityReport:
    """The worker's cached list vs evaluation's, per user (same time and mode)."""
    report = ParityReport()
    for user, want in scored.items():
        report.checked += 1
        got = served.get(user)
        if got != want:
            report.add(user, "", "candidates", got, want)
    return report


def serve_sessions(settings, service, pairs: pd.DataFrame, group_id: str, timeout_s: float = 300) -> dict[str, list[str]]:
    """Session starts for ``pairs`` through Kafka to a running GLIDE worker (streams/candidate_worker),
    then the candidates it cached, read back from the online store as rankers read them. Waits until
    the worker has answered each of these sessions on `glide-candidates` (a backlog of older sessions
    may be served first); each is its user's last session, so the cache then holds its answer."""
    import asyncio
    import time
    import uuid

    import orjson
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    from streams.candidate_worker import CANDIDATES_TOPIC, run_candidate_worker
    from streams.feature_store import online_features

    wanted = {uuid.uuid4().hex: user for user in pairs["user_id"]}
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers())
    for (event_id, user), ts, mode in zip(wanted.items(), pairs["ts"], pairs["mode"]):
        producer.send("session-start", key=user.encode(), value=orjson.dumps(
            {"event_id": event_id, "user_id": user, "ts": int(pd.Timestamp(ts).value // 1_000_000),
             "surface": "home", "context": {"mode": mode}}))
    producer.flush()
    producer.close()
    answers = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers(), enable_auto_commit=False)
    parts = [TopicPartition(CANDIDATES_TOPIC, p) for p in range(settings.topic_partitions)]
    answers.assign(parts)
    answers.seek_to_beginning(*parts)

    async def serve() -> None:
        stop = asyncio.Event()
        # Sessions stamped in the data's (past) time: serve them all, none is stale.
        task = asyncio.create_task(run_candidate_worker(settings, service, stop, group_id=group_id,
                                                        max_session_age_s=None))
        pending, deadline = set(wanted), time.monotonic() + timeout_s
        try:
            while pending and time.monotonic() < deadline and not task.done():
                batch = await asyncio.to_thread(answers.poll, 500)
                for record in (r for recs in batch.values() for r in recs):
                    pending.discard(orjson.loads(record.value).get("session_event_id"))
        finally:
            stop.set()
            await task
            answers.close()

    asyncio.run(serve())
    users = pairs["user_id"].tolist()
    got = online_features(service.store, service.store.get_feature_service("ranker_candidates"),
                          [{"user_id": u, "mode": m} for u, m in zip(users, pairs["mode"])])
    return {u: list(ids or []) for u, ids in zip(users, got["candidate_episode_ids"])}


def check_parity(settings, record: dict, cfg, at: pd.Timestamp, sample: int = 50, seed: int = 0,
                 console=None) -> tuple[ParityReport, ParityReport, dict[str, list[str]]]:
    """The whole check for a trained run at time ``at``: (inputs report, candidates report, served lists)."""
    from rich.console import Console

    from glide.catalog import CatalogDB
    from glide_app.jobs.train import glide_recommender, prepare_job_data
    from streams.serving import build_service

    console = console or Console(quiet=True)
    db = CatalogDB.from_settings(settings)
    data = prepare_job_data(settings, cfg, db, Console(quiet=True), write_features=False)
    pairs = sample_requests(data.listens, sample, at, seed)
    service = build_service(settings, record["export"])
    recommender = glide_recommender(serving_view(data, db), service.backend)
    requests, facts = online_requests(service, pairs)
    rows = offline_requests(service.store, pairs, int(data.sampling.history_len))
    inputs = compare_inputs(service, recommender, service.backend.glm.prompts, requests, facts, rows)
    served = serve_sessions(settings, service, pairs, group_id=f"glide-parity-{seed}")
    scored = dict(zip(pairs["user_id"], recommender.recommend(rows, service.config.num_candidates)))
    return inputs, compare_candidates(served, scored), served
