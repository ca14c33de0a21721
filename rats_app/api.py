"""The pure-Python API the CLI and the UI share: load models once, generate, score.

Nothing heavy happens at import time; models load on first use (thread-safe) and stay loaded.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from rats_app.models import DEFAULT_MODEL, UserError, check_nfe, load_pipeline
from rats_app.sampler import generate



@dataclass
class GeneratedImage:
    image: object            # PIL.Image
    label: str
    nfe: int
    latency_ms: float
    scores: dict[str, float | str] = field(default_factory=dict)  # reward name -> score or "unavailable: why"


class Studio:
    """Holds one model (and its rewards) loaded once; generation is serialised by a lock."""

    def __init__(self, model: str | Path = DEFAULT_MODEL, device: str | None = None):
        self.model_path = Path(model)
        self.device = device
        self._lock = threading.RLock()
        self._pipe = None
        self._info = None
        self._rewards: dict[str, object] = {}

    def load(self):
        with self._lock:
            if self._pipe is None:
                self._pipe, self._info = load_pipeline(self.model_path, device=self.device)
            return self._pipe, self._info

    @property
    def info(self):
        return self.load()[1]

    def reward(self, name: str = "shapes"):
        """The Shapes World reward (the registry of real rewards arrives with the rewards issue)."""
        with self._lock:
            if name not in self._rewards:
                from rats_app.rewards.registry import load_reward

                self._rewards[name] = load_reward(name, device="cpu")
            return self._rewards[name]

    def generate(self, prompt: str, seed: int, nfe: int, label: str) -> GeneratedImage:
        pipe, info = self.load()
        prompt = info.check_prompt(prompt)
        nfe = check_nfe(nfe)
        call = {"height": info.height, "width": info.width, **info.call_defaults}
        with self._lock, torch.inference_mode():
            start = time.perf_counter()
            image = generate(pipe, [prompt], nfe, [int(seed)], **call)[0]
            latency = (time.perf_counter() - start) * 1000
        return GeneratedImage(image, label, nfe, latency)

    def score(self, items: list[GeneratedImage], prompt: str) -> None:
        """Fill each item's scores with every reward we have (or why it is unavailable)."""
        try:
            reward = self.reward("shapes")
        except Exception as exc:  # a missing reward is shown, never fatal
            for item in items:
                item.scores["shapes"] = f"unavailable: {exc}"
            return
        values = reward.score_fast([item.image for item in items], [prompt] * len(items))
        for item, value in zip(items, values.tolist()):
            item.scores["shapes"] = round(value, 3)

    def compare(self, prompt: str, seed: int, nfe: int, teacher_nfe: int = 50) -> list[GeneratedImage]:
        """Teacher @ teacher_nfe and baseline @ nfe from the same prompt, seed and noise."""
        nfe, teacher_nfe = check_nfe(nfe, "nfe"), check_nfe(teacher_nfe, "teacher_nfe")
        if teacher_nfe < nfe:
            raise UserError(f"teacher NFE ({teacher_nfe}) must be at least the student NFE ({nfe})")
        items = [self.generate(prompt, seed, teacher_nfe, "Teacher"), self.generate(prompt, seed, nfe, "Baseline")]
        self.score(items, prompt)
        return items
