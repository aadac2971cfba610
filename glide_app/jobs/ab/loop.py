"""The simulated experiment: slot after slot, session starts -> candidates -> the shared ranker ->
slates -> simulated listens -> Kafka -> the stream processors -> Feast and the event log, which the
next slot reads. Nothing is carried from one slot to the next outside the pipeline except what the
simulated listeners themselves remember.

Per slot:
1. publish the slot's new episodes on the catalog stream;
2. the panel draws who opens the app; the session starts of treatment users on a slate surface (home,
   exploration) go through Kafka to the GLIDE worker, which caches the surface's mode (unfamiliar)
   in Feast;
3. every user's view is read back online (recent episodes, CF vector, locale; GLIDE's cached sets
   through CandidateClient for treatment), the sources are pooled and ranked into a slate;
4. the panel plays the sessions against the slates; the listens go through Kafka, and the slot ends
   when the stream worker has processed them (watermark at the slot's end).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from glide.config import GlideSettings
from glide.world.panel import SLATE_SURFACES
from glide.world.schema import SURFACES
from glide_app.jobs.ab import sources as src
from glide_app.jobs.ab.assign import TREATMENT, assign
from glide_app.jobs.ab.config import ABConfig
from glide_app.jobs.ab.pipeline import ABSetup, GlideServer, publish_episodes, send_listens
from glide_app.jobs.ab.ranker import rank


@dataclass
class ABRun:
    arms: pd.DataFrame  # user_id, arm, aa_half
    served: pd.DataFrame  # one row per slate position: slot, user_id, arm, rank, episode_id, glide, sources
    listens: pd.DataFrame  # what the panel played (with `source`: slate or organic)
    start: pd.Timestamp
    end: pd.Timestamp
    sessions: int
    glide_sessions: int


class _Slates:
    """Everything a slot's slates are built from that does not change inside the slot."""

    def __init__(self, settings: GlideSettings, cfg: ABConfig, setup: ABSetup, store):
        from glide_model.cf import CFModel
        from streams.candidate_client import CandidateClient

        self.settings, self.cfg, self.setup, self.store = settings, cfg, setup, store
        self.client = CandidateClient(settings, store)
        self.cf_model = CFModel.load(setup.record["cf_model"])
        self.show_of = dict(zip(setup.world.episodes["episode_id"], setup.world.episodes["show_id"]))

    def popularity(self, at: pd.Timestamp) -> tuple[pd.Series, pd.Series]:
        """(episode plays, show plays) in the popularity window before ``at``, from the event log."""
        from glide.event_log import open_event_log

        recent = open_event_log(self.settings).read("listens", at - pd.Timedelta(days=self.cfg.popularity_days), at)
        return recent["episode_id"].value_counts(), recent["show_id"].value_counts()

    def build(self, user_ids: list[str], treated: set[str], at: pd.Timestamp
              ) -> tuple[dict[str, list[str]], list[dict]]:
        world, cfg = self.setup.world, self.cfg
        catalog = src.CatalogAt(world.episodes, world.shows, at)
        plays, show_plays = self.popularity(at)
        views = src.read_user_views(self.store, user_ids)
        glide = self.client.get([u for u in user_ids if u in treated]) if treated else {}
        slates, rows = {}, []
        for u in user_ids:
            view = views[u]
            lists = {src.POPULARITY: src.popularity_source(plays, catalog, view, cfg.source_size),
                     src.CF: src.cf_source(self.cf_model, catalog, view, cfg.source_size),
                     src.FOLLOWED: src.followed_source(catalog, view, self.show_of, cfg.source_size)}
            if u in treated:
                lists[src.GLIDE] = src.glide_source(glide.get(u), "unfamiliar", catalog, view, cfg.source_size)
            slate = rank(src.pool(lists), view, catalog, show_plays, self.cf_model, cfg.ranker, cfg.slate_size)
            slates[u] = [e for e, _ in slate]
            rows += [{"user_id": u, "rank": r, "episode_id": e, "glide": src.GLIDE in s,
                      "sources": ",".join(sorted(s))} for r, (e, s) in enumerate(slate)]
        return slates, rows


