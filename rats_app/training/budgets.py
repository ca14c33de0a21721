"""The step budgets of a run: which student step count K an optimisation step trains, and the sigma
grids the student and its teacher run at that K.

One LoRA serves several budgets (``student_steps_choices``): K is drawn per optimisation step from
the seed and the step alone, so every process of a data-parallel run, and a resumed run, draw the
same K. The teacher subdivides each student step into m = ceil(teacher_steps / K) of its own, on a
grid that contains the student's sigmas, so that both can be compared at the student's horizons.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rats_app.config import TrainConfig
from rats_app.families.base import refine


@dataclass(frozen=True)
class StepBudgets:
    config: TrainConfig

    def teacher_subdivisions(self, student_steps: int) -> int:
        """m: the teacher's steps per student step at K = ``student_steps``."""
        return -(-self.config.teacher_steps // student_steps)

    def steps_at(self, step: int) -> int:
        """K for optimisation step ``step``: fixed, or drawn from student_steps_choices."""
        cfg = self.config
        if not cfg.student_steps_choices:
            return cfg.student_steps
        rng = np.random.default_rng([cfg.seed, step, 7919])
        if not cfg.student_steps_weights:  # uniform: the draw every run before the weights made
            return int(cfg.student_steps_choices[rng.integers(len(cfg.student_steps_choices))])
        shares = cfg.student_steps_distribution
        return int(rng.choice(list(shares), p=list(shares.values())))

    def student_grid(self, k: int, sampling: bool = False) -> np.ndarray | None:
        """The student's sigma grid at K steps, to train on (student_sigmas_by_nfe) or to sample with
        (sample_sigmas_by_nfe over that); None: the model's own."""
        grids = self.config.sampling_sigmas_by_nfe if sampling else self.config.student_sigmas_by_nfe
        grid = grids.get(k)
        return None if grid is None else np.asarray(grid, dtype=np.float64)

    def teacher_grid(self, family, k: int) -> np.ndarray:
        """The teacher's K*m sigmas: the student's grid (its own or the model's) with every step cut in m."""
        m, grid = self.teacher_subdivisions(k), self.student_grid(k)
        return family.refined_sigmas(k, m) if grid is None else refine(grid, m)
