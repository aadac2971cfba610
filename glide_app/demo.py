"""`glide demo` (what `make demo` runs): the whole loop on the embedded stack, narrated.

1. stack up (tansu + Feast on SQLite/duckdb under .glide/)
2. a synthetic podcast world; its catalog into the catalog DB; Semantic IDs for every episode
3. the stream worker consumes a replay of the world's listens and catalog updates: a listener's
   28-day show totals and recent SIDs change as events arrive, and end equal to the batch
   recomputation; every accepted listen lands in the offline event log
4. GLIDE is trained from what the streams recorded (event log -> Feast offline store), never from
   the world files, and its CF vectors go to the online store
5. the GLIDE worker answers session-start events with candidates cached in Feast, and the parity
   check rebuilds 50 of them as training/evaluation sees them (`--json` ends with the counts)
6. what a ranker reads for two listeners: their history, then their familiar and unfamiliar sets
   side by side through the ranker's client; then what the tiny model's numbers mean, and commands
   that work on the demo's stack and model
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import click
import orjson
import pandas as pd
from rich.console import Console
from rich.table import Table

from glide.config import GlideSettings, load_settings
from glide_app.jobs.catalog_setup import CONFIGS
from glide_app.jobs.data_dir import reset_data_dir
from glide_app.jobs.stream_worker import start_stream_worker, wait_ready

console = Console()


def step(n: int, text: str) -> None:
    console.rule(f"[bold cyan]{n}. {text}")


def _world(settings: GlideSettings, users: int, days: int, seed: int):
    from glide.world.generator import World, WorldConfig, generate_world

    folder = settings.data_dir / "world"
    config = WorldConfig(users=users, days=days, seed=seed, shows=120, episodes_per_show=20)
    if (folder / "world.json").exists():
        world = World.load(folder)
        if world.config == config:
            return world
    world = generate_world(config)
    world.save(folder)
    return world


def _user_features(store, user_id: str, shows: list[str]) -> pd.DataFrame:
    from streams.feature_store import read_user_show_features

    got = read_user_show_features(store, user_id, shows)  # as stored: exact at the stream's watermark
    return got.rename(columns={"listen_seconds_28d": "seconds_28d"})[["show_id", "seconds_28d", "habitual"]]


def _recent(store, user_id: str) -> list[str]:
    from streams.feature_store import online_features

    got = online_features(store, ["user_recent_sids:recent_episode_ids"], [{"user_id": user_id}])
    return list(got["recent_episode_ids"][0] or [])


def _count_topics(bootstrap: str) -> dict[str, int]:
    """Records per topic, by reading each to its end (tansu's ListOffsets cannot be trusted)."""
    from kafka import KafkaConsumer

    from glide.config import TOPICS

    consumer = KafkaConsumer(*TOPICS, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=2500, enable_auto_commit=False, max_poll_records=5000)
    counts = dict.fromkeys(TOPICS, 0)
    for record in consumer:
        counts[record.topic] += 1
    consumer.close()
    return counts


def _stack(settings: GlideSettings, fresh: bool) -> None:
    from infra import stack

    if fresh:
        reset_data_dir(settings)
    status = stack.up(settings)
    console.print(f"broker {status.bootstrap}; topics {', '.join(t for t in status.topics if not t.startswith('_'))}; "
                  f"feature views {len(status.feature_views)}")


def _catalog_and_sids(settings: GlideSettings, world, train_config: Path):
    """The world's catalog into the catalog DB, its Semantic IDs, the listeners' profiles online."""
    from glide_app.jobs.catalog_setup import load_catalog

    console.print(f"{len(world.shows)} shows, {len(world.episodes)} episodes, {len(world.users)} listeners, "
                  f"{len(world.sessions)} sessions, {len(world.listens)} listens over {world.config.days} days")
    got = load_catalog(settings, world.shows, world.episodes, world.users, world.listens["ts"].min(), train_config,
                       console)
    console.print(f"SIDs of quantizer {got.quantizer_version}: {len(set(got.assignments.values()))} distinct for "
                  f"{len(got.assignments)} episodes")
    return got.db, got.job


def _watch_listener(store, world, replay: threading.Thread) -> tuple[str, pd.Series, pd.Series | None]:
    """One listener's 28-day totals as the replay streams in: (user, batch totals, online totals)."""
    from glide import habits

    listens = world.listens
    user = listens["user_id"].value_counts().index[len(world.users) // 3]
    shows = listens.loc[listens["user_id"] == user, "show_id"].value_counts().index[:4].tolist()
    expected = habits.user_show_features(listens[listens["user_id"] == user], listens["ts"].max())
    expected = expected.set_index("show_id").reindex(shows)["listen_seconds_28d"].fillna(0).astype(int)
    table = Table(title=f"listener {user}: 28-day seconds per show as events replay (event time)")
    table.add_column("wall s")
    for s in shows:
        table.add_column(s)
    table.add_column("recent episodes")
    replay.start()
    t0, last, online = time.perf_counter(), None, None
    while time.perf_counter() - t0 < 240:
        feats = _user_features(store, user, shows)
        online = pd.to_numeric(feats.set_index("show_id")["seconds_28d"]).fillna(0).astype(int)
        cells = [f"{0 if pd.isna(v) else int(v)}{'' if pd.isna(h) or not h else ' H'}"  # None/NaN: no row yet
                 for v, h in zip(feats["seconds_28d"], feats["habitual"])]
        row = (*cells, str(len(_recent(store, user))))
        if row != last:
            table.add_row(f"{time.perf_counter() - t0:.0f}", *row)
            last = row
        if not replay.is_alive() and (online == expected).all():
            break
        time.sleep(1)
    console.print(table)
    console.print("(H = habitual: >= 600 s in the past 28 days)")
    return user, expected, online


def _stream_replay(settings: GlideSettings, world):
    """The world's listens and catalog updates through Kafka into the stream worker; its ReplayStats.
    Session starts are not replayed: step 5 sends its own, which a backlog would queue behind."""
    from streams.feature_store import open_store
    from streams.progress import wait_processed
    from streams.replay import replay_world

    worker = start_stream_worker(settings)
    try:
        wait_ready(settings, worker, console)
        replayed: list = []
        replay = threading.Thread(target=lambda: replayed.append(
            replay_world(world, settings.bootstrap_servers(), rate=2000, sessions=False)), daemon=True)
        user, expected, online = _watch_listener(open_store(settings), world, replay)
        replay.join()
        with console.status("waiting for the stream worker to process every replayed listen..."):
            wait_processed(settings, replayed[0].end_offsets, timeout=300, procs=[worker])
        counts = _count_topics(settings.bootstrap_servers())
        console.print("records per topic: " + ", ".join(f"{t}={n}" for t, n in counts.items()))
        same = online is not None and (expected == online).all()
        console.print(f"online features == batch recomputation for {user}: "
                      f"{'[green]yes' if same else '[red]no'}[/] (online {online.to_dict()}, "
                      f"batch {expected.to_dict()})")
        return replayed[0]
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def _train_from_log(settings: GlideSettings, job, replayed) -> tuple[int, dict]:
    from glide.event_log import open_event_log
    from glide_app.jobs.train import run_train_job

    logged = len(open_event_log(settings).read("listens"))
    console.print(f"offline event log: {logged} listens logged of {replayed.listens} produced; the job reads "
                  "only the log and the catalog DB (the world files served the replay alone)")
    return logged, run_train_job(settings, job, console)


def _serve_and_check(settings: GlideSettings, record: dict, job, replayed, db):
    """50 session starts through the GLIDE worker, compared with training/evaluation (parity)."""
    from glide_app.jobs.parity import check_parity

    at = pd.Timestamp(replayed.final_ts_ms + 1, unit="ms", tz="UTC")  # just after the replayed events
    with console.status("serving 50 session starts and rebuilding them as training/evaluation sees them..."):
        inputs, candidates, served = check_parity(settings, record, job, at, sample=50)
    found = inputs.mismatches + candidates.mismatches
    console.print(f"parity: {inputs.checked} model inputs (token ids, soft prompt, allowed SIDs) and "
                  f"{candidates.checked} cached candidate lists compared with training/evaluation's: "
                  f"{'[green]' if not found else '[red]'}{len(found)} mismatches[/]")
    for m in found[:5]:
        console.print(f"  {m}")
    return inputs.checked + candidates.checked, len(found), list(served)[:2]


def _ranker_view(settings: GlideSettings, db, user_ids: list[str], top: int = 5) -> None:
    """What a ranker sees for ``user_ids``: their recent history, then the cached familiar and
    unfamiliar sets side by side, read back through the ranker's client (Feast only, no generation)."""
    from streams.candidate_client import CandidateClient
    from streams.feature_store import open_store

    store = open_store(settings)
    episodes = db.episodes_frame().set_index("episode_id")

    def label(eid: str) -> str:
        return f"{episodes['show_id'].get(eid, '?')}: {str(episodes['title'].get(eid, eid))[:48]}"

    for user_id, got in CandidateClient(settings, store).get(user_ids).items():
        history = _recent(store, user_id)[-top:]
        console.print(f"[bold]{user_id}[/] listened to, most recent last: " + "; ".join(label(e) for e in history))
        familiar, unfamiliar = (got.sets.get(m) for m in ("familiar", "unfamiliar"))
        table = Table(title=f"{user_id}: cached candidates read through CandidateClient (model "
                            f"{(familiar or unfamiliar).model_version if (familiar or unfamiliar) else '-'})")
        for col in ("#", "familiar (shows they know)", "unfamiliar (new shows)"):
            table.add_column(col)
        for rank in range(top):
            table.add_row(str(rank + 1), *(_cell(c, rank, label) for c in (familiar, unfamiliar)))
        console.print(table)
        if got.missing:
            console.print(f"  no cached set for {', '.join(got.missing)}")


def _cell(cached, rank: int, label) -> str:
    if cached is None:
        return "(not cached)" if rank == 0 else ""
    if not cached.episode_ids:  # e.g. every episode of the shows they know is habitual or heard
        return "(empty: nothing eligible)" if rank == 0 else ""
    return label(cached.episode_ids[rank]) if rank < len(cached.episode_ids) else ""


def _what_the_numbers_mean(record: dict) -> None:
    glide, pop = record.get("glide_recall@30"), record.get("popularity_recall@30")
    verdict = ("promoted: it beat popularity" if record.get("promoted") else
               "not promoted: it did not beat popularity, so the registry has no promoted model")
    console.print(f"Held-out Recall@30: GLIDE {glide:.3f} vs popularity {pop:.3f}; model {record['run']} {verdict}. "
                  "The demo trains a tiny random-init model for seconds so the whole loop runs in minutes: these "
                  "numbers show the loop works, not GLIDE's quality. The quality runs (SmolLM2 on the world, "
                  "Amazon Scientific against SASRec) are in benchmarks/RESULTS.md.")


def next_commands(record: dict, user_ids: list[str]) -> list[str]:
    """Commands that work right after the demo, on its stack and model (promoted or not)."""
    users = " ".join(user_ids)
    return [f"glide candidates {users}", f"glide recommend --model {record['export']} {user_ids[0]}",
            "glide stack down"]


@click.command()
@click.option("--users", type=int, default=200, show_default=True)
@click.option("--days", type=int, default=35, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--config", "train_config", type=click.Path(path_type=Path, dir_okay=False),
              default=CONFIGS / "demo.yaml", show_default=True, help="Train config for step 4.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None)
@click.option("--fresh/--keep", default=True, show_default=True,
              help="Start from an empty stack and data dir (caches of embeddings and models are kept).")
@click.option("--json", "as_json", is_flag=True, help="End with one JSON line: users, online CF vectors, parity, events.")
def demo(users: int, days: int, seed: int, train_config: Path, data_dir: str | None, fresh: bool,
         as_json: bool) -> None:
    """Run the whole GLIDE loop on the embedded stack, explaining each step."""
    settings = load_settings(data_dir=data_dir)
    started = time.perf_counter()
    step(1, "stack: Kafka-protocol broker + Feast")
    _stack(settings, fresh)
    step(2, "a synthetic podcast world, its catalog and Semantic IDs")
    world = _world(settings, users, days, seed)
    db, job = _catalog_and_sids(settings, world, train_config)
    step(3, "streams: replay the world through Kafka into the online store and the event log")
    replayed = _stream_replay(settings, world)
    step(4, "train GLIDE from what the streams recorded (event log -> Feast offline store)")
    logged, record = _train_from_log(settings, job, replayed)
    step(5, "serve: session starts -> the GLIDE worker -> candidates cached in Feast, checked against training")
    checked, mismatches, shown = _serve_and_check(settings, record, job, replayed, db)
    step(6, "what a ranker reads: history, then familiar and unfamiliar candidates from the cache")
    _ranker_view(settings, db, shown)
    _what_the_numbers_mean(record)
    console.rule("[bold green]done")
    commands = next_commands(record, shown)
    console.print(f"{time.perf_counter() - started:.0f} s. The stack is still up; try: "
                  + "; ".join(f"`{c}`" for c in commands) + " (`make clean` removes the demo's data).")
    if as_json:
        click.echo(orjson.dumps({
            "users": int(len(world.users)), "cf_users": record.get("cf_users"),
            "online_cf_users": record.get("online_cf_users"),
            "parity_checked": checked, "parity_mismatches": mismatches,
            "events_logged": logged, "events_produced": replayed.listens,
            "model_version": record["run"], "promoted": bool(record.get("promoted")),
            "glide_recall@30": record.get("glide_recall@30"), "popularity_recall@30": record.get("popularity_recall@30"),
            "next_commands": commands, "seconds": round(time.perf_counter() - started, 1),
        }).decode())
