"""Moving Shapes: the embedded video world (shared/specs/moving-shapes.md, docs/moving-shapes.md).

Clips of 9 frames of 32x32: one object moving straight at 2 px per frame, its prompt grammar,
degradations that define quality (blur, noise, contrast, flicker, jitter, stutter) and a
ground-truth checker. The pretrained tiny Wan teacher and the video preference reward are built on it.
"""
