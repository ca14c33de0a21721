"""The colours, backgrounds and shapes both embedded worlds share (Shapes World contract v1;
Moving Shapes takes the same values, shared/specs/moving-shapes.md)."""

from __future__ import annotations

COLORS: dict[str, tuple[int, int, int]] = {  # sRGB
    "red": (220, 40, 40),
    "green": (40, 170, 70),
    "blue": (40, 90, 220),
    "yellow": (235, 205, 40),
    "purple": (150, 60, 200),
    "orange": (245, 135, 30),
}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": (240, 240, 240),
    "black": (20, 20, 20),
    "gray": (128, 128, 128),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
MID_GRAY = 128.0  # where the contrast degradation pulls colours
