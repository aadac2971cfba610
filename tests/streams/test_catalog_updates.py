"""catalog-updates: a new episode gets its Semantic ID from the live SidIndex (the fitted quantizer
registered in the catalog), lands in the catalog DB, the listen processor's cache and the
`episode_catalog` view; a bad update is isolated."""

from __future__ import annotations

import asyncio

import orjson

from glide.catalog import CatalogDB
from glide.config import load_settings
from glide.event_log import ParquetEventLog
from glide.world.generator import WorldConfig, generate_world
from streams import schemas as S
from streams.catalog_stream import CatalogUpdater, Rec
from streams.config import StreamSettings
from streams.feature_store import apply_definitions, online_features, open_store
from streams.online_writer import OnlineWriter
from streams.reference import CatalogCache
from streams.replay import episode_payload, show_payload


class _Producer:
    """Collects dead letters (the Kafka path is covered by test_pipeline)."""

    def __init__(self):
        self.sent = []

    async def send(self, topic, value=None, key=None, headers=None):
        self.sent.append((topic, value, dict(headers)))
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut


def test_new_episode_gets_a_live_sid(tmp_path, monkeypatch):
    from glide_model.sids.encoder import TextEncoder, embed_episodes
    from glide_model.sids.rkmeans import RKMeans

    monkeypatch.setenv("GLIDE_FEAST_PROJECT", "glide")
    settings = load_settings(data_dir=str(tmp_path), profile="embedded")
    store = open_store(settings)
    apply_definitions(store)
    world = generate_world(WorldConfig(users=5, days=2, shows=4, episodes_per_show=6, seed=2))
    episodes, new = world.episodes.iloc[:-1], world.episodes.iloc[-1]
    encoder = TextEncoder()
    emb = embed_episodes(encoder, world.episodes, progress=False)
    quantizer = RKMeans(levels=3, codebook_size=4, seed=0).fit(emb[:-1], encoder=encoder.name)
    artifact = quantizer.save(tmp_path / "quantizer")
    db = CatalogDB.from_settings(settings)
    db.migrate()
    db.upsert_shows(world.shows)
    db.upsert_episodes(episodes)
    version = quantizer.meta.version
    db.register_quantizer(version, "rkmeans", artifact, 3, 4)
    db.save_sid_assignments(version, dict(zip(episodes["episode_id"], map(tuple, quantizer.encode(emb[:-1]).tolist()))))

    cache = CatalogCache(db)
    producer = _Producer()
    event_log = ParquetEventLog(tmp_path / "event_log")
    updater = CatalogUpdater(StreamSettings(live_sids=True, metrics_port=-1), db, cache, OnlineWriter(settings), producer,
                             event_log=event_log)
    ts = S.to_ms(new["published_at"])
    show = world.shows.set_index("show_id").loc[new["show_id"]].to_dict() | {"show_id": new["show_id"]}
    good = orjson.dumps({"event_id": "c1", "ts": ts, "episode": episode_payload(new.to_dict(), ts),
                         "show": show_payload(show)})
    bad = orjson.dumps({"event_id": "c2", "ts": ts, "episode": episode_payload(new.to_dict(), ts) | {
        "episode_id": "ep_orphan", "show_id": "show_missing"}})
    asyncio.run(updater.handle([Rec(good, b"k", 0, 0), Rec(bad, b"k", 0, 1), Rec(b"{", b"k", 0, 2)]))

    want = tuple(int(c) for c in quantizer.encode(emb[-1:])[0])
    assert db.sid_assignments(version)[new["episode_id"]] == want
    assert db.get_episode(new["episode_id"])["show_id"] == new["show_id"]
    assert cache.sid(new["episode_id"]) == want and cache.episode_show[new["episode_id"]] == new["show_id"]
    got = online_features(store, ["episode_catalog:sid_codes", "episode_catalog:quantizer_version",
                                  "episode_catalog:published_at"], [{"episode_id": new["episode_id"]}])
    assert got["sid_codes"] == [list(want)] and got["quantizer_version"] == [version]
    assert int(got["published_at"][0].timestamp()) == ts // 1000
    reasons = sorted(h["glide-dlq-reason"].decode() for _, _, h in producer.sent)
    assert reasons == [S.MALFORMED_JSON, S.UNKNOWN_SHOW]
    # Only the accepted update reaches the offline event log, once, however often it is redelivered.
    asyncio.run(updater.handle([Rec(good, b"k", 0, 0)]))
    logged = event_log.read("catalog")
    assert logged["episode_id"].tolist() == [new["episode_id"]] and logged["offset"].tolist() == [0]
    assert logged["published_at"][0] == S.from_ms(ts) and orjson.loads(logged["show"][0])["show_id"] == new["show_id"]
