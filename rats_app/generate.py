"""Generate images: ``python -m rats_app.generate --prompts-file FILE --out-dir DIR --nfe K --seed S``.

Image i (i-th non-empty line) uses ``torch.Generator("cpu").manual_seed(S + i)`` and matches plain
``FluxPipeline.from_pretrained(model)(prompt, num_inference_steps=K, height, width, generator)``
called with the model's ``call_defaults.json``. ``--rats`` loads the shipped RATS LoRA,
``--lora PATH`` any diffusers LoRA. Without either it is the base model: the teacher at high K,
the baseline at low K.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
from pathlib import Path

from rats_app.io import atomic_write
from rats_app.models import DEFAULT_MODEL, SHIPPED_RATS_LORA, UserError, check_nfe, read_model_info, resolve_lora


# FluxPipeline.__call__ arguments that rats_app.sampler.generate reproduces.
SAMPLER_CALL_KEYS = frozenset({"height", "width", "max_sequence_length", "guidance_scale", "true_cfg_scale",
                               "negative_prompt"})


def read_prompts(path: str | os.PathLike) -> list[str]:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"prompts file not found: {p}")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"prompts file is not UTF-8 text: {p}") from None
    prompts = [line.strip() for line in text.splitlines() if line.strip()]
    if not prompts:
        raise UserError(f"prompts file has no prompts (no non-empty line): {p}")
    return prompts


def _check_writable(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise UserError(f"cannot write to output directory {directory}: {exc.strerror or exc}") from None


def save_png(image, path: Path) -> None:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(buffer.getvalue()))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rats_app.generate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--prompts-file", help="text file, one prompt per non-empty line")
    source.add_argument("--prompt", help="a single prompt (with --out)")
    parser.add_argument("--out-dir", help="directory for 0000.png, 0001.png, ... (with --prompts-file)")
    parser.add_argument("--out", help="output PNG path (with --prompt)")
    parser.add_argument("--nfe", type=int, required=True, help="number of sampling steps (1-1000)")
    parser.add_argument("--seed", type=int, default=0, help="image i uses seed S + i (default 0)")
    lora = parser.add_mutually_exclusive_group()
    lora.add_argument("--rats", action="store_true", help=f"load the shipped RATS LoRA ({SHIPPED_RATS_LORA})")
    lora.add_argument("--lora", help="a diffusers LoRA directory or .safetensors file")
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="FluxPipeline directory (default: Shapes World)")
    parser.add_argument("--batch-size", type=int, default=16, help="prompts per forward pass (speed only)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    return parser


def run(args: argparse.Namespace) -> list[Path]:
    """Validate everything first, then generate; returns the written paths."""
    nfe = check_nfe(args.nfe)
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {args.batch_size}")
    info = read_model_info(args.model)
    if args.prompts_file is not None:
        if not args.out_dir:
            raise UserError("--prompts-file needs --out-dir")
        prompts = read_prompts(args.prompts_file)
        out_dir = Path(args.out_dir)
        targets = [out_dir / f"{i:04d}.png" for i in range(len(prompts))]
    else:
        if not args.out:
            raise UserError("--prompt needs --out FILE.png")
        prompts, out_dir, targets = [args.prompt], Path(args.out).parent, [Path(args.out)]
        if Path(args.out).suffix.lower() != ".png":
            raise UserError(f"--out must end in .png, got {args.out}")
    for n, prompt in enumerate(prompts):
        try:
            prompts[n] = info.check_prompt(prompt)
        except UserError as exc:
            raise UserError(f"prompt {n + 1}: {exc}") from None
    lora_path = None
    if args.rats:
        if not (SHIPPED_RATS_LORA / "pytorch_lora_weights.safetensors").exists():
            raise UserError(f"no shipped RATS LoRA at {SHIPPED_RATS_LORA}; train one with "
                            "`python -m rats_app.train --output-dir DIR` and pass --lora DIR")
        lora_path = SHIPPED_RATS_LORA
    elif args.lora:
        lora_path = resolve_lora(args.lora)
    unsupported = sorted(set(info.call_defaults) - SAMPLER_CALL_KEYS)
    if unsupported:
        raise UserError(f"{args.model}/call_defaults.json sets {unsupported}, which this sampler does not "
                        f"support (supported: {sorted(SAMPLER_CALL_KEYS)})")
    _check_writable(out_dir)

    from tqdm import tqdm

    from rats_app.models import load_lora, load_pipeline
    from rats_app.sampler import generate

    pipe, info = load_pipeline(args.model, device=args.device)
    if lora_path is not None:
        load_lora(pipe, lora_path)
    kwargs = {"height": info.height, "width": info.width, **info.call_defaults}
    if lora_path is not None:
        from rats_app.families import student_call

        kwargs = student_call(pipe, kwargs)
    written = []
    with tqdm(total=len(prompts), unit="img", disable=len(prompts) < 2) as bar:
        for start in range(0, len(prompts), args.batch_size):
            batch = prompts[start:start + args.batch_size]
            seeds = [args.seed + start + j for j in range(len(batch))]
            for image, path in zip(generate(pipe, batch, nfe, seeds, **kwargs), targets[start:]):
                save_png(image, path)
                written.append(path)
            bar.update(len(batch))
    return written


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        written = run(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(written)} image(s) to {written[0].parent if len(written) > 1 else written[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
