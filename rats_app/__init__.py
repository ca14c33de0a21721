"""RATS Studio: few-step, preference-aligned image generation (Reward-Aware Trajectory Shaping)."""

__version__ = "0.1.0"
