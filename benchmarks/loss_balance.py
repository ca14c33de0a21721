"""Gradient norm on the LoRA from each RATS term, on the same rollouts: sets lambda by measurement.

    python benchmarks/loss_balance.py [--model DIR] [--batches 3] [--batch-size 8] [--teacher-steps 24] [--student-steps K]

Runs the trainer's own rollout (RatsTrainer.rollout: the same teacher and student chains, true CFG
and solver as training) on fresh batches after one training step (at LoRA B = 0 the A gradients
vanish), and prints |grad(mean R_S)| and |grad(gated matching)| on the LoRA, and the lambda that
makes lambda * |grad R| equal alpha * |grad match| at the start of training; likewise the pixel term's
|grad| and the beta (match_pixels) that equals its pull to alpha's.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile

import torch


def gradient_norm(loss: torch.Tensor, params: list[torch.nn.Parameter]) -> float:
    grads = torch.autograd.grad(loss, params, allow_unused=True, retain_graph=True)
    return torch.sqrt(sum((g.float() ** 2).sum() for g in grads if g is not None)).item()


def main() -> None:
    from rats_app.config import DEFAULT_MODEL, TrainConfig
    from rats_app.rats_loss import rats_loss
    from rats_app.training import prepare_run

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--teacher-steps", type=int, default=TrainConfig().teacher_steps)
    parser.add_argument("--student-steps", type=int, default=TrainConfig().student_steps, help="K of the rollouts")
    args = parser.parse_args()
    cfg = TrainConfig.from_dict({"model": args.model, "batch_size": args.batch_size,
                                 "teacher_steps": args.teacher_steps})
    with tempfile.TemporaryDirectory() as tmp:
        trainer = prepare_run(cfg, f"{tmp}/run").trainer
        trainer.start_schedule()
        trainer.train_step()
        params = list(trainer.params.values())
        reward_norms, match_norms, pixel_norms = [], [], []
        for b in range(args.batches):
            out = trainer.rollout(*trainer.batch(1000 + b), student_steps=args.student_steps)
            # One term at a time: alpha = 0 leaves -mean(R_S); lambda = 0 leaves the gated matching.
            reward_only = rats_loss(out.reward_student, out.reward_teacher, [], [], alpha=0.0, reward_weight=1.0)
            matching_only = rats_loss(out.reward_student, out.reward_teacher, out.teacher_horizons,
                                      out.student_horizons, alpha=1.0, reward_weight=0.0, tau=cfg.tau, gate=cfg.gate)
            pixels_only = rats_loss(out.reward_student, out.reward_teacher, [], [], alpha=0.0, reward_weight=0.0,
                                    tau=cfg.tau, gate=cfg.gate, pixels=(out.teacher_images, out.student_images),
                                    pixel_weight=1.0, pixel_object_weight=cfg.match_pixels_object_weight)
            reward_norms.append(gradient_norm(reward_only.loss, params))
            match_norms.append(gradient_norm(matching_only.loss, params))
            pixel_norms.append(gradient_norm(pixels_only.loss, params))
    r, m, px = (statistics.median(norms) for norms in (reward_norms, match_norms, pixel_norms))
    k = args.student_steps
    print(f"K {k}, teacher steps {k * trainer.budgets.teacher_subdivisions(k)}, "
          f"true CFG {trainer.true_cfg_scale}, batches {args.batches} x {args.batch_size}")
    print(f"|grad mean R_S| = {r:.4g}, |grad gated matching| = {m:.4g}; lambda for equal pull (alpha = 1): "
          f"{m / r:.4g}; the default lambda {cfg.reward_weight} makes the reward pull "
          f"{cfg.reward_weight * r / m:.2f}x as hard as the teacher")
    print(f"|grad gated pixel term| = {px:.4g} (object weight {cfg.match_pixels_object_weight}); match_pixels for "
          f"the pull of the default alpha {cfg.alpha}: {cfg.alpha * m / px:.4g}")


if __name__ == "__main__":
    main()
