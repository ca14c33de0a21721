"""What every tab of the app shares: the models (one Studio each, loaded once, shared by all
users) and the training job manager."""

from __future__ import annotations

from pathlib import Path

from rats_app.api import Studio
from rats_app.errors import UserError
from rats_app.jobs import JobManager
from rats_app.model_presets import MODEL_PRESETS, locate
from rats_app.models import resolve_model_path
from rats_app.worlds import worlds


class AppContext:
    def __init__(self, studio: Studio | None = None, jobs: JobManager | None = None):
        self.jobs = jobs or JobManager()
        first = studio or Studio()
        self.default_label = self._label_of(first.model_path)
        self._studios = {self.default_label: first}

    @staticmethod
    def _label_of(path: Path) -> str:
        """A world's shipped model by the world's id; any other directory by its name."""
        for world in worlds().values():
            if resolve_model_path(world.model_dir).resolve() == resolve_model_path(path).resolve():
                return world.id
        return f"local: {Path(path).name}"

    def labels(self) -> list[str]:
        """The opened model, the embedded worlds' models, then the real-model presets."""
        world_labels = [w.id for w in worlds().values() if (w.model_dir / "model_index.json").exists()]
        return list(dict.fromkeys([self.default_label, *world_labels, *MODEL_PRESETS]))

    def check(self, label: str) -> None:
        """UserError saying what is missing when a model's weights are not on this machine."""
        if label in self._studios or label in worlds():
            return
        if label not in MODEL_PRESETS:
            raise UserError(f"unknown model {label!r}")
        locate(MODEL_PRESETS[label])

    def studio(self, label: str) -> Studio:
        if label not in self._studios:
            self.check(label)
            if label in worlds():
                self._studios[label] = Studio(worlds()[label].model_dir)
            else:
                preset = MODEL_PRESETS[label]
                self._studios[label] = Studio(locate(preset), call_overrides=preset.call_kwargs())
        return self._studios[label]

    @property
    def default_studio(self) -> Studio:
        return self._studios[self.default_label]
