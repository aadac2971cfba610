"""The faust app of GLIDE's stream processors.

Run with ``glide streams worker`` or stock ``faust -A streams.app worker --without-web`` (GLIDE_* env
vars pick the broker, data folder and stores; see streams/README.md):

- ``catalog_updates``: a faust agent over `catalog-updates` (streams/catalog_stream.py).
- ``ListenService``: the listen-events processor (streams/processor.py), a service of this app with
  its own batch consumer and per-partition state.
"""

from __future__ import annotations

import logging
import os

import faust
from mode import Service

from glide.config import load_settings
from streams import schemas as S
from streams.catalog_stream import Rec
from streams.config import load_stream_settings
from streams.runtime import Runtime

log = logging.getLogger("glide.streams.app")

glide_settings = load_settings()
stream_settings = load_stream_settings()
(glide_settings.data_dir / "streams").mkdir(parents=True, exist_ok=True)  # faust creates only the leaf

app = faust.App(
    stream_settings.app_id,
    broker=[f"kafka://{b.strip()}" for b in glide_settings.bootstrap_servers().split(",")],
    value_serializer="raw",
    key_serializer="raw",
    store="memory://",
    datadir=str(glide_settings.data_dir / "streams" / "faust"),
    topic_allow_declare=False,  # `glide stack up` creates the topics
    topic_disable_leader=True,
    consumer_auto_offset_reset="earliest",
    broker_session_timeout=stream_settings.session_timeout_s,
    broker_heartbeat_interval=max(0.5, stream_settings.session_timeout_s / 4),
    # tansu answers ListOffsets wrongly unless batches hold one record (see shared notes); no tables
    # here rely on changelogs, but keep faust's own producer safe anyway.
    producer_max_batch_size=1,
    web_enabled=False,
    web_bind="127.0.0.1",
)

runtime = Runtime(glide_settings, stream_settings)
catalog_topic = app.topic(S.CATALOG_TOPIC, key_type=bytes, value_type=bytes)


@app.service
class ListenService(Service):
    """Starts the shared runtime and runs the listen-events processor."""

    async def on_start(self) -> None:
        await runtime.start()

    async def on_stop(self) -> None:
        await runtime.stop()

    @Service.task
    async def _listens(self) -> None:
        await runtime.ready.wait()
        try:
            await runtime.processor.run()
        except Exception:
            # Crash-only: nothing uncommitted survives, and the next start resumes from the state.
            log.critical("listen processor failed; exiting for a clean restart", exc_info=True)
            logging.shutdown()
            os._exit(70)


@app.agent(catalog_topic)
async def catalog_updates(stream) -> None:
    await runtime.ready.wait()
    async for events in stream.take_events(500, within=0.2):
        records = [Rec(e.message.value, e.message.key, e.message.partition, e.message.offset,
                       e.message.timestamp, e.message.headers) for e in events]
        try:
            await runtime.catalog.handle(records)
        except Exception:
            # take_events acks a batch even when its body raises: exit before that can happen.
            log.critical("catalog update failed; exiting for a clean restart", exc_info=True)
            logging.shutdown()
            os._exit(70)
