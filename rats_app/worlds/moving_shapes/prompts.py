"""The Moving Shapes prompt grammar (contract v1, shared/specs/moving-shapes.md).

Prompt, exactly: ``a {size} {color} {shape} moving {direction} on a {background} background``.
2 sizes x 6 colours x 3 shapes x 4 directions x 3 backgrounds = 432 prompts; 36 of them (six
(colour, shape, direction) combinations) are held out of all pretraining.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from rats_app.worlds.palette import BACKGROUNDS, COLORS, SHAPES

SIZES: dict[str, int] = {"small": 8, "large": 14}  # bounding-box side in px
# Unit motion per frame (x right, y down) and where the path starts on the moving axis.
DIRECTIONS: dict[str, tuple[int, int]] = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
HELD_OUT: frozenset[tuple[str, str, str]] = frozenset({
    ("purple", "triangle", "up"),
    ("orange", "circle", "right"),
    ("blue", "square", "left"),
    ("yellow", "triangle", "down"),
    ("green", "circle", "left"),
    ("red", "square", "up"),
})
ATTRIBUTES: tuple[str, ...] = ("background", "color", "shape", "size", "direction")
OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up"}

PROMPT_TEMPLATE = "a {size} {color} {shape} moving {direction} on a {background} background"
_PROMPT_RE = re.compile(r"^a (?P<size>\w+) (?P<color>\w+) (?P<shape>\w+) moving (?P<direction>\w+) "
                        r"on a (?P<background>\w+) background$")
_CHOICES = {"size": SIZES, "color": COLORS, "shape": SHAPES, "direction": DIRECTIONS, "background": BACKGROUNDS}


@dataclass(frozen=True)
class Scene:
    """The five attributes a prompt names."""

    size: str
    color: str
    shape: str
    direction: str
    background: str

    def __post_init__(self) -> None:
        for name, allowed in _CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}; expected one of {sorted(allowed)}")

    @property
    def prompt(self) -> str:
        return PROMPT_TEMPLATE.format(**self.__dict__)

    @property
    def held_out(self) -> bool:
        return (self.color, self.shape, self.direction) in HELD_OUT

    def with_(self, **changes) -> "Scene":
        return Scene(**{**self.__dict__, **changes})


def parse_prompt(prompt: str) -> Scene:
    """Parse a Moving Shapes prompt; raise ValueError naming what does not fit the grammar."""
    match = _PROMPT_RE.match(" ".join(prompt.strip().split()))
    if match is None:
        raise ValueError(f"not a Moving Shapes prompt: {prompt!r}; expected {PROMPT_TEMPLATE!r}")
    return Scene(**match.groupdict())


def all_prompts() -> list[str]:
    """All 432 prompts in a fixed order."""
    return [Scene(*combo).prompt for combo in itertools.product(SIZES, COLORS, SHAPES, DIRECTIONS, BACKGROUNDS)]


def training_prompts() -> list[str]:
    """The 396 prompts pretraining (teacher and reward) may see."""
    return [p for p in all_prompts() if not parse_prompt(p).held_out]


def held_out_prompts() -> list[str]:
    """The 36 prompts never shown in pretraining."""
    return [p for p in all_prompts() if parse_prompt(p).held_out]


def neighbours(scene: Scene) -> list[Scene]:
    """Every scene that differs from ``scene`` in exactly one attribute."""
    return [scene.with_(**{name: value}) for name, allowed in _CHOICES.items() for value in allowed
            if value != getattr(scene, name)]


def vocabulary() -> list[str]:
    """Every word the grammar can produce, sorted: the closed vocabulary of the world model."""
    words = {"a", "moving", "on", "background"}
    for group in _CHOICES.values():
        words.update(group)
    return sorted(words)