def run_experiment(settings: GlideSettings, cfg: ABConfig, setup: ABSetup, console: Console) -> ABRun:
    """Every slot of the experiment through the pipeline (module docstring)."""
    from glide.world.panel import ListenerPanel
    from streams.candidates import CandidateConfig
    from streams.feature_store import open_store
    from streams.serving import build_service

    world, start = setup.world, setup.start
    history = world.listens[world.listens["ts"] < start]
    panel = ListenerPanel(world, history, start, seed=cfg.seed + 1)
    arms = assign(panel.user_ids.tolist(), cfg.salt, cfg.treatment_share)
    treated = set(arms.loc[arms["arm"] == TREATMENT, "user_id"]) if cfg.glide_in_treatment else set()
    store = open_store(settings)
    slates = _Slates(settings, cfg, setup, store)
    # One set per session start, for its surface's mode: slates are on home and exploration, which
    # ask for unfamiliar shows (CandidateConfig.mode_by_surface), so a familiar set would go unused.
    service = build_service(settings, setup.record["export"], threads=cfg.threads,
                            config=CandidateConfig(session_modes="session"))
    served, played, n_sessions, n_glide = [], [], 0, 0
    slots = cfg.days * cfg.slots_per_day
    with GlideServer(settings, service) as server, Progress(
            TextColumn("A/B slots"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("{task.fields[note]}"), console=console) as bar:
        task = bar.add_task("slots", total=slots, note="")
        for slot in range(slots):
            s0 = start + pd.Timedelta(seconds=slot * cfg.slot_s)
            s1 = s0 + pd.Timedelta(seconds=cfg.slot_s)
            eps = world.episodes
            publish_episodes(settings, setup, eps[(eps["published_at"] >= s0) & (eps["published_at"] < s1)])
            sessions = panel.plan_slot(int(s0.timestamp()), cfg.slot_s)
            frame = pd.DataFrame({"user_id": panel.user_ids[sessions.user],
                                  "ts": pd.to_datetime(sessions.ts, unit="s", utc=True),
                                  "surface": [SURFACES[int(k)] for k in sessions.surface]})
            shown = frame[frame["surface"].isin(SLATE_SURFACES)]  # only these sessions see a slate
            glide_frame = shown[shown["user_id"].isin(treated)]
            if len(glide_frame):
                n_glide += server.serve(glide_frame)
            user_slates, rows = slates.build(shown["user_id"].tolist(), treated, s0)
            listens = panel.respond(sessions, user_slates, int(s1.timestamp()))
            send_listens(settings, setup, listens, int(s1.timestamp() * 1000))
            served += [{**r, "slot": slot} for r in rows]
            played.append(listens)
            n_sessions += len(sessions)
            bar.update(task, advance=1, note=f"{n_sessions} sessions, {sum(map(len, played))} listens")
    served_frame = pd.DataFrame(served, columns=["user_id", "rank", "episode_id", "glide", "sources", "slot"])
    served_frame["arm"] = served_frame["user_id"].map(arms.set_index("user_id")["arm"])
    listens = pd.concat(played, ignore_index=True) if played else pd.DataFrame()
    return ABRun(arms, served_frame, listens, start, start + pd.Timedelta(days=cfg.days), n_sessions, n_glide)


def glide_share(served: pd.DataFrame) -> float:
    """Fraction of treatment's served slate positions that GLIDE proposed (alone or with a control source)."""
    treatment = served[served["arm"] == TREATMENT]
    return float(treatment["glide"].mean()) if len(treatment) else float("nan")


def slate_pick_rate(run: ABRun) -> dict[str, float]:
    """Per arm: the share of listens that came from the slate."""
    if run.listens.empty:
        return {}
    arm = run.listens["user_id"].map(run.arms.set_index("user_id")["arm"])
    return {a: float(np.mean(run.listens.loc[arm == a, "source"] == "slate")) for a in sorted(arm.unique())}
