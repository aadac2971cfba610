"""Two GLIDE worker replicas (two workers with services of their own) on one real broker: they split
the session-start partitions, each session served by one of them once, and both learn every catalog
update, so a new episode published while both run becomes recommendable on both."""

from __future__ import annotations

import asyncio
import time
import uuid

import orjson
import pandas as pd
import pytest
from kafka import KafkaProducer

from glide.catalog import CatalogDB
from glide_model.sids.collisions import Eligibility
from streams.candidate_worker import run_candidate_worker
from streams.candidates import CandidateConfig
from streams.feature_store import apply_definitions, open_store
from streams.serving import build_service
from tests.streams.helpers import tiny_glide_export

M, K = 4, 8
QUANTIZER = "q-replicas"


@pytest.fixture(scope="module")
def export(embedded_stack, tmp_path_factory, text_encoder):
    """A 40-episode catalog with SIDs of a real quantizer (new episodes are encoded live) and a tiny export."""
    from glide_model.sids.encoder import embed_episodes
    from glide_model.sids.quantizer import make_quantizer

    settings, _ = embedded_stack
    db = CatalogDB.from_settings(settings)
    db.migrate()
    db.upsert_shows([{"show_id": f"ps{j}", "title": f"Show {j}", "locale": "en-US"} for j in range(4)])
    episodes = pd.DataFrame([{
        "episode_id": f"pe{i:03d}", "show_id": f"ps{i % 4}", "title": f"Episode {i} on topic {i % 7}",
        "description": f"About {i}", "locale": "en-US", "playable": True, "popularity": float(i),
        "published_at": pd.Timestamp("2026-01-01", tz="UTC"), "duration_s": 1800, "topic": "news"} for i in range(40)])
    db.upsert_episodes(episodes)
    quantizer = make_quantizer("rkmeans", M, K, 0).fit(embed_episodes(text_encoder, episodes, progress=False),
                                                       encoder=text_encoder.name)
    artifact = quantizer.save(tmp_path_factory.mktemp("q") / QUANTIZER)
    db.register_quantizer(QUANTIZER, "rkmeans", str(artifact), M, K, {})
    db.save_sid_assignments(QUANTIZER, {f"pe{i:03d}": (i % 2, (i // 2) % 3, 0, i % 4) for i in range(40)})

    export = tiny_glide_export(tmp_path_factory.mktemp("model"), M, K, QUANTIZER, seed=3)
    apply_definitions(open_store(settings))
    return settings, export


def _recording(service, served: list[str]):
    """``service``, noting every session event id it generates for."""
    refresh = service.refresh

    def recorded(sessions, *args, **kwargs):
        served.extend(s.event_id for s in sessions)
        return refresh(sessions, *args, **kwargs)

    service.refresh = recorded
    return service


def test_two_replicas_split_sessions_and_both_learn_a_new_episode(export):
    settings, model = export
    config = CandidateConfig(session_modes="session", refresh_ttl_s=0)
    served = {"a": [], "b": []}
    services = {name: _recording(build_service(settings, model, num_beams=K, config=config), served[name])
                for name in served}
    for service in services.values():
        service.sid_index.encoder.model  # loaded now, not on the first new episode
    group = f"replicas-{uuid.uuid4().hex}"
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers())
    sent: list[str] = []

    def send(prefix: str, n: int) -> list[str]:
        ids = [f"{prefix}-{len(sent) + i}" for i in range(n)]
        for event_id in ids:  # a user per session: keys spread over every partition
            producer.send("session-start", key=event_id.encode(), value=orjson.dumps(
                {"event_id": event_id, "user_id": event_id, "ts": int(time.time() * 1000), "surface": "home"}))
        producer.flush()
        sent.extend(ids)
        return ids

    def answered(ids) -> bool:
        return set(ids) <= set(served["a"]) | set(served["b"])

    published = int(time.time() * 1000)
    measured: list[str] = []

    async def run() -> None:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(run_candidate_worker(settings, services[name], stop, group_id=group,
                                                          session_timeout_ms=6000)) for name in served]

        async def until(check, what: str, timeout: float = 120) -> None:
            deadline = time.monotonic() + timeout
            while not check():
                assert time.monotonic() < deadline, f"timed out waiting for {what}"
                assert not any(t.done() for t in tasks), [t.exception() for t in tasks if t.done()]
                await asyncio.sleep(0.2)

        try:
            # Probes until both replicas serve: the group has settled on both members.
            await until(lambda: bool(send("probe", 4)) and served["a"] and served["b"], "both replicas to serve")
            await until(lambda: answered(sent), "the probes")
            measured.extend(send("split", 24))
            await until(lambda: answered(measured), "the measured sessions")
            producer.send("catalog-updates", key=b"pe-new", value=orjson.dumps({
                "event_id": "cu-replicas", "ts": published, "episode": {
                    "episode_id": "pe-new", "show_id": "ps0", "title": "Breaking news from the newsroom",
                    "description": "Today's headlines.", "locale": "en-US", "published_at": published,
                    "playable": True, "popularity": 1000.0}}))
            producer.flush()
            await until(lambda: all("pe-new" in s.table for s in services.values()), "the new episode on both")
        finally:
            stop.set()
            await asyncio.gather(*tasks)

    asyncio.run(run())
    a, b = ([e for e in served[n] if e in set(measured)] for n in ("a", "b"))
    assert a and b, f"one replica served every measured session (a: {len(a)}, b: {len(b)})"
    assert sorted(a + b) == sorted(measured), "a measured session was served twice or not at all"
    for service in services.values():
        codes = service.table.codes_of("pe-new")
        assert codes in service.backend.trie  # generation can produce its SID on this replica
        assert service.table.resolve(codes, Eligibility.for_user("en-US")) == "pe-new"
        assert service.show_of["pe-new"] == "ps0"
    # Both encoded it with the one quantizer: the same SID on both replicas.
    assert services["a"].table.codes_of("pe-new") == services["b"].table.codes_of("pe-new")
