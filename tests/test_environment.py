"""The README's install gives a consistent environment: the reward stack did not break it."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_pip_check_is_clean():
    result = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_pins_held():
    import torch

    assert int(pytest.__version__.split(".")[0]) >= 9, "pytest was downgraded (hpsv2 pins pytest==7.2.0)"
    assert torch.__version__.startswith("2.13.0"), torch.__version__


def test_clip_imports_with_this_torch():
    """torchvision's PyPI wheel breaks CLIPTextModel on the CPU torch build; it must not be installed."""
    from transformers import CLIPModel, CLIPTextModel  # noqa: F401
