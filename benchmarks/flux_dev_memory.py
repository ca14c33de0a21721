"""One RATS training step on the full-size FLUX.1-dev architecture (random weights): step time and
peak GPU memory with each memory option. Needs a GPU with ~80 GB for the first rows.

    python benchmarks/flux_dev_memory.py --out docs/results/flux-dev-memory.md   # GPU, 1024x1024, batch 1
    python benchmarks/flux_dev_memory.py --tiny                                  # same code, tiny model, CPU

Nothing is downloaded: the FLUX.1-dev transformer (19 double + 38 single blocks, 3072 wide, guidance
embedding), its VAE, CLIP-L and T5-XXL text encoders and an HPSv2-sized reward (CLIP ViT-H/14)
are built from their published shapes with random weights, in bf16. Each option set runs in its
own process, so each peak is that configuration's own high-water mark (torch.cuda.max_memory_allocated
over two steps; the second step's time is reported). The paper reports 7.57 s and 67.67 GB per
RATS step (SenseFlow: 7.31 s / 78.87 GB) on its hardware.
"""

from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

_sys.path.insert(0, str(_Path(__file__).resolve().parent.parent))  # run from anywhere

import argparse
import json
import subprocess
import sys
import tempfile

# Cumulative option sets: each row adds one memory option to the previous row.
ROWS = [
    ("bf16", {"dtype": "bfloat16", "cache_text_embeddings": False}),
    ("+ cached text embeddings (text encoders off the GPU)", {"cache_text_embeddings": True}),
    ("+ gradient checkpointing", {"gradient_checkpointing": True}),
    ("+ VAE tiling", {"vae_tiling": True}),
    ("+ 8-bit Adam (bitsandbytes)", {"optimizer": "adamw8bit"}),
]

CHILD = r"""
import json, sys, time, torch
sys.path.insert(0, sys.argv[3])
from benchmarks.flux_dev_memory import build
from rats_app.config import TrainConfig
from rats_app.run_dir import prepare
from rats_app.trainer import RatsTrainer, peak_memory_mb
args = json.loads(sys.argv[1])
pipe, reward, prompts = build(args["tiny"], args["device"])
cfg = TrainConfig.from_dict({"model": "flux.1-dev (random weights)", "steps": 2, "batch_size": 1, "sample_every": 0,
                             "checkpoint_every": 1000, "teacher_steps": args["teacher_steps"], "lora_rank": 16,
                             "device": args["device"], "lora_targets": args["targets"], **args["options"]})
prepare(sys.argv[2], cfg, False)
trainer = RatsTrainer(cfg, sys.argv[2], pipe=pipe, reward=reward, watch_rewards={}, prompts=prompts)
trainer.height = trainer.width = args["resolution"]
trainer.max_sequence_length = 512 if not args["tiny"] else 16
times = []
for _ in range(2):
    times.append(trainer.train_step().step_time)
print(json.dumps({"step_s": times[-1], "peak_mb": peak_memory_mb(trainer.device)}))
"""


