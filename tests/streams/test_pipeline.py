"""A world replayed through the real broker into a real worker process: the online features equal
glide/habits.py recomputed from the same events, through redelivery, out-of-order and late events,
bad input and catalog updates. One broker, Feast repo and worker for the module; the tests run in
file order and each adds events on top of the previous ones.
"""

from __future__ import annotations

import hashlib
import urllib.request

import orjson
import pandas as pd
import pytest
from kafka import KafkaProducer

from glide.config import load_settings
from glide.world.generator import WorldConfig, generate_world
from infra import stack
from streams import deadletter
from streams import schemas as S
from streams.config import DEAD_LETTER_MAX_BYTES
from streams.replay import iter_listen_records, push_profiles, replay_world
from tests.streams.helpers import (
    assert_features_match_oracle,
    free_port,
    listening_addresses,
    metric,
    read_topic,
    register_sids,
    start_worker,
    stop_worker,
    wait_processed,
)

HOUR_MS = 3_600_000


class Pipeline:
    """The module's running system and the events it has accepted so far (the oracle's input)."""

    def __init__(self, settings, bootstrap, world, sids, worker, metrics_port, end_offsets, watermark):
        self.settings, self.bootstrap, self.world, self.sids = settings, bootstrap, world, sids
        self.worker, self.metrics_port, self.end_offsets = worker, metrics_port, dict(end_offsets)
        self.watermark = watermark
        self.accepted = world.listens.copy()
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
        self._store = None

    @property
    def store(self):
        if self._store is None:
            from streams.feature_store import open_store

            self._store = open_store(self.settings)
        return self._store

    def send(self, topic: str, value: bytes | None, key: bytes | None, **kw) -> None:
        meta = self.producer.send(topic, value=value, key=key, **kw).get(timeout=10)
        k = (meta.topic, meta.partition)
        self.end_offsets[k] = max(self.end_offsets.get(k, 0), meta.offset + 1)

    def wait(self) -> None:
        self.producer.flush()
        wait_processed(self.settings, self.end_offsets, timeout=90, procs=[self.worker])

    def check(self) -> int:
        return assert_features_match_oracle(self.store, self.accepted, self.sids, self.watermark)

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            return r.read().decode()

    def dead_letters(self) -> list:
        return read_topic(self.bootstrap, S.DEAD_LETTER_TOPIC, timeout_ms=2000)


def listen_event(user_id, episode_id, show_id, ts, event_id, seconds=300) -> dict:
    return {"schema_version": 1, "event_id": event_id, "user_id": user_id, "episode_id": episode_id,
            "show_id": show_id, "listened_seconds": seconds, "ts": ts, "surface": "home", "locale": "en-US"}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("GLIDE_FEAST_PROJECT", "glide")
    settings = load_settings(data_dir=str(tmp_path_factory.mktemp("pipeline")), profile="embedded")
    status = stack.up(settings)
    world = generate_world(WorldConfig(users=60, days=35, shows=40, episodes_per_show=10, seed=1))
    sids = register_sids(settings, world.episodes)
    push_profiles(settings, world.users, world.start)
    stats = replay_world(world, status.bootstrap)
    port = free_port()
    worker = start_worker(settings, metrics_port=port, catalog_wait_s=4)
    p = Pipeline(settings, status.bootstrap, world, sids, worker, port, stats.end_offsets, stats.final_ts_ms)
    try:
        p.wait()
        yield p
    finally:
        stop_worker(worker)
        p.producer.close()
        stack.down(settings)
        mp.undo()


def test_replayed_world_matches_the_batch_oracle(pipeline):
    assert pipeline.world.config.days > 28  # listens have expired out of the window
    assert pipeline.check() > 500


def test_redelivered_events_are_not_double_counted(pipeline):
    listens = pipeline.world.listens
    again = listens[listens["ts"] > listens["ts"].max() - pd.Timedelta(days=5)].tail(300)
    for r in iter_listen_records(again):
        pipeline.send(r.topic, r.value, r.key)
    pipeline.wait()
    pipeline.check()
    assert metric(pipeline.metrics(), "glide_stream_events_total", topic=S.LISTEN_TOPIC, outcome="duplicate") == 300


