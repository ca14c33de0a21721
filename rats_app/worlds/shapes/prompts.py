"""The Shapes World prompt grammar (contract v1).

Prompt, exactly: ``a {size} {color} {shape} at the {position} on a {background} background``.
2 sizes x 6 colours x 3 shapes x 5 positions x 3 backgrounds = 540 prompts; 36 of them (six
(colour, shape, position) combinations) are held out of all pretraining.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from rats_app.worlds.palette import BACKGROUNDS, COLORS, SHAPES

SIZES: dict[str, int] = {"small": 16, "large": 28}  # bounding-box side in px
POSITIONS: dict[str, tuple[int, int]] = {  # bounding-box centre (x right, y down)
    "top left": (16, 16),
    "top right": (48, 16),
    "bottom left": (16, 48),
    "bottom right": (48, 48),
    "center": (32, 32),
}
HELD_OUT: frozenset[tuple[str, str, str]] = frozenset({
    ("purple", "triangle", "center"),
    ("orange", "circle", "top right"),
    ("blue", "square", "bottom left"),
    ("yellow", "triangle", "top left"),
    ("green", "circle", "bottom right"),
    ("red", "square", "center"),
})
ATTRIBUTES: tuple[str, ...] = ("background", "color", "shape", "size", "position")

PROMPT_TEMPLATE = "a {size} {color} {shape} at the {position} on a {background} background"
_PROMPT_RE = re.compile(
    r"^a (?P<size>\w+) (?P<color>\w+) (?P<shape>\w+) at the (?P<position>[\w ]+?) "
    r"on a (?P<background>\w+) background$"
)


@dataclass(frozen=True)
class Scene:
    """The five attributes a prompt names."""

    size: str
    color: str
    shape: str
    position: str
    background: str

    def __post_init__(self) -> None:
        for name, allowed in (("size", SIZES), ("color", COLORS), ("shape", SHAPES),
                              ("position", POSITIONS), ("background", BACKGROUNDS)):
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"unknown {name} {value!r}; expected one of {sorted(allowed)}")

    @property
    def prompt(self) -> str:
        return PROMPT_TEMPLATE.format(**self.__dict__)

    @property
    def held_out(self) -> bool:
        return (self.color, self.shape, self.position) in HELD_OUT


def parse_prompt(prompt: str) -> Scene:
    """Parse a Shapes World prompt; raise ValueError naming what does not fit the grammar."""
    text = " ".join(prompt.strip().split())
    match = _PROMPT_RE.match(text)
    if match is None:
        raise ValueError(f"not a Shapes World prompt: {prompt!r}; expected {PROMPT_TEMPLATE!r}")
    return Scene(**match.groupdict())


def all_prompts() -> list[str]:
    """All 540 prompts in a fixed order."""
    return [Scene(*combo).prompt for combo in itertools.product(
        SIZES, COLORS, SHAPES, POSITIONS, BACKGROUNDS)]


def training_prompts() -> list[str]:
    """The 504 prompts that pretraining (teacher and reward) may see."""
    return [p for p in all_prompts() if not parse_prompt(p).held_out]


def held_out_prompts() -> list[str]:
    """The 36 prompts never shown in pretraining."""
    return [p for p in all_prompts() if parse_prompt(p).held_out]


def vocabulary() -> list[str]:
    """Every word the grammar can produce, sorted: the closed vocabulary of the world model."""
    words = set(PROMPT_TEMPLATE.replace("{", " ").replace("}", " ").split()) - {
        "size", "color", "shape", "position", "background"} | {"background"}
    for group in (SIZES, COLORS, SHAPES, POSITIONS, BACKGROUNDS):
        for key in group:
            words.update(key.split())
    return sorted(words)