def build(tiny: bool, device: str):
    """(pipe, reward, prompts): FLUX.1-dev's architecture with random weights (tiny: scaled down)."""
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPConfig, CLIPModel, CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    from rats_app.rewards.clip_preference import ClipPreferenceReward
    from rats_app.rewards.base import CLIP_NORMALIZATION, ImageNormalization
    from rats_app.worlds.shapes.model import build_clip_tokenizer, build_t5_tokenizer
    from rats_app.worlds.shapes.prompts import training_prompts

    dtype = torch.bfloat16
    torch.set_default_dtype(dtype)  # build directly in bf16: the full model would not fit twice in fp32
    try:
        clip_tok, t5_tok = build_clip_tokenizer(), build_t5_tokenizer()
        if tiny:
            t_cfg = dict(num_layers=1, num_single_layers=1, attention_head_dim=32, num_attention_heads=2,
                         joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=(8, 12, 12))
            vae_channels, text_dims, vit = (8, 8), (32, 32, 1, 2), dict(hidden_size=32, intermediate_size=64,
                                                                       num_hidden_layers=1, num_attention_heads=2,
                                                                       patch_size=8, image_size=32)
        else:  # the published FLUX.1-dev / CLIP-L / T5-XXL / ViT-H-14 shapes
            t_cfg = dict(num_layers=19, num_single_layers=38, attention_head_dim=128, num_attention_heads=24,
                         joint_attention_dim=4096, pooled_projection_dim=768, axes_dims_rope=(16, 56, 56))
            vae_channels, text_dims, vit = (128, 256, 512, 512), (768, 4096, 24, 64), dict(
                hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=16,
                patch_size=14, image_size=224)
        transformer = FluxTransformer2DModel(patch_size=1, in_channels=64, guidance_embeds=True, **t_cfg)
        vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=16, block_out_channels=vae_channels,
                            down_block_types=("DownEncoderBlock2D",) * len(vae_channels),
                            up_block_types=("UpDecoderBlock2D",) * len(vae_channels), layers_per_block=2,
                            norm_num_groups=min(32, vae_channels[0]), use_quant_conv=False,
                            use_post_quant_conv=False, scaling_factor=0.3611, shift_factor=0.1159)
        clip_dim, t5_dim, t5_layers, t5_heads = text_dims
        clip = CLIPTextModel(CLIPTextConfig(vocab_size=len(clip_tok), hidden_size=clip_dim,
                                            intermediate_size=4 * clip_dim, num_hidden_layers=12 if not tiny else 1,
                                            num_attention_heads=12 if not tiny else 2, max_position_embeddings=77,
                                            bos_token_id=clip_tok.bos_token_id, eos_token_id=clip_tok.eos_token_id,
                                            pad_token_id=clip_tok.pad_token_id))
        t5 = T5EncoderModel(T5Config(vocab_size=len(t5_tok), d_model=t5_dim, d_kv=64 if not tiny else 16,
                                     d_ff=10240 if not tiny else 64, num_layers=t5_layers, num_heads=t5_heads,
                                     dropout_rate=0.0, feed_forward_proj="gated-gelu", pad_token_id=0, eos_token_id=1))
        clip_tok.model_max_length = 77
        t5_tok.model_max_length = 512
        pipe = FluxPipeline(scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True),
                            vae=vae, text_encoder=clip.eval(), tokenizer=clip_tok, text_encoder_2=t5.eval(),
                            tokenizer_2=t5_tok, transformer=transformer.eval())
        for module in (vae, clip, t5, transformer):
            module.requires_grad_(False)
        pipe.to(device)
        reward_model = CLIPModel(CLIPConfig(
            text_config={"vocab_size": len(clip_tok), "hidden_size": vit["hidden_size"] // (2 if not tiny else 1),
                         "intermediate_size": vit["intermediate_size"] // (2 if not tiny else 1),
                         "num_hidden_layers": 24 if not tiny else 1, "num_attention_heads": 16 if not tiny else 2,
                         "max_position_embeddings": 77, "bos_token_id": clip_tok.bos_token_id,
                         "eos_token_id": clip_tok.eos_token_id, "pad_token_id": clip_tok.pad_token_id},
            vision_config=vit, projection_dim=1024 if not tiny else 32)).to(device)
    finally:
        torch.set_default_dtype(torch.float32)
    normalization = CLIP_NORMALIZATION if not tiny else ImageNormalization(32, CLIP_NORMALIZATION.mean,
                                                                           CLIP_NORMALIZATION.std)
    reward = ClipPreferenceReward(reward_model, clip_tok, normalization, name="hpsv2-sized")
    return pipe, reward, training_prompts()[:8]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="scaled-down model on CPU (checks the script)")
    parser.add_argument("--resolution", type=int, default=None, help="default 1024 (tiny: 64)")
    parser.add_argument("--teacher-steps", type=int, default=12)
    parser.add_argument("--out", type=_Path, help="also write the table here (markdown)")
    args = parser.parse_args()
    import torch

    from rats_app.model_presets import FLUX_FULL

    device = "cpu" if args.tiny else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no GPU here: this benchmark needs one (use --tiny to check the script on CPU); the "
                         "docs leave its row empty until it has run on a GPU")
    resolution = args.resolution or (64 if args.tiny else 1024)
    gpu = torch.cuda.get_device_name() if device == "cuda" else "CPU (tiny model)"
    lines = [f"Measured with `python benchmarks/flux_dev_memory.py{' --tiny' if args.tiny else ''}` on {gpu}: "
             f"one RATS step, {resolution}x{resolution}, batch 1, student 3 steps, teacher {args.teacher_steps} steps, "
             "LoRA rank 16 on attention + text stream + feed-forward, random weights.", "",
             "| memory options | step time s | peak memory GB |", "|---|---|---|"]
    options: dict = {}
    for label, extra in ROWS:
        options = {**options, **extra}
        if options.get("optimizer") == "adamw8bit":
            try:
                import bitsandbytes  # noqa: F401
            except ImportError:
                lines.append(f"| {label} | not run: bitsandbytes is not installed | |")
                continue
        child = {"tiny": args.tiny, "device": device, "options": options, "teacher_steps": args.teacher_steps,
                 "resolution": resolution, "targets": [t for t in FLUX_FULL if t != "proj_out"]}
        with tempfile.TemporaryDirectory() as tmp:
            done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(child), f"{tmp}/run",
                                   str(_Path(__file__).resolve().parent.parent)], capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["failed"])[-1]
            lines.append(f"| {label} | failed: {last[:120]} | |")
            continue
        result = json.loads(done.stdout.strip().splitlines()[-1])
        lines.append(f"| {label} | {result['step_s']:.2f} | {result['peak_mb'] / 1024:.2f} |")
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        from rats_app.io import write_text

        write_text(args.out, text)


if __name__ == "__main__":
    main()
