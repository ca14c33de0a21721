"""Published model architectures built with random weights, for memory and speed benchmarks and
parameter counts: nothing is downloaded. ``tiny=True`` gives the same code paths scaled down.

- ``flux_dev``: FLUX.1-dev (19 double + 38 single blocks, 3072 wide, guidance embedding), its VAE,
  CLIP-L and T5-XXL text encoders, and an HPSv2-sized reward (CLIP ViT-H/14), in bf16.
- ``wan21``: Wan2.1-T2V 1.3B (30 blocks, 1536 wide) or 14B (40 blocks, 5120 wide), the Wan2.1 VAE,
  the UMT5-XXL text encoder, the UniPC flow scheduler (flow_shift 3) and the same reward, scoring
  frames, in bf16.

Build on ``torch.device("meta")`` to count parameters without memory (``parameter_counts``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

WAN_SIZES = {  # the published Wan2.1-T2V transformer shapes
    "1.3b": dict(num_attention_heads=12, attention_head_dim=128, ffn_dim=8960, num_layers=30),
    "14b": dict(num_attention_heads=40, attention_head_dim=128, ffn_dim=13824, num_layers=40),
    "tiny": dict(num_attention_heads=2, attention_head_dim=16, ffn_dim=64, num_layers=1),
}


@dataclass(frozen=True)
class TextSizes:
    hidden: int
    ff: int
    layers: int
    heads: int
    head_dim: int
    vocab: int = 0  # 0: the tokenizer's (the world tokenizers' ids fit any larger table too)


T5_XXL = TextSizes(4096, 10240, 24, 64, 64, vocab=32128)
UMT5_XXL = TextSizes(4096, 10240, 24, 64, 64, vocab=256384)
TINY_TEXT = TextSizes(32, 64, 1, 2, 16)


def _in_bf16(build):
    """Build directly in bf16: the full models would not fit twice in fp32."""
    torch.set_default_dtype(torch.bfloat16)
    try:
        return build()
    finally:
        torch.set_default_dtype(torch.float32)


def _frozen_eval(*modules) -> None:
    for module in modules:
        module.eval().requires_grad_(False)


def hpsv2_sized_reward(tokenizer, tiny: bool, device: str):
    """A CLIP ViT-H/14-shaped preference reward (HPSv2's architecture) with random weights."""
    from transformers import CLIPConfig, CLIPModel

    from rats_app.rewards.base import CLIP_NORMALIZATION, ImageNormalization
    from rats_app.rewards.clip_preference import ClipPreferenceReward

    vision = (dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, patch_size=8,
                   image_size=32) if tiny else
              dict(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=16,
                   patch_size=14, image_size=224))
    text = dict(vocab_size=len(tokenizer), hidden_size=32 if tiny else 1024, intermediate_size=64 if tiny else 4096,
                num_hidden_layers=1 if tiny else 24, num_attention_heads=2 if tiny else 16,
                max_position_embeddings=77, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id)
    model = _in_bf16(lambda: CLIPModel(CLIPConfig(text_config=text, vision_config=vision,
                                                  projection_dim=32 if tiny else 1024))).to(device)
    normalization = ImageNormalization(32, CLIP_NORMALIZATION.mean, CLIP_NORMALIZATION.std) if tiny \
        else CLIP_NORMALIZATION
    return ClipPreferenceReward(model, tokenizer, normalization, name="hpsv2-sized")


def _t5_encoder(sizes: TextSizes, tokenizer, umt5: bool):
    from transformers import T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

    config_cls, model_cls = (UMT5Config, UMT5EncoderModel) if umt5 else (T5Config, T5EncoderModel)
    return model_cls(config_cls(vocab_size=max(sizes.vocab, len(tokenizer)), d_model=sizes.hidden, d_kv=sizes.head_dim, d_ff=sizes.ff,
                                num_layers=sizes.layers, num_heads=sizes.heads, dropout_rate=0.0,
                                feed_forward_proj="gated-gelu", pad_token_id=0, eos_token_id=1))


