"""Session start -> GLIDE candidates in Feast and on `glide-candidates`, through a real broker, real
Feast and a real (tiny, untrained) GLIDE export: every candidate obeys the eligibility rules, and each
session start caches a set per mode side by side."""

from __future__ import annotations

import asyncio
import time
import uuid

import numpy as np
import orjson
import pandas as pd
import pytest
from kafka import KafkaConsumer, KafkaProducer

from glide.catalog import CatalogDB
from streams import deadletter
from streams.candidate_worker import CANDIDATES_TOPIC, run_candidate_worker
from streams.feature_store import apply_definitions, online_features, open_store, push
from streams.serving import build_service
from tests.streams.helpers import tiny_glide_export

M, K = 4, 8
LOCALES = ("en-US", "de-DE")
USERS = ("u1", "u2", "u-unknown")


def _cached(store, users, mode: str) -> dict:
    """The ranker_candidates rows of ``users`` in ``mode``."""
    return online_features(store, store.get_feature_service("ranker_candidates"),
                           [{"user_id": u, "mode": mode} for u in users])


def _catalog(rng) -> tuple[pd.DataFrame, dict[str, tuple[int, ...]]]:
    rows, codes = [], {}
    for i in range(80):
        show = f"s{i % 8}"
        rows.append({
            "episode_id": f"e{i:03d}", "show_id": show, "title": f"Episode {i}", "description": f"About {i}",
            "locale": LOCALES[(i % 8) // 4], "playable": i % 13 != 0, "popularity": float(rng.integers(0, 100)),
            "published_at": pd.Timestamp("2026-01-01", tz="UTC"), "duration_s": 1800, "topic": "news",
        })
        # Few distinct SIDs, so collisions (and the tie-breaker) are exercised.
        codes[f"e{i:03d}"] = (i % 2, (i // 2) % 3, 0, i % 4)
    return pd.DataFrame(rows), codes


@pytest.fixture(scope="module")
def served(embedded_stack, tmp_path_factory):
    settings, _ = embedded_stack
    rng = np.random.default_rng(0)
    episodes, codes = _catalog(rng)
    db = CatalogDB.from_settings(settings)
    db.migrate()
    db.upsert_shows([{"show_id": f"s{j}", "title": f"Show {j}", "locale": LOCALES[j // 4]} for j in range(8)])
    db.upsert_episodes(episodes)
    # A real quantizer of the same shape, so new episodes can be encoded live (cold start).
    from glide_model.sids.encoder import TextEncoder, embed_episodes
    from glide_model.sids.quantizer import make_quantizer

    quantizer = make_quantizer("rkmeans", M, K, 0).fit(embed_episodes(TextEncoder(), episodes, progress=False),
                                                       encoder="all-MiniLM-L6-v2")
    artifact = quantizer.save(tmp_path_factory.mktemp("q") / "q-worker")
    db.register_quantizer("q-worker", "rkmeans", str(artifact), M, K, {})
    db.save_sid_assignments("q-worker", codes)

    export = tiny_glide_export(tmp_path_factory.mktemp("model"), M, K, "q-worker", seed=1, cf_version="cf-worker")

    store = open_store(settings)
    apply_definitions(store)
    now = pd.Timestamp.now(tz="UTC")
    push(store, "user_context", pd.DataFrame({
        "user_id": ["u1", "u2"], "locale": list(LOCALES), "country": ["US", "DE"],
        "affinity_topics": [["news"], ["sports"]], "event_timestamp": [now, now]}))
    push(store, "user_recent_sids", pd.DataFrame({
        "user_id": ["u1"], "recent_episode_ids": [["e000", "e002"]],
        "recent_sid_codes": [list(codes["e000"] + codes["e002"])], "sid_levels": [M], "event_timestamp": [now]}))
    # u1: a vector of the model's CF version; u2: one of the wrong dimension (served with the default
    # vector, never a crash); u-unknown: none.
    push(store, "user_cf_embedding", pd.DataFrame({
        "user_id": ["u1", "u2"], "cf_embedding": [rng.normal(size=8).astype(np.float32).tolist(), [0.5] * 5],
        "cf_version": ["cf-worker", "cf-worker"], "event_timestamp": [now, now]}))
    # Show s1 is a habit of u1: none of its episodes may be offered to u1.
    push(store, "user_show_listening_28d", pd.DataFrame({
        "user_id": ["u1"], "show_id": ["s1"], "listen_seconds_28d": [1200], "ever_listened": [True],
        "last_listened_at": [now], "habitual": [True], "event_timestamp": [now]}))

    service = build_service(settings, model_dir=export, num_beams=K)
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers())
    ts = int(time.time() * 1000)
    for user in ("u1", "u2", "u-unknown"):
        producer.send("session-start", key=user.encode(), value=orjson.dumps(
            {"event_id": uuid.uuid4().hex, "user_id": user, "ts": ts, "surface": "home", "context": {}}))
    producer.send("session-start", key=b"old", value=orjson.dumps(  # an hour old: skipped, not served
        {"event_id": "old", "user_id": "u-stale", "ts": ts - 3_600_000, "surface": "home"}))
    producer.send("session-start", key=b"bad", value=b"{not json")
    producer.send("session-start", key=b"bad", value=orjson.dumps({"event_id": "x", "user_id": 7, "ts": ts}))
    producer.flush()

    async def serve_until_done() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(run_candidate_worker(settings, service, stop, session_timeout_ms=6000))
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            # Both modes of every user (a familiar set may be empty: no show listened before).
            if all(all(_cached(store, USERS, m)["generated_at"]) for m in ("familiar", "unfamiliar")):
                break
            await asyncio.sleep(0.5)
        stop.set()
        await task

    asyncio.run(serve_until_done())
    return settings, store, episodes.set_index("episode_id"), codes, service


def test_a_new_episode_on_catalog_updates_becomes_recommendable_without_a_refit(served):
    settings, _, _, _, service = served
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers())
    published = int(time.time() * 1000)
    producer.send("catalog-updates", key=b"e-new", value=orjson.dumps({
        "event_id": "cu-new", "ts": published, "episode": {
            "episode_id": "e-new", "show_id": "s0", "title": "Breaking news from the newsroom",
            "description": "Today's headlines and reporters on the ground.", "locale": "en-US",
            "published_at": published, "playable": True, "popularity": 1000.0}}))
    producer.flush()
    sent = time.perf_counter()

    async def serve_until_known() -> float:
        stop = asyncio.Event()
        task = asyncio.create_task(run_candidate_worker(settings, service, stop, session_timeout_ms=6000))
        deadline = time.monotonic() + 90
        while "e-new" not in service.table and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        seconds = time.perf_counter() - sent
        stop.set()
        await task
        return seconds

    seconds = asyncio.run(serve_until_known())
    assert "e-new" in service.table, "the new episode never reached the serving collision table"
    codes = service.table.codes_of("e-new")
    assert codes in service.backend.trie  # generation can now produce its SID
    from glide_model.sids.collisions import Eligibility

    assert service.table.resolve(codes, Eligibility.for_user("en-US")) == "e-new"  # most popular in its bucket
    assert service.show_of["e-new"] == "s0"
    print(f"catalog-update -> recommendable in {seconds:.2f} s (includes consumer group join)")


def test_candidates_reach_feast_and_obey_eligibility(served):
    _, store, episodes, _, _ = served
    got = _cached(store, USERS, "unfamiliar")  # the home surface's mode
    for user, ids, scores, locale in zip(USERS, got["candidate_episode_ids"],
                                         got["candidate_scores"], ("en-US", "de-DE", None)):
        assert ids, f"no candidates for {user}"
        assert len(ids) == len(set(ids)) == len(scores)
        rows = episodes.loc[ids]
        assert rows["playable"].all()
        if locale:
            assert (rows["locale"] == locale).all()
    u1 = episodes.loc[got["candidate_episode_ids"][0]]
    assert not {"e000", "e002"} & set(u1.index)  # already consumed
    assert "s1" not in set(u1["show_id"])  # habitual show
    assert got["model_version"] == ["export"] * 3 and got["quantizer_version"] == ["q-worker"] * 3
    assert got["surface"] == ["home"] * 3


def test_the_familiar_set_is_cached_beside_the_unfamiliar_one(served):
    """u1 listened to s0 and s2 (recent, not habitual) and s1 (habitual): the familiar set holds only
    s0/s2 episodes not yet consumed; u2 and u-unknown listened to nothing, so theirs is empty."""
    _, store, episodes, _, _ = served
    got = _cached(store, USERS, "familiar")
    u1 = episodes.loc[got["candidate_episode_ids"][0]]
    assert len(u1) and set(u1["show_id"]) <= {"s0", "s2"} and not {"e000", "e002"} & set(u1.index)
    assert got["candidate_episode_ids"][1:] == [[], []] and all(got["generated_at"])
    unfamiliar = _cached(store, ["u1"], "unfamiliar")["candidate_episode_ids"][0]
    assert not set(unfamiliar) & set(u1.index)  # two different sets, neither overwrote the other


def test_collisions_resolve_to_the_most_popular_eligible_episode(served):
    _, store, episodes, codes, _ = served
    got = online_features(store, ["glide_candidates:candidate_episode_ids"], [{"user_id": "u2", "mode": "unfamiliar"}])
    for eid in got["candidate_episode_ids"][0]:
        bucket = episodes.loc[[e for e, c in codes.items() if c == codes[eid]]]
        eligible = bucket[bucket["playable"] & (bucket["locale"] == "de-DE")]
        assert eligible["popularity"].max() == episodes.loc[eid, "popularity"]


def test_candidates_are_published_and_bad_sessions_dead_lettered(served):
    settings = served[0]
    consumer = KafkaConsumer(CANDIDATES_TOPIC, "dead-letter", bootstrap_servers=settings.bootstrap_servers(),
                             auto_offset_reset="earliest", consumer_timeout_ms=3000)
    events, reasons = [], []
    for record in consumer:
        if record.topic == CANDIDATES_TOPIC:
            events.append(orjson.loads(record.value))
        else:
            headers = deadletter.parse_headers(record.headers)
            if headers.get(deadletter.SOURCE_TOPIC) == "session-start":
                reasons.append(headers[deadletter.REASON])
    consumer.close()
    assert {(e["user_id"], e["mode"]) for e in events} == {  # not the stale session
        (u, m) for u in USERS for m in ("familiar", "unfamiliar")}
    assert sorted(reasons) == ["malformed_json", "schema"]


def test_eligibility_aware_decoding_spends_every_beam_on_servable_sids(served):
    """u1 (en-US, unfamiliar on home) may only get show s3: s1 is habitual, s0/s2 are the shows of
    the recent listens. The beams are restricted to eligible SIDs, so every eligible SID is reached
    (3 of them, fewer than the 8 beams), each as its most popular eligible episode; u2 (de-DE, no
    history) has more eligible SIDs than beams and gets a full set of 8."""
    _, store, episodes, codes, _ = served
    u1, u2 = _cached(store, ["u1", "u2"], "unfamiliar")["candidate_episode_ids"]
    allowed = episodes[(episodes["show_id"] == "s3") & episodes["playable"] & (episodes["locale"] == "en-US")]
    assert {codes[e] for e in u1} == {codes[e] for e in allowed.index}
    assert set(episodes.loc[u1, "show_id"]) == {"s3"}
    assert len(u2) == K


def test_cf_vectors_are_checked_against_the_models_version_and_dimension(served):
    """Real Feast rows: u1's vector (model's CF version, projector dim 8) conditions the prompt; u2's
    5-dim vector and u-unknown's missing one are served with the default vector and counted."""
    from streams.candidates import CF_VECTORS
    from streams.schemas import SessionStart

    _, _, _, _, service = served
    assert (service.cf_version, service.cf_dim) == ("cf-worker", 8)  # from the export's manifest
    before = {o: CF_VECTORS.labels(o)._value.get() for o in ("ok", "missing", "bad_dimension")}
    sessions = [SessionStart(event_id=u, user_id=u, ts=int(time.time() * 1000), surface="home", context={})
                for u in ("u1", "u2", "u-unknown")]
    requests, _ = service.requests(sessions)
    assert requests[0].cf_embedding is not None and requests[0].cf_embedding.shape == (8,)
    assert requests[1].cf_embedding is None and requests[2].cf_embedding is None
    assert {o: CF_VECTORS.labels(o)._value.get() - v for o, v in before.items()} == {
        "ok": 1, "missing": 1, "bad_dimension": 1}
    assert service.backend.generate(requests)  # the wrong-dimension user is served, not an error
