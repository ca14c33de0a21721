"""Build the tiny FLUX-architecture pipeline of Shapes World from small configs.

Everything here is deterministic code (no tokenizer training), so rebuilding gives the same
tokenizers and, with the same seed, the same initial weights. The result is a standard
``diffusers.FluxPipeline``; pretraining (``rats_app.worlds.shapes.pretrain``) fills in its weights.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer, T5Config, T5EncoderModel, T5Tokenizer

from rats_app.worlds.shapes.prompts import vocabulary
from rats_app.worlds.tokenizers import clip_tokenizer, t5_tokenizer

# Prompts have at most 13 words. A short max_sequence_length keeps T5 pad tokens (FluxPipeline
# passes no attention mask) from drowning the prompt, and makes every step much cheaper.
MAX_SEQUENCE_LENGTH = 16
CALL_DEFAULTS = {"max_sequence_length": MAX_SEQUENCE_LENGTH, "guidance_scale": 1.0}


@dataclass(frozen=True)
class WorldModelConfig:
    """Sizes of the tiny FLUX pipeline (recorded with the shipped model)."""

    latent_channels: int = 16
    vae_channels: tuple[int, ...] = (16, 32, 64)  # three levels: downsampling factor 4
    # Few, wide groups: with 2 channels per group, GroupNorm erases the colour of flat regions.
    vae_norm_groups: int = 2
    text_dim: int = 64
    text_layers: int = 2
    double_layers: int = 2
    single_layers: int = 4
    heads: int = 4
    head_dim: int = 32
    rope_axes: tuple[int, int, int] = (8, 12, 12)

    def __post_init__(self) -> None:
        if sum(self.rope_axes) != self.head_dim:
            raise ValueError(f"rope_axes {self.rope_axes} must sum to head_dim {self.head_dim}")

    def to_dict(self) -> dict:
        return asdict(self)


def build_clip_tokenizer(words: list[str] | None = None) -> CLIPTokenizer:
    """The world's CLIP tokenizer: every world word is one token (rats_app.worlds.tokenizers)."""
    return clip_tokenizer(vocabulary() if words is None else words, MAX_SEQUENCE_LENGTH)


def build_t5_tokenizer(words: list[str] | None = None) -> T5Tokenizer:
    """The world's T5 tokenizer: one piece per world word, letters for unknown text."""
    return t5_tokenizer(vocabulary() if words is None else words, MAX_SEQUENCE_LENGTH)


def build_world_pipeline(config: WorldModelConfig = WorldModelConfig(), seed: int = 0) -> FluxPipeline:
    """A randomly initialised tiny FluxPipeline (all modules in eval mode)."""
    torch.manual_seed(seed)
    clip_tok, t5_tok = build_clip_tokenizer(), build_t5_tokenizer()
    clip = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(clip_tok), hidden_size=config.text_dim, intermediate_size=2 * config.text_dim,
        num_hidden_layers=config.text_layers, num_attention_heads=4, projection_dim=config.text_dim,
        max_position_embeddings=MAX_SEQUENCE_LENGTH,
        bos_token_id=clip_tok.bos_token_id, eos_token_id=clip_tok.eos_token_id,
        pad_token_id=clip_tok.pad_token_id,
    ))
    t5 = T5EncoderModel(T5Config(
        vocab_size=len(t5_tok), d_model=config.text_dim, d_kv=config.text_dim // 4,
        d_ff=2 * config.text_dim, num_layers=config.text_layers, num_heads=4,
        dropout_rate=0.0, pad_token_id=t5_tok.pad_token_id, eos_token_id=t5_tok.eos_token_id,
        decoder_start_token_id=t5_tok.pad_token_id,
    ))
    n_levels = len(config.vae_channels)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=config.latent_channels,
        down_block_types=("DownEncoderBlock2D",) * n_levels,
        up_block_types=("UpDecoderBlock2D",) * n_levels,
        block_out_channels=config.vae_channels, layers_per_block=1,
        norm_num_groups=config.vae_norm_groups,
        sample_size=64, mid_block_add_attention=False,
        scaling_factor=1.0, shift_factor=0.0,  # set from data statistics after VAE training
    )
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=4 * config.latent_channels,
        num_layers=config.double_layers, num_single_layers=config.single_layers,
        attention_head_dim=config.head_dim, num_attention_heads=config.heads,
        joint_attention_dim=config.text_dim, pooled_projection_dim=config.text_dim,
        guidance_embeds=False, axes_dims_rope=config.rope_axes,
    )
    # FLUX's dynamic shift is calibrated for >= 256 image tokens; ours has 64, so a fixed shift.
    scheduler = FlowMatchEulerDiscreteScheduler(shift=1.0, use_dynamic_shifting=False)
    pipe = FluxPipeline(scheduler=scheduler, vae=vae, text_encoder=clip, tokenizer=clip_tok,
                        text_encoder_2=t5, tokenizer_2=t5_tok, transformer=transformer)
    for module in (clip, t5, vae, transformer):
        module.eval()  # modules constructed directly start in train mode
    return pipe
