"""What a stream worker holds while it runs: the Feast store and bulk writer, the catalog and user
caches, the dead-letter producer, the listen processor and the catalog updater."""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaProducer

from glide.config import GlideSettings
from glide.event_log import open_event_log
from streams import logs, metrics
from streams.config import StreamSettings

log = logging.getLogger("glide.streams")


class Runtime:
    def __init__(self, glide: GlideSettings, cfg: StreamSettings):
        self.glide, self.cfg = glide, cfg
        self.ready = asyncio.Event()
        self.processor = None
        self.catalog = None
        self.producer: AIOKafkaProducer | None = None
        self.metrics_port: int | None = None

    async def start(self, on_batch=None) -> None:
        from glide.catalog import CatalogDB
        from streams.catalog_stream import CatalogUpdater
        from streams.online_writer import OnlineWriter
        from streams.processor import ListenProcessor
        from streams.reference import CatalogCache, UserDirectory

        logs.configure(json=self.cfg.log_json)
        self.metrics_port = metrics.serve(self.cfg.metrics_host, self.cfg.metrics_port)
        self.writer = OnlineWriter(self.glide)  # no Feast import: see streams/online_writer.py
        db = CatalogDB.from_settings(self.glide)
        if db.revision() is None:
            db.migrate()
        cache = CatalogCache(db, self.cfg.quantizer_version)
        users = UserDirectory(OnlineWriter(self.glide)) if self.cfg.check_users else None
        # Dead letters are capped to fit this request size (streams/config.py, "Record sizes").
        self.producer = AIOKafkaProducer(bootstrap_servers=self.glide.bootstrap_servers(), linger_ms=5, acks=1,
                                         client_id="glide-streams-dlq",
                                         max_request_size=self.cfg.producer_max_request_bytes)
        await self.producer.start()
        self.catalog = CatalogUpdater(self.cfg, db, cache, OnlineWriter(self.glide), self.producer,
                                      event_log=open_event_log(self.glide))
        self.processor = ListenProcessor(self.glide, self.cfg, self.writer, cache, users,
                                         producer=self.producer, on_batch=on_batch)
        await self.processor.start()
        self.ready.set()
        log.info("stream worker ready", extra={"metrics_port": self.metrics_port,
                                               "feast_project": self.writer.project})

    async def stop(self) -> None:
        if self.processor is not None:
            await self.processor.stop()
        if self.producer is not None:
            await self.producer.stop()
