"""Gradient norm on the LoRA from each RATS term, on the same batches: sets lambda by measurement.

    python benchmarks/loss_balance.py [--model DIR] [--batches 3] [--batch-size 8]

Prints |grad(mean R_S)| and |grad(gated matching)| at the start of training (the LoRA at its
initialisation, teacher = base), and the lambda that makes lambda * |grad R| equal alpha * |grad match|.
"""

from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

_sys.path.insert(0, str(_Path(__file__).resolve().parent.parent))  # run from anywhere

import argparse
import statistics

import torch


def main() -> None:
    from rats_app.config import TrainConfig
    from rats_app.rats_loss import rats_loss
    from rats_app.run_dir import prepare
    from rats_app.sampler import denoise, refined_sigmas
    from rats_app.trainer import RatsTrainer

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="assets/shapes-flux")
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--teacher-steps", type=int, default=12)
    args = parser.parse_args()
    import tempfile

    cfg = TrainConfig.from_dict({"model": args.model, "batch_size": args.batch_size, "teacher_steps": args.teacher_steps,
                                 "lora_rank": 8})
    with tempfile.TemporaryDirectory() as tmp:
        prepare(f"{tmp}/run", cfg, False)
        trainer = RatsTrainer(cfg, f"{tmp}/run")
        # One tiny step so LoRA B is not exactly zero (at B = 0, A's gradient vanishes).
        trainer.train_step()
        params = list(trainer.params.values())
        reward_norms, match_norms = [], []
        m = cfg.teacher_subdivisions
        for b in range(args.batches):
            prompts, noise = trainer._batch(1000 + b)
            cond = trainer._condition(prompts)
            common = dict(height=trainer.height, width=trainer.width, guidance_scale=trainer.guidance_scale, record=True)
            with trainer.ema.swapped(), torch.no_grad():
                teacher = denoise(trainer.pipe, noise, cond, num_steps=cfg.student_steps * m,
                                  sigmas=refined_sigmas(cfg.student_steps, m), **common)
                r_t = trainer.reward.score(trainer._to_unit(teacher.latents), prompts).float()
            for term in ("reward", "match"):
                student = denoise(trainer.pipe, noise, cond, num_steps=cfg.student_steps, grad=True, **common)
                r_s = trainer.reward.score(trainer._to_unit(student.latents), prompts).float()
                # One term at a time: alpha = 0 leaves -mean(R_S); lambda = 0 leaves the gated matching.
                out = rats_loss(r_s, r_t, [teacher.x0_preds[h * m] for h in cfg.horizon_indices],
                                [student.x0_preds[h] for h in cfg.horizon_indices],
                                alpha=0.0 if term == "reward" else 1.0, reward_weight=1.0 if term == "reward" else 0.0)
                grads = torch.autograd.grad(out.loss, params, allow_unused=True)
                norm = torch.sqrt(sum((g.float() ** 2).sum() for g in grads if g is not None)).item()
                (reward_norms if term == "reward" else match_norms).append(norm)
        r, mm = statistics.median(reward_norms), statistics.median(match_norms)
        print(f"|grad mean R_S| = {r:.4g}, |grad gated matching| = {mm:.4g}; "
              f"lambda for equal pull (alpha = 1): {mm / r:.4g}")


if __name__ == "__main__":
    main()
