"""Published model architectures built with random weights, for memory and speed benchmarks and
parameter counts: nothing is downloaded. ``tiny=True`` gives the same code paths scaled down.

- ``flux_dev``: FLUX.1-dev (19 double + 38 single blocks, 3072 wide, guidance embedding), its VAE,
  CLIP-L and T5-XXL text encoders, and an HPSv2-sized reward (CLIP ViT-H/14), in bf16.
"""

from __future__ import annotations


def flux_dev(tiny: bool, device: str):
    """(pipe, reward, prompts): FLUX.1-dev's architecture with random weights (tiny: scaled down)."""
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPConfig, CLIPModel, CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    from rats_app.rewards.base import CLIP_NORMALIZATION, ImageNormalization
    from rats_app.rewards.clip_preference import ClipPreferenceReward
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
