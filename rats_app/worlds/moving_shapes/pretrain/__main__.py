"""python -m rats_app.worlds.moving_shapes.pretrain --work-dir DIR [--stage ...] [--key value ...]"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, fields
from pathlib import Path

import torch

from rats_app.errors import ConfigError
from rats_app.fields import default_of, from_mapping, help_lines
from rats_app.io import write_json
from rats_app.worlds.moving_shapes.pretrain import PretrainConfig

STAGES = ("all", "vae", "decoder", "transformer", "export", "report")


def build_parser() -> argparse.ArgumentParser:
    from rats_app.worlds.moving_shapes import pretrain

    parser = argparse.ArgumentParser(prog="python -m rats_app.worlds.moving_shapes.pretrain",
                                     description=pretrain.__doc__, epilog="config keys:\n" + help_lines(PretrainConfig),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", type=Path, default=Path("runs/moving-shapes-pretrain"))
    parser.add_argument("--stage", choices=STAGES, default="all",
                        help="all = vae, latents, transformer, export; decoder = sharpen the VAE decoder (encoder "
                             "frozen, so it can run beside the transformer); report = the VAE's fidelity")
    parser.add_argument("--out", type=Path, default=Path("assets/shapes-wan"))
    for f in fields(PretrainConfig):
        parser.add_argument("--" + f.name.replace("_", "-"), type=type(default_of(f)), default=None)
    return parser


def resolve_config(work: Path, args: argparse.Namespace) -> PretrainConfig:
    """A work dir resumes with its recorded config; the command line overrides it."""
    saved = work / "config.json"
    base = json.loads(saved.read_text()) if saved.exists() else {}
    overrides = {f.name: getattr(args, f.name) for f in fields(PretrainConfig) if getattr(args, f.name) is not None}
    return from_mapping(PretrainConfig, {**base, **overrides})


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.work_dir.mkdir(parents=True, exist_ok=True)
        cfg = resolve_config(args.work_dir, args)
    except (ConfigError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write_json(args.work_dir / "config.json", asdict(cfg))
    torch.set_num_threads(cfg.threads)
    from rats_app.worlds.moving_shapes.pretrain import stages

    stages.run(args.stage, args.work_dir, args.out, cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
