"""Tiny stand-ins for the real reward checkpoints, in their real file layouts and formats.

Nothing can be downloaded here, so the real loading code (HPSv2's open_clip checkpoint, a hub-style
CLIP directory for PickScore / CLIP score) is proven on these: random weights, the same keys and
files. Used by the tests and by ``benchmarks/rewards.py``; a user can run the loaders on them to
check an installation offline.
"""

from __future__ import annotations

from pathlib import Path

import torch

W, TW, E, LAYERS, PATCH, IMAGE, CTX, VOCAB = 160, 128, 32, 2, 8, 32, 12, 50


def _block(prefix: str, width: int, g: torch.Generator) -> dict[str, torch.Tensor]:
    r = lambda *s: torch.randn(*s, generator=g) * 0.05  # noqa: E731
    return {f"{prefix}.ln_1.weight": 1 + r(width), f"{prefix}.ln_1.bias": r(width),
            f"{prefix}.attn.in_proj_weight": r(3 * width, width), f"{prefix}.attn.in_proj_bias": r(3 * width),
            f"{prefix}.attn.out_proj.weight": r(width, width), f"{prefix}.attn.out_proj.bias": r(width),
            f"{prefix}.ln_2.weight": 1 + r(width), f"{prefix}.ln_2.bias": r(width),
            f"{prefix}.mlp.c_fc.weight": r(4 * width, width), f"{prefix}.mlp.c_fc.bias": r(4 * width),
            f"{prefix}.mlp.c_proj.weight": r(width, 4 * width), f"{prefix}.mlp.c_proj.bias": r(width)}


def open_clip_state(seed: int = 0, vocab: int = VOCAB) -> dict[str, torch.Tensor]:
    """Random weights in open_clip's ViT key layout (vision head width 80, text head width 64)."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g) * 0.05  # noqa: E731
    grid = IMAGE // PATCH
    state = {"visual.conv1.weight": r(W, 3, PATCH, PATCH), "visual.class_embedding": r(W),
             "visual.positional_embedding": r(grid * grid + 1, W), "visual.ln_pre.weight": 1 + r(W),
             "visual.ln_pre.bias": r(W), "visual.ln_post.weight": 1 + r(W), "visual.ln_post.bias": r(W),
             "visual.proj": r(W, E), "token_embedding.weight": r(vocab, TW), "positional_embedding": r(CTX, TW),
             "ln_final.weight": 1 + r(TW), "ln_final.bias": r(TW), "text_projection": r(TW, E),
             "logit_scale": torch.tensor(4.6052)}
    for i in range(LAYERS):
        state.update(_block(f"visual.transformer.resblocks.{i}", W, g))
        state.update(_block(f"transformer.resblocks.{i}", TW, g))
    return state



def clip_dir(path: str | Path, seed: int = 0) -> Path:
    """A tiny transformers CLIP saved like a hub repo (safetensors + tokenizer + preprocessor)."""
    from rats_app.worlds.shapes.model import build_clip_tokenizer
    from rats_app.worlds.shapes.train_reward import RewardTrainConfig, build_reward_model

    path = Path(path)
    tokenizer = build_clip_tokenizer()
    model = build_reward_model(RewardTrainConfig(hidden=32, layers=1, seed=seed), tokenizer)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    (path / "preprocessor_config.json").write_text('{"image_mean": [0.48, 0.46, 0.41], "image_std": [0.27, 0.26, 0.28]}')
    return path


def imagereward_files(directory: str | Path, seed: int = 0, words: tuple[str, ...] = ()) -> dict[str, Path]:
    """A tiny ImageReward in the official files' layouts: ``ImageReward.pt`` (a plain state dict with
    the official keys), ``med_config.json``, and a BERT tokenizer directory; random weights."""
    import json

    from transformers import BertTokenizer, BlipTextConfig, BlipVisionConfig

    from rats_app.rewards.imagereward import BUFFERS, ImageRewardModel, build_tokenizer, official_keys, our_key

    directory = Path(directory)
    (directory / "tokenizer").mkdir(parents=True, exist_ok=True)
    base = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(words) | set("abcdefghijklmnopqrstuvwxyz"))]
    (directory / "tokenizer" / "vocab.txt").write_text("\n".join(base) + "\n")
    BertTokenizer(str(directory / "tokenizer" / "vocab.txt")).save_pretrained(directory / "tokenizer")
    vocab = len(build_tokenizer(str(directory / "tokenizer")))
    med = {"architectures": ["BertModel"], "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
           "num_attention_heads": 2, "max_position_embeddings": 40, "layer_norm_eps": 1e-12, "hidden_act": "gelu",
           "vocab_size": vocab, "add_cross_attention": True, "encoder_width": 64}
    (directory / "med_config.json").write_text(json.dumps(med))
    torch.manual_seed(seed)
    vision = BlipVisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=1,
                              image_size=32, patch_size=8, layer_norm_eps=1e-6)
    text = BlipTextConfig(vocab_size=vocab, hidden_size=32, encoder_hidden_size=64, intermediate_size=64,
                          num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=40, is_decoder=True)
    ours = ImageRewardModel(text, vision).state_dict()
    state = {k: ours[our_key(k)].clone() for k in official_keys(2, 2) if k not in BUFFERS}
    state[BUFFERS[0]] = torch.arange(40).expand((1, -1))
    torch.save(state, directory / "ImageReward.pt")
    return {"checkpoint": directory / "ImageReward.pt", "med_config": directory / "med_config.json",
            "tokenizer": directory / "tokenizer"}