def test_out_of_order_within_lateness_counts_and_later_is_dead_lettered(pipeline):
    w = pipeline.watermark
    row = pipeline.world.listens.iloc[-1]
    on_time = listen_event(row.user_id, row.episode_id, row.show_id, w - HOUR_MS // 2, "ev_late_ok", 900)
    too_late = listen_event(row.user_id, row.episode_id, row.show_id, w - 2 * HOUR_MS, "ev_too_late", 900)
    for ev in (on_time, too_late):
        pipeline.send(S.LISTEN_TOPIC, orjson.dumps(ev), row.user_id.encode())
    pipeline.wait()
    extra = pd.DataFrame([on_time]).assign(ts=lambda d: pd.to_datetime(d["ts"], unit="ms", utc=True))
    pipeline.accepted = pd.concat([pipeline.accepted, extra], ignore_index=True)
    pipeline.check()
    late = [m for m in pipeline.dead_letters() if deadletter.parse_headers(m.headers)["glide-dlq-reason"] == "late"]
    assert [orjson.loads(m.value)["event_id"] for m in late] == ["ev_too_late"]


def test_bad_input_goes_to_dead_letter_and_good_events_in_the_batch_count(pipeline):
    w = pipeline.watermark
    row = pipeline.world.listens.iloc[-2]
    good = lambda i: listen_event(row.user_id, row.episode_id, row.show_id, w - 60_000 + i, f"ev_good_{i}", 60)  # noqa: E731
    base = good(99)
    bad = {
        S.MALFORMED_JSON: b'{"event_id": "x", ',
        S.SCHEMA: orjson.dumps(base | {"event_id": "ev_b1", "listened_seconds": "sixty"}),
        S.BAD_DURATION: orjson.dumps(base | {"event_id": "ev_b2", "listened_seconds": -5}),
        S.TOO_LARGE: orjson.dumps(base | {"event_id": "ev_b3", "surface": "x" * 1_000_000}),
        S.FUTURE: orjson.dumps(base | {"event_id": "ev_b4", "ts": S.now_ms() + 365 * 24 * HOUR_MS}),
        S.UNKNOWN_USER: orjson.dumps(base | {"event_id": "ev_b5", "user_id": "user_nobody"}),
        S.UNKNOWN_EPISODE: orjson.dumps(base | {"event_id": "ev_b6", "episode_id": "ep_nowhere"}),
        S.UNKNOWN_SHOW: orjson.dumps(base | {"event_id": "ev_b7", "show_id": "show_nowhere"}),
        S.SHOW_MISMATCH: orjson.dumps(base | {"event_id": "ev_b8", "show_id": pipeline.world.shows.show_id.iloc[0]
                                              if pipeline.world.shows.show_id.iloc[0] != row.show_id
                                              else pipeline.world.shows.show_id.iloc[1]}),
        "null": None,
    }
    goods = [good(i) for i in range(3)]
    key = row.user_id.encode()
    for i, (reason, value) in enumerate(bad.items()):
        pipeline.send(S.LISTEN_TOPIC, orjson.dumps(goods[i]) if i < 3 else value, key)
        if i < 3:
            pipeline.send(S.LISTEN_TOPIC, value, key)
    pipeline.wait()  # includes the unknown episode's wait (catalog_wait_s) for a catalog update
    letters: dict[str, list] = {}
    for m in pipeline.dead_letters():
        letters.setdefault(deadletter.parse_headers(m.headers)["glide-dlq-reason"], []).append(m)
    expected = {r if r != "null" else S.MALFORMED_JSON for r in bad} | {S.LATE}
    assert set(letters) == expected
    for reason, value in bad.items():
        found = letters[reason if reason != "null" else S.MALFORMED_JSON]
        # the original bytes, unchanged (a null value comes back as empty bytes), cut to the
        # dead-letter cap with the original's size and sha256 (the 1 MB record)
        original = value or b""
        m = next(m for m in found if m.value == original[:DEAD_LETTER_MAX_BYTES])
        h = deadletter.parse_headers(m.headers)
        assert h[deadletter.SIZE] == str(len(original))
        assert h[deadletter.SHA256] == hashlib.sha256(original).hexdigest()
        assert h[deadletter.TRUNCATED] == ("true" if reason == S.TOO_LARGE else "false")
        assert h["glide-dlq-topic"] == S.LISTEN_TOPIC and int(h["glide-dlq-offset"]) >= 0
        assert int(h["glide-dlq-partition"]) in range(4) and m.key == key
    extra = pd.DataFrame(goods).assign(ts=lambda d: pd.to_datetime(d["ts"], unit="ms", utc=True))
    pipeline.accepted = pd.concat([pipeline.accepted, extra], ignore_index=True)
    pipeline.check()
    text = pipeline.metrics()
    assert metric(text, "glide_stream_dead_letter_total", topic=S.LISTEN_TOPIC, reason=S.MALFORMED_JSON) == 2
    for reason in (S.SCHEMA, S.TOO_LARGE, S.BAD_DURATION, S.UNKNOWN_EPISODE, S.UNKNOWN_USER, S.FUTURE, S.LATE):
        assert metric(text, "glide_stream_dead_letter_total", topic=S.LISTEN_TOPIC, reason=reason) == 1, reason


def test_catalog_update_makes_a_new_episode_listenable(pipeline):
    w = pipeline.watermark
    show = pipeline.world.shows.iloc[0]
    upd = {"event_id": "cat-new-1", "ts": w, "show": None,
           "episode": {"episode_id": "ep_brand_new", "show_id": show.show_id, "title": "Brand new",
                       "published_at": w, "duration_s": 1800, "popularity": 0.0}}
    user = pipeline.world.users.user_id.iloc[0]
    # The listen is sent first: it waits (parked) until the catalog update lands.
    listen = listen_event(user, "ep_brand_new", show.show_id, w, "ev_new_ep", 700)
    pipeline.send(S.LISTEN_TOPIC, orjson.dumps(listen), user.encode())
    pipeline.send(S.CATALOG_TOPIC, orjson.dumps(upd), b"ep_brand_new")
    pipeline.send(S.CATALOG_TOPIC, b"not json", b"x")
    pipeline.wait()
    extra = pd.DataFrame([listen]).assign(ts=lambda d: pd.to_datetime(d["ts"], unit="ms", utc=True))
    pipeline.accepted = pd.concat([pipeline.accepted, extra], ignore_index=True)
    pipeline.check()  # listen_seconds include it; recent SIDs leave it out (no SID assigned)
    got = pipeline.store.get_online_features(features=["episode_catalog:show_id", "episode_catalog:published_at"],
                                             entity_rows=[{"episode_id": "ep_brand_new"}]).to_dict()
    assert got["show_id"] == [show.show_id]
    letters = [deadletter.parse_headers(m.headers) for m in pipeline.dead_letters()]
    assert {"glide-dlq-reason": S.MALFORMED_JSON, "glide-dlq-topic": S.CATALOG_TOPIC} .items() <= \
        next(h for h in letters if h["glide-dlq-topic"] == S.CATALOG_TOPIC).items()


def test_metrics_endpoint_reports_progress(pipeline):
    text = pipeline.metrics()
    for name in ("glide_stream_events_total", "glide_stream_consumer_lag", "glide_stream_push_seconds_count",
                 "glide_stream_freshness_seconds_bucket", "glide_stream_watermark_ms"):
        assert name in text
    assert metric(text, "glide_stream_events_total", topic=S.LISTEN_TOPIC, outcome="applied") >= len(pipeline.accepted)
    lags = [float(line.split()[-1]) for line in text.splitlines() if line.startswith("glide_stream_consumer_lag{")]
    assert len(lags) == 4 and max(lags) == 0.0
    assert metric(text, "glide_stream_push_seconds_count", view="user_show_listening_28d") > 0
    assert listening_addresses(pipeline.metrics_port) == {"127.0.0.1"}


def test_read_helper_gives_modes_and_corrects_expiry(pipeline):
    from glide import habits
    from streams.feature_store import read_user_show_features

    w = pd.Timestamp(pipeline.watermark, unit="ms", tz="UTC")
    want = habits.user_show_features(pipeline.accepted.assign(
        ts=pd.to_datetime(S.ms_series(pipeline.accepted["ts"]), unit="ms", utc=True)), w)
    user = want.groupby("user_id")["habitual"].sum().idxmax()  # a user with habitual shows
    mine = want[want.user_id == user].sort_values("show_id")
    shows = mine["show_id"].tolist() + ["show_never_heard_of"]
    got = read_user_show_features(pipeline.store, user, shows, as_of=w)
    assert got["listen_seconds_28d"].tolist()[:-1] == mine["listen_seconds_28d"].tolist()
    assert got["mode"].tolist() == ["habitual" if h else "familiar" for h in mine["habitual"]] + ["unfamiliar"]
    later = read_user_show_features(pipeline.store, user, shows, as_of=w + pd.Timedelta(days=29))
    assert later["listen_seconds_28d"].tolist() == [0] * len(shows)
    assert later["mode"].tolist() == ["familiar"] * len(mine) + ["unfamiliar"]