def _flux_modules(tiny: bool, clip_tok, t5_tok):
    from diffusers import AutoencoderKL, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel

    if tiny:
        t_cfg = dict(num_layers=1, num_single_layers=1, attention_head_dim=32, num_attention_heads=2,
                     joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=(8, 12, 12))
        vae_channels, clip_dim, t5 = (8, 8), 32, TINY_TEXT
    else:  # the published FLUX.1-dev / CLIP-L / T5-XXL shapes
        t_cfg = dict(num_layers=19, num_single_layers=38, attention_head_dim=128, num_attention_heads=24,
                     joint_attention_dim=4096, pooled_projection_dim=768, axes_dims_rope=(16, 56, 56))
        vae_channels, clip_dim, t5 = (128, 256, 512, 512), 768, T5_XXL
    transformer = FluxTransformer2DModel(patch_size=1, in_channels=64, guidance_embeds=True, **t_cfg)
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=16, block_out_channels=vae_channels,
                        down_block_types=("DownEncoderBlock2D",) * len(vae_channels),
                        up_block_types=("UpDecoderBlock2D",) * len(vae_channels), layers_per_block=2,
                        norm_num_groups=min(32, vae_channels[0]), use_quant_conv=False, use_post_quant_conv=False,
                        scaling_factor=0.3611, shift_factor=0.1159)
    clip = CLIPTextModel(CLIPTextConfig(vocab_size=len(clip_tok), hidden_size=clip_dim, intermediate_size=4 * clip_dim,
                                        num_hidden_layers=1 if tiny else 12, num_attention_heads=2 if tiny else 12,
                                        max_position_embeddings=77, bos_token_id=clip_tok.bos_token_id,
                                        eos_token_id=clip_tok.eos_token_id, pad_token_id=clip_tok.pad_token_id))
    return transformer, vae, clip, _t5_encoder(t5, t5_tok, umt5=False)


def flux_dev(tiny: bool, device: str):
    """(pipe, reward, prompts): FLUX.1-dev's architecture with random weights (tiny: scaled down)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline

    from rats_app.worlds.shapes.model import build_clip_tokenizer, build_t5_tokenizer
    from rats_app.worlds.shapes.prompts import training_prompts

    clip_tok, t5_tok = build_clip_tokenizer(), build_t5_tokenizer()
    transformer, vae, clip, t5 = _in_bf16(lambda: _flux_modules(tiny, clip_tok, t5_tok))
    clip_tok.model_max_length, t5_tok.model_max_length = 77, 512
    _frozen_eval(vae, clip, t5, transformer)
    pipe = FluxPipeline(scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True),
                        vae=vae, text_encoder=clip, tokenizer=clip_tok, text_encoder_2=t5, tokenizer_2=t5_tok,
                        transformer=transformer).to(device)
    return pipe, hpsv2_sized_reward(clip_tok, tiny, device), training_prompts()[:8]


def _wan_modules(size: str, t5_tok):
    from diffusers import AutoencoderKLWan, WanTransformer3DModel

    tiny = size == "tiny"
    text = TINY_TEXT if tiny else UMT5_XXL
    transformer = WanTransformer3DModel(patch_size=(1, 2, 2), in_channels=16, out_channels=16, text_dim=text.hidden,
                                        freq_dim=32 if tiny else 256, cross_attn_norm=True,
                                        qk_norm="rms_norm_across_heads", eps=1e-6,
                                        rope_max_seq_len=64 if tiny else 1024, **WAN_SIZES[size])
    # AutoencoderKLWan's defaults are the Wan2.1 VAE (base 96, 8x spatial, 4x temporal).
    vae = AutoencoderKLWan(base_dim=8, dim_mult=[1, 2, 2, 2]) if tiny else AutoencoderKLWan()
    return transformer, vae, _t5_encoder(text, t5_tok, umt5=True)


def wan21(size: str, device: str):
    """(pipe, reward, prompts): Wan2.1-T2V's architecture ("1.3b", "14b" or "tiny") with random weights."""
    from diffusers import UniPCMultistepScheduler, WanPipeline

    from rats_app.worlds.moving_shapes.model import build_tokenizer
    from rats_app.worlds.moving_shapes.prompts import training_prompts
    from rats_app.worlds.shapes.model import build_clip_tokenizer

    if size not in WAN_SIZES:
        raise ValueError(f"Wan2.1 size {size!r}; expected one of {', '.join(WAN_SIZES)}")
    t5_tok = build_tokenizer()
    t5_tok.model_max_length = 512
    transformer, vae, text_encoder = _in_bf16(lambda: _wan_modules(size, t5_tok))
    _frozen_eval(vae, text_encoder, transformer)
    with torch.device("cpu"):  # its tables are made with numpy, also when the models go on the meta device
        scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0)
    pipe = WanPipeline(tokenizer=t5_tok, text_encoder=text_encoder, vae=vae, transformer=transformer,
                       scheduler=scheduler).to(device)
    return pipe, hpsv2_sized_reward(build_clip_tokenizer(), size == "tiny", device), training_prompts()[:8]


def parameter_counts(build) -> dict[str, int]:
    """Parameters per pipeline component, built on the meta device (no memory, nothing loaded)."""
    with torch.device("meta"):
        pipe, reward, _ = build()
    counts = {name: sum(p.numel() for p in module.parameters()) for name, module in pipe.components.items()
              if isinstance(module, torch.nn.Module)}
    counts["reward"] = sum(p.numel() for p in reward.model.parameters())
    return counts
