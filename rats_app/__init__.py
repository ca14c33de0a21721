"""RATS Studio: few-step, preference-aligned image generation (Reward-Aware Trajectory Shaping)."""

import os as _os

# Importing diffusers makes transformers warn, on every run, that torchvision is missing and a PIL
# image processor is used instead; that is expected here (CPU torch has no working torchvision).
# Errors still show; an explicit TRANSFORMERS_VERBOSITY wins.
_os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

__version__ = "0.1.0"
