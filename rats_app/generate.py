"""Generate images or clips: ``python -m rats_app.generate --prompts-file FILE --out-dir DIR --nfe K --seed S``.

Output i (i-th non-empty line) uses ``torch.Generator("cpu").manual_seed(S + i)`` and matches the
plain pipeline (``FluxPipeline``, ``StableDiffusion3Pipeline``, ``WanPipeline``) called with
``num_inference_steps=K``, the model's canvas and its ``call_defaults.json``. An image model writes
``NNNN.png``; a video model writes ``NNNN.mp4`` (H.264, for people) and ``NNNN.png``, its frames
side by side (lossless, for checks). ``--rats`` loads the RATS LoRA shipped with the model's world,
``--lora PATH`` any diffusers LoRA (run with the solver its rats.json records). Without either it
is the base model: the teacher at high K, the baseline at low K.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rats_app.errors import UserError, run_cli
from rats_app.io import check_writable, filmstrip, read_prompts, save_png, save_video
from rats_app.models import DEFAULT_MODEL, check_nfe, check_seed, read_model_info, resolve_lora


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rats_app.generate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--prompts-file", help="text file, one prompt per non-empty line")
    source.add_argument("--prompt", help="a single prompt (with --out)")
    parser.add_argument("--out-dir", help="directory for 0000.png (or 0000.mp4 + 0000.png), ... (with --prompts-file)")
    parser.add_argument("--out", help="output path (with --prompt): FILE.png for an image model, FILE.mp4 for a "
                                      "video model (its filmstrip goes beside it as FILE.png)")
    parser.add_argument("--nfe", type=int, required=True, help="number of sampling steps (1-1000)")
    parser.add_argument("--seed", type=int, default=0, help="image i uses seed S + i (default 0)")
    lora = parser.add_mutually_exclusive_group()
    lora.add_argument("--rats", action="store_true", help="load the RATS LoRA shipped with --model's world")
    lora.add_argument("--lora", help="a diffusers LoRA directory or .safetensors file")
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="pipeline directory (default: Shapes World)")
    parser.add_argument("--batch-size", type=int, default=16, help="prompts per forward pass (speed only)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    return parser


def run(args: argparse.Namespace) -> list[Path]:
    """Validate everything first, then generate; returns the written paths."""
    nfe = check_nfe(args.nfe)
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {args.batch_size}")
    info = read_model_info(args.model)
    video = info.family.media == "video"
    ending = ".mp4" if video else ".png"
    if args.prompts_file is not None:
        if not args.out_dir:
            raise UserError("--prompts-file needs --out-dir")
        prompts = read_prompts(args.prompts_file)
        out_dir = Path(args.out_dir)
        targets = [out_dir / f"{i:04d}{ending}" for i in range(len(prompts))]
    else:
        if not args.out:
            raise UserError(f"--prompt needs --out FILE{ending}")
        prompts, out_dir, targets = [args.prompt], Path(args.out).parent, [Path(args.out)]
        if Path(args.out).suffix.lower() != ending:
            raise UserError(f"--out must end in {ending} for this {'video' if video else 'image'} model, "
                            f"got {args.out}")
    for n, prompt in enumerate(prompts):
        try:
            prompts[n] = info.check_prompt(prompt)
        except UserError as exc:
            raise UserError(f"prompt {n + 1}: {exc}") from None
    check_seed(args.seed, len(prompts), "--seed")
    lora_path = None
    if args.rats:
        lora_path = info.shipped_lora()
        if lora_path is None:
            raise UserError(f"no shipped RATS LoRA for {info.path}; train one with "
                            "`python -m rats_app.train --output-dir DIR` and pass --lora DIR")
    elif args.lora:
        lora_path = resolve_lora(args.lora)
    _check_call_defaults(info, args.model)
    check_writable(out_dir)

    from tqdm import tqdm

    from rats_app.api import Studio

    studio = Studio(info.path, device=args.device, reward_names=[])
    if lora_path is not None:
        studio.check_lora(lora_path)
    written = []
    with tqdm(total=len(prompts), unit="img", disable=len(prompts) < 2) as bar:
        for start in range(0, len(prompts), args.batch_size):
            batch = prompts[start:start + args.batch_size]
            seeds = [args.seed + start + j for j in range(len(batch))]
            outputs, _ = studio.generate_batch(batch, seeds, nfe, lora_path)
            for output, path in zip(outputs, targets[start:]):
                written += save_output(output, path, info)
            bar.update(len(batch))
    return written


def save_output(output, path: Path, info) -> list[Path]:
    """An image as its PNG; a clip as its mp4 and its lossless filmstrip PNG beside it."""
    if info.family.media != "video":
        save_png(output, path)
        return [path]
    from PIL import Image

    save_video(output, path, info.fps)
    save_png(Image.fromarray(filmstrip(output)), path.with_suffix(".png"))
    return [path, path.with_suffix(".png")]


def _check_call_defaults(info, model: str) -> None:
    keys = info.family.call_keys
    unsupported = sorted(set(info.call_defaults) - keys)
    if unsupported:
        raise UserError(f"{model}/call_defaults.json sets {unsupported}, which this sampler does not "
                        f"support (supported: {sorted(keys)})")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def work() -> str:
        written = run(args)
        return f"wrote {len(written)} file(s) to {written[0].parent if len(written) > 1 else written[0]}"
    return run_cli(work)


if __name__ == "__main__":
    sys.exit(main())
