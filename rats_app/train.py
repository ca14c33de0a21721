"""Train a RATS LoRA: ``python -m rats_app.train --output-dir DIR [--config FILE] [key=value ...]``.

With no other argument it trains the default world's default (docs/method.md). ``--resume``
continues the run in DIR from its last checkpoint. Runs data-parallel under
``accelerate launch --num_processes N -m rats_app.train ...`` (on GPUs; on a CPU-only machine
add ``--multi_gpu``, accelerate's name for its multi-process launcher).
"""

from __future__ import annotations

import argparse
import sys

from rats_app.config import METHOD_PRESETS, TrainConfig, parse_override, read_yaml_mapping, with_world_defaults
from rats_app.errors import run_cli
from rats_app.fields import help_lines
from rats_app.training.callbacks import TrainerCallback


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rats_app.train", description=__doc__,
                                     epilog="config keys (override as key=value):\n" + help_lines(TrainConfig),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", required=True, help="where the run goes (must be new unless --resume)")
    parser.add_argument("--config", help="YAML file of config keys")
    parser.add_argument("--preset", choices=list(METHOD_PRESETS), help="shortcut for preset=...")
    parser.add_argument("--resume", action="store_true", help="continue the run in --output-dir")
    parser.add_argument("overrides", nargs="*", help="key=value config overrides (YAML values)")
    return parser


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    """YAML file, then --preset, then key=value overrides; validated at each layer. With --resume the
    run's own config comes first: only what is given explicitly changes it."""
    data = {}
    if args.resume:
        from rats_app.training.run_dir import saved_config

        data = saved_config(args.output_dir)
    data.update(read_yaml_mapping(args.config) if args.config else {})
    if args.preset:
        data["preset"] = args.preset
    base = TrainConfig.from_dict(data)
    for assignment in args.overrides:
        data.update(parse_override(base, assignment))
    return TrainConfig.from_dict(with_world_defaults(data))


class StopOnSignal(TrainerCallback):
    """SIGTERM or Ctrl-C: finish the current step, then checkpoint and save the LoRA (a second
    Ctrl-C interrupts at once)."""

    def __init__(self):
        import signal

        self.requested = False
        for number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(number, self._handle)

    def _handle(self, number, frame):
        import signal

        self.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)
        print("\nstopping after this step: the run is saved and resumable with --resume", file=sys.stderr)

    def should_stop(self) -> bool:
        return self.requested


class ProgressBar(TrainerCallback):
    """tqdm with the run's rewards, gate and matching loss."""

    def on_train_begin(self, run, step):
        from tqdm import tqdm

        self.bar = tqdm(total=run.config.steps, initial=step, unit="step", dynamic_ncols=True)

    def on_step_end(self, run, m):
        self.bar.set_postfix(R_S=f"{m.reward_student:.2f}",
                             R_T="-" if m.reward_teacher is None else f"{m.reward_teacher:.2f}",
                             gate="-" if m.gate_mean is None else f"{m.gate_mean:.2f}", match=f"{m.matching:.3f}")
        self.bar.update(1)

    def on_train_end(self, run, step, stopped):
        self.bar.close()


def train(args: argparse.Namespace) -> str:
    config = resolve_config(args)
    import torch
    from accelerate import Accelerator

    from rats_app.training import run_training

    # cpu=True is what makes accelerate form a gloo process group on a machine without CUDA.
    accelerator = Accelerator(cpu=config.device == "cpu" or not torch.cuda.is_available())
    try:
        run_training(config, args.output_dir, args.resume, [ProgressBar(), StopOnSignal()], accelerator=accelerator)
    finally:
        # Tear the process group down before interpreter exit: a gloo group left to the exit handlers
        # can abort a rank ("terminate called without an active exception") after the run has finished.
        accelerator.end_training()
    return f"LoRA written to {args.output_dir}/pytorch_lora_weights.safetensors" if accelerator.is_main_process else ""


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run_cli(lambda: train(args))
    except KeyboardInterrupt:
        print("interrupted: the last checkpoint is resumable with --resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
