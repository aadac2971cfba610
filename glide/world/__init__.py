"""Synthetic podcast world: catalog, simulated listeners, and world statistics.

This package file only re-exports the public names for callers outside glide.world; modules inside
the package import each name from the module that defines it, never from here, so importing a
submodule never runs back into the package (layering: schema/vocab -> catalog -> config ->
simulate -> generator; stats and itunes sit beside them).
"""

from glide.world.catalog import Catalog
from glide.world.config import WorldConfig
from glide.world.generator import World, generate_world
from glide.world.stats import classify_listens

__all__ = ["Catalog", "World", "WorldConfig", "classify_listens", "generate_world"]
