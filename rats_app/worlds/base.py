"""What an embedded world provides: prompts, its shipped model, LoRA and reward, and ground truth.

The core (config, trainer, run directory, evaluate, app) knows worlds only through this interface
and the registry in ``rats_app.worlds``: a model directory names its world in ``world.json``
(``"world": "<id>/<version>"``), and everything world-specific is looked up from there.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from types import ModuleType
from typing import Callable

import numpy as np

from rats_app.worlds.reading import CheckResult

TRUTH_PREFIX = "truth: "


def truth_scores(check: CheckResult) -> dict[str, float]:
    """A world checker's verdict as score columns: share of attributes right, clean (1/0), and the
    fidelity fit (blur sigma in px, residual and error to the ideal render, 0-255 RMS)."""
    from rats_app.worlds.fidelity import FIDELITY

    scores = {f"{TRUTH_PREFIX}right": round(sum(check.right.values()) / max(len(check.right), 1), 3),
              f"{TRUTH_PREFIX}clean": float(check.clean)}
    scores.update({f"{TRUTH_PREFIX}{key}": round(check.measurements[key], 3) for key in FIDELITY
                   if key in check.measurements})
    return scores

def truth_means(world: "World | None", media, prompts: list[str]) -> dict[str, float]:
    """The hacking watch's truth line: on a world with a checker, the means of its verdict on a batch
    of outputs (uint8, channels last) - ``truth: right``, ``clean``, ``sigma``, ``residual``,
    ``ideal_error``; empty for a model with no world or a world with no checker."""
    if world is None or not world.has_checker or not len(prompts):
        return {}
    rows = [truth_scores(world.check(m, p)) for m, p in zip(media, prompts)]
    return {key: float(np.mean([r[key] for r in rows if key in r])) for key in rows[0]}


REPO_ROOT = Path(__file__).resolve().parent.parent.parent
ASSETS = REPO_ROOT / "assets"


class World(ABC):
    id: str                   # the prefix of world.json's "world" value, e.g. "shapes-world"
    title: str                # shown in the app, e.g. "Shapes World"
    media: str                # "image" or "video"
    model_dir: Path           # the shipped teacher
    lora_dir: Path            # the shipped RATS LoRA for it
    reward: str               # the registry name of the world's preference reward
    grammar: ModuleType       # its prompts module: training_prompts(), held_out_prompts(), ATTRIBUTES
    sample_grid_prompts: tuple[str, ...]  # a training run's sample grid (some held out)

    @property
    def attributes(self) -> tuple[str, ...]:
        """What the checker reads, in table order."""
        return self.grammar.ATTRIBUTES

    def training_prompts(self) -> list[str]:
        """Prompts pretraining (teacher and reward) may see."""
        return self.grammar.training_prompts()

    def held_out_prompts(self) -> list[str]:
        """Prompts never shown in pretraining."""
        return self.grammar.held_out_prompts()

    def prompt_sets(self) -> dict[str, list[str]]:
        """Named prompt sets for evaluate's ``--prompts``."""
        train, held_out = self.training_prompts(), self.held_out_prompts()
        return {"world-train": train, "world-heldout": held_out, "world": train + held_out}

    def sample_prompts(self) -> list[str]:
        """The fixed prompts of a training run's sample grid (some held out)."""
        return list(self.sample_grid_prompts)

    @abstractmethod
    def examples(self) -> list[tuple[str, bool]]:
        """The app's example prompts and whether each is held out."""

    def check(self, media: np.ndarray, prompt: str) -> CheckResult | None:
        """Ground truth for one uint8 image (H x W x 3) or clip (F x H x W x 3); None: no checker."""
        return None

    def train_defaults(self) -> dict:
        """The RATS run this world's student is trained with, as TrainConfig keys that differ from
        TrainConfig's defaults (which were tuned on Shapes World; its own keys are its guidance, draw
        weights, length and teacher grid). A run on this world's models starts from them; a config
        file, a preset or key=value overrides still win."""
        return {}

    def rewards(self) -> dict[str, Callable[[str | None], object]]:
        """Reward loaders this world adds to the registry: name -> loader(device)."""
        return {}

    @property
    def has_checker(self) -> bool:
        return type(self).check is not World.check
