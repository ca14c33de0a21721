"""Embedded worlds: small offline domains with their own model, LoRA, reward and ground truth.

Built in: Shapes World (images, ``rats_app.worlds.shapes``) and Moving Shapes (video,
``rats_app.worlds.moving_shapes``). A third-party world registers a ``World`` object under the
entry-point group ``rats_studio.worlds``. A model belongs to the world its ``world.json`` names.
"""

from __future__ import annotations

import functools
import importlib
from importlib.metadata import entry_points

from rats_app.worlds.base import ASSETS, REPO_ROOT, World

BUILT_IN = {
    "shapes-world": "rats_app.worlds.shapes.plugin:WORLD",
    "moving-shapes": "rats_app.worlds.moving_shapes.plugin:WORLD",
}
DEFAULT_WORLD = "shapes-world"


def _load(target: str) -> World:
    module, attribute = target.split(":")
    return getattr(importlib.import_module(module), attribute)


@functools.cache
def worlds() -> dict[str, World]:
    """Every world, by id: the built-in ones, then any registered through entry points."""
    found = {name: _load(target) for name, target in BUILT_IN.items()}
    for point in entry_points(group="rats_studio.worlds"):
        world = point.load()
        found.setdefault(world.id, world)
    return found


def get_world(world_id: str) -> World | None:
    """The world a ``world.json`` id names (``"shapes-world/v1"`` or ``"shapes-world"``), if known."""
    return worlds().get(world_id.split("/")[0])


def default_world() -> World:
    return worlds()[DEFAULT_WORLD]


__all__ = ["ASSETS", "DEFAULT_WORLD", "REPO_ROOT", "World", "default_world", "get_world", "worlds"]
