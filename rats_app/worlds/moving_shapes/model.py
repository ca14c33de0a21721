"""Build the tiny Wan2.1-architecture pipeline of Moving Shapes from small configs.

A standard ``diffusers.WanPipeline``: ``WanTransformer3DModel``, ``AutoencoderKLWan`` with 4x (or
2x) spatial and 2x temporal compression (9 frames of 32x32 -> 5 latent frames of 8x8, or 16x16),
a small UMT5 encoder and a T5 tokenizer made in code. The image world needed factor 4 for 16-px
objects, i.e. 4 x 4 latent cells per object; a small object here is 8 px, which factor 4 leaves
at 2 x 2 cells (and the VAE rounds its corners), factor 2 at 4 x 4. The transformer's patch
follows the factor so that a token always covers 8 x 8 px: 80 tokens either way. Everything here
is deterministic; pretraining fills in the weights.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanPipeline, WanTransformer3DModel
from transformers import T5Tokenizer, UMT5Config, UMT5EncoderModel

from rats_app.worlds.moving_shapes.prompts import vocabulary
from rats_app.worlds.tokenizers import t5_tokenizer

# Prompts have 11 words; WanPipeline zeroes the pad embeddings, and a short sequence is cheap.
MAX_SEQUENCE_LENGTH = 16
TEMPORAL_FACTOR = 2
TOKEN_PX = 8  # pixels a transformer token covers along each side, whatever the VAE's factor


# spatial factor -> (dim_mult, temperal_downsample) of AutoencoderKLWan
_VAE_LEVELS = {4: ([1, 2, 4], [False, True]), 2: ([1, 2], [True])}


@dataclass(frozen=True)
class WanWorldConfig:
    """Sizes of the tiny Wan pipeline (recorded with the shipped model)."""

    z_dim: int = 16           # per 2 x 2 px x 2 frame patch (at factor 4, z 32 still blurred small shapes)
    vae_base_dim: int = 16
    text_dim: int = 64
    text_layers: int = 2
    layers: int = 6
    heads: int = 4
    head_dim: int = 64        # inner 256 = what one token carries (4 x 4 latent cells x z 16); 128 squeezed it
    ffn_dim: int = 512
    freq_dim: int = 64
    shift: float = 1.0  # 80 tokens: far below what Wan's flow_shift is set for, as in Shapes World
    spatial_factor: int = 2  # VAE compression: 2 (dim_mult 1, 2) keeps 8 px shapes; 4 (1, 2, 4) blobs them

    def __post_init__(self):
        if self.spatial_factor not in _VAE_LEVELS:
            raise ValueError(f"spatial_factor: {self.spatial_factor!r} must be one of {sorted(_VAE_LEVELS)}")
        # The patch embedding maps a token's patch x patch x z_dim latent values to heads x head_dim and the
        # output layer maps them back: a narrower transformer cannot even pass its input through, so it can
        # neither see nor denoise the whole latent (a teacher so built made blobs: 3 % right at step 3500).
        if self.token_values > self.heads * self.head_dim:
            raise ValueError(f"heads x head_dim = {self.heads * self.head_dim} is below the {self.token_values} "
                             f"latent values a token carries (patch {self.patch}^2 x z_dim {self.z_dim})")

    @property
    def patch(self) -> int:
        """The transformer's spatial patch: a token covers TOKEN_PX x TOKEN_PX pixels."""
        return TOKEN_PX // self.spatial_factor

    @property
    def token_values(self) -> int:
        return self.patch * self.patch * self.z_dim

    def to_dict(self) -> dict:
        return asdict(self)


def build_tokenizer() -> T5Tokenizer:
    return t5_tokenizer(vocabulary(), MAX_SEQUENCE_LENGTH)


def build_vae(config: WanWorldConfig = WanWorldConfig()) -> AutoencoderKLWan:
    """One level per 2x of spatial compression; the last downsampling is also temporal (2x)."""
    dim_mult, temporal = _VAE_LEVELS[config.spatial_factor]
    return AutoencoderKLWan(base_dim=config.vae_base_dim, z_dim=config.z_dim, dim_mult=dim_mult, num_res_blocks=1,
                            temperal_downsample=temporal, latents_mean=[0.0] * config.z_dim,
                            latents_std=[1.0] * config.z_dim, scale_factor_spatial=config.spatial_factor,
                            scale_factor_temporal=TEMPORAL_FACTOR)


def build_text_encoder(config: WanWorldConfig, tokenizer: T5Tokenizer) -> UMT5EncoderModel:
    return UMT5EncoderModel(UMT5Config(
        vocab_size=len(tokenizer), d_model=config.text_dim, d_kv=config.text_dim // 4, d_ff=2 * config.text_dim,
        num_layers=config.text_layers, num_heads=4, dropout_rate=0.0, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.pad_token_id))


def build_transformer(config: WanWorldConfig) -> WanTransformer3DModel:
    return WanTransformer3DModel(patch_size=(1, config.patch, config.patch), num_attention_heads=config.heads,
                                 attention_head_dim=config.head_dim, in_channels=config.z_dim,
                                 out_channels=config.z_dim, text_dim=config.text_dim, freq_dim=config.freq_dim,
                                 ffn_dim=config.ffn_dim, num_layers=config.layers, rope_max_seq_len=64)


def build_world_pipeline(config: WanWorldConfig = WanWorldConfig(), seed: int = 0) -> WanPipeline:
    """A randomly initialised tiny WanPipeline (all modules in eval mode)."""
    torch.manual_seed(seed)
    tokenizer = build_tokenizer()
    text_encoder = build_text_encoder(config, tokenizer)
    vae = build_vae(config)
    transformer = build_transformer(config)
    scheduler = FlowMatchEulerDiscreteScheduler(shift=config.shift)
    pipe = WanPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer,
                       scheduler=scheduler)
    for module in (text_encoder, vae, transformer):
        module.eval()  # modules constructed directly start in train mode
    return pipe
