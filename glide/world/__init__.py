"""Synthetic podcast world: catalog, simulated listeners, and world statistics."""

from glide.world.catalog import Catalog
from glide.world.generator import World, WorldConfig, generate_world
from glide.world.stats import classify_listens

__all__ = ["Catalog", "World", "WorldConfig", "classify_listens", "generate_world"]
