"""Every catalog update, to every GLIDE worker replica.

Session starts are shared out by the consumer group (each replica serves its partitions); catalog
updates must not be: each replica holds its own trie and collision table, so each must see every new
episode. So catalog-updates is read by a consumer of its own per replica, with every partition
assigned manually (no group, nothing committed).

Where a replica starts: with the updates at most ``replay_s`` old (by record timestamp). The model's
SIDs and the collision table come from the catalog DB at load time, which holds what the catalog stream
applied; the replay covers updates it had not applied (or had not given a SID) by then, and an update
for an episode the table already has changes nothing (CandidateService.add_episodes), so the overlap is
harmless. Each partition is sought to the broker's answer for that time (ListOffsets by timestamp), or
to its beginning without one, and older records are skipped here: a broker that answers too early
(tansu answers offset 0) costs a longer read at start, never a lost update. A producer whose clock is
more than ``replay_s`` behind would have its updates skipped, hence days, not seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.config import StreamSettings
from streams.schemas import CATALOG_TOPIC

log = logging.getLogger("glide.worker")

METADATA_WAIT_S = 30.0  # a broker that has not created the topic yet (stack start) gets this long


class CatalogFeed:
    """catalog-updates, all partitions, for this process alone."""

    def __init__(self, bootstrap: str, cfg: StreamSettings, replay_s: float, topic: str = CATALOG_TOPIC):
        self.topic = topic
        self.replay_s = replay_s
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
            max_partition_fetch_bytes=cfg.fetch_max_partition_bytes, fetch_max_bytes=cfg.fetch_max_bytes,
        )
        self.partitions: list[TopicPartition] = []
        self.since_ms = 0

    async def start(self) -> None:
        await self.consumer.start()
        self.partitions = [TopicPartition(self.topic, p) for p in sorted(await self._partition_ids())]
        self.consumer.assign(self.partitions)
        self.since_ms = int((time.time() - self.replay_s) * 1000)
        found = await self.consumer.offsets_for_times({tp: self.since_ms for tp in self.partitions})
        for tp in self.partitions:
            at = found.get(tp)
            if at is None:
                await self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, at.offset)
        log.info("catalog-updates: %d partitions, replaying from %.0f s ago", len(self.partitions), self.replay_s)

    async def _partition_ids(self) -> set[int]:
        deadline = time.monotonic() + METADATA_WAIT_S
        while True:
            await self.consumer.topics()  # refreshes the cluster metadata
            ids = self.consumer.partitions_for_topic(self.topic)
            if ids:
                return ids
            if time.monotonic() > deadline:
                raise RuntimeError(f"topic {self.topic!r} has no partitions on the broker: create the topics "
                                   "(`glide stack up`) before starting the GLIDE worker")
            await asyncio.sleep(0.5)

    async def poll(self, max_records: int) -> list:
        """The updates fetched so far (none waited for) within the replay window, in partition order."""
        batches = await self.consumer.getmany(*self.partitions, timeout_ms=0, max_records=max_records)
        return [r for tp in self.partitions for r in batches.get(tp, ()) if r.timestamp >= self.since_ms]

    async def stop(self) -> None:
        await self.consumer.stop()
