"""Train a RATS LoRA: ``python -m rats_app.train --output-dir DIR [--config FILE] [key=value ...]``.

With no other argument it trains the Shapes World default (docs/method.md). ``--resume``
continues the run in DIR from its last checkpoint. Runs data-parallel under
``accelerate launch --num_processes N -m rats_app.train ...`` (on GPUs; on a CPU-only machine
add ``--multi_gpu``, accelerate's name for its multi-process launcher).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields

from rats_app.config import ConfigError, TrainConfig, parse_override, read_yaml_mapping
from rats_app.models import UserError


def build_parser() -> argparse.ArgumentParser:
    defaults = TrainConfig()
    help_lines = "\n".join(f"  {f.name} (default {getattr(defaults, f.name)!r}): {f.metadata['help']}"
                           for f in fields(TrainConfig) if "help" in f.metadata)
    parser = argparse.ArgumentParser(prog="python -m rats_app.train", description=__doc__,
                                     epilog="config keys (override as key=value):\n" + help_lines,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", required=True, help="where the run goes (must be new unless --resume)")
    parser.add_argument("--config", help="YAML file of config keys")
    parser.add_argument("--preset", choices=["rats", "distill", "reward"], help="shortcut for preset=...")
    parser.add_argument("--resume", action="store_true", help="continue the run in --output-dir")
    parser.add_argument("overrides", nargs="*", help="key=value config overrides (YAML values)")
    return parser


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    """YAML file, then --preset, then key=value overrides; validated at each layer."""
    data = read_yaml_mapping(args.config) if args.config else {}
    if args.preset:
        data["preset"] = args.preset
    base = TrainConfig.from_dict(data)
    for assignment in args.overrides:
        data.update(parse_override(base, assignment))
    return TrainConfig.from_dict(data)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = resolve_config(args)
        import torch
        from accelerate import Accelerator

        # cpu=True is what makes accelerate form a gloo process group on a machine without CUDA.
        accelerator = Accelerator(cpu=config.device == "cpu" or not torch.cuda.is_available())
        from rats_app.run_dir import prepare

        state = prepare(args.output_dir, config, args.resume) if accelerator.is_main_process else None
        accelerator.wait_for_everyone()
        if not accelerator.is_main_process and args.resume:
            from rats_app.io import load_torch_state
            from rats_app.run_dir import CHECKPOINT

            state = load_torch_state(f"{args.output_dir}/{CHECKPOINT}")
        from rats_app.trainer import RatsTrainer

        trainer = RatsTrainer(config, args.output_dir, accelerator=accelerator)
        if state is not None:
            trainer.load_state(state)
        from tqdm import tqdm

        with tqdm(total=config.steps, initial=trainer.step, unit="step", disable=not accelerator.is_main_process,
                  dynamic_ncols=True) as bar:
            def progress(m):
                bar.set_postfix(R_S=f"{m.reward_student:.2f}", R_T="-" if m.reward_teacher is None else f"{m.reward_teacher:.2f}",
                                gate="-" if m.gate_mean is None else f"{m.gate_mean:.2f}", match=f"{m.matching:.3f}")
                bar.update(1)

            trainer.train(progress=progress)
    except (ConfigError, UserError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the last checkpoint is resumable with --resume", file=sys.stderr)
        return 130
    if accelerator.is_main_process:
        print(f"LoRA written to {args.output_dir}/pytorch_lora_weights.safetensors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
