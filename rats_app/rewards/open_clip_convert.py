"""Convert an open_clip ViT checkpoint (HPSv2's layout) to a transformers ``CLIPModel``.

HPSv2 is an open_clip ViT-H-14 fine-tune. Building it through open_clip needs torchvision (which
the CPU build of torch here cannot import) and downloads the LAION weights first; converting the
state dict into transformers' CLIP needs neither. The architecture sizes are read from the
tensors' shapes, so any open_clip ViT (B/L/H, GELU) converts; a state dict of another layout is
rejected naming the missing keys.
"""

from __future__ import annotations

import re

import torch
from transformers import CLIPConfig, CLIPModel

REQUIRED = ("visual.conv1.weight", "visual.class_embedding", "visual.positional_embedding", "visual.proj",
            "visual.ln_pre.weight", "visual.ln_post.weight", "token_embedding.weight", "positional_embedding",
            "ln_final.weight", "text_projection", "logit_scale")


def _count_layers(state: dict, prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    return 1 + max((int(m.group(1)) for k in state if (m := pattern.match(k))), default=-1)


def config_from_open_clip(state: dict[str, torch.Tensor], vision_head_width: int = 80,
                          text_head_width: int = 64) -> CLIPConfig:
    """Sizes from the shapes; head widths follow open_clip's defaults (ViT-H-14: 80 and 64)."""
    width = state["visual.conv1.weight"].shape[0]
    patch = state["visual.conv1.weight"].shape[-1]
    grid = int(round((state["visual.positional_embedding"].shape[0] - 1) ** 0.5))
    text_width = state["token_embedding.weight"].shape[1]
    return CLIPConfig(
        vision_config=dict(hidden_size=width, intermediate_size=state["visual.transformer.resblocks.0.mlp.c_fc.weight"].shape[0],
                           num_hidden_layers=_count_layers(state, "visual.transformer.resblocks."),
                           num_attention_heads=max(1, width // vision_head_width), image_size=grid * patch,
                           patch_size=patch, hidden_act="gelu", layer_norm_eps=1e-5),
        text_config=dict(hidden_size=text_width, vocab_size=state["token_embedding.weight"].shape[0],
                         intermediate_size=state["transformer.resblocks.0.mlp.c_fc.weight"].shape[0],
                         num_hidden_layers=_count_layers(state, "transformer.resblocks."),
                         num_attention_heads=max(1, text_width // text_head_width),
                         max_position_embeddings=state["positional_embedding"].shape[0], hidden_act="gelu",
                         layer_norm_eps=1e-5, bos_token_id=49406, eos_token_id=49407, pad_token_id=0),
        projection_dim=state["text_projection"].shape[1],
    )


def _convert_block(state: dict, src: str, dst: str, out: dict) -> None:
    q, k, v = state[f"{src}.attn.in_proj_weight"].chunk(3, dim=0)
    qb, kb, vb = state[f"{src}.attn.in_proj_bias"].chunk(3, dim=0)
    out.update({
        f"{dst}.self_attn.q_proj.weight": q, f"{dst}.self_attn.q_proj.bias": qb,
        f"{dst}.self_attn.k_proj.weight": k, f"{dst}.self_attn.k_proj.bias": kb,
        f"{dst}.self_attn.v_proj.weight": v, f"{dst}.self_attn.v_proj.bias": vb,
        f"{dst}.self_attn.out_proj.weight": state[f"{src}.attn.out_proj.weight"],
        f"{dst}.self_attn.out_proj.bias": state[f"{src}.attn.out_proj.bias"],
        f"{dst}.layer_norm1.weight": state[f"{src}.ln_1.weight"], f"{dst}.layer_norm1.bias": state[f"{src}.ln_1.bias"],
        f"{dst}.layer_norm2.weight": state[f"{src}.ln_2.weight"], f"{dst}.layer_norm2.bias": state[f"{src}.ln_2.bias"],
        f"{dst}.mlp.fc1.weight": state[f"{src}.mlp.c_fc.weight"], f"{dst}.mlp.fc1.bias": state[f"{src}.mlp.c_fc.bias"],
        f"{dst}.mlp.fc2.weight": state[f"{src}.mlp.c_proj.weight"], f"{dst}.mlp.fc2.bias": state[f"{src}.mlp.c_proj.bias"],
    })


def strip_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop DataParallel's ``module.`` prefix when every key has it."""
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return state


def convert_open_clip(state: dict[str, torch.Tensor], source: str = "checkpoint") -> CLIPModel:
    """A transformers CLIPModel computing the same features as the open_clip model."""
    state = strip_prefix(state)
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        raise ValueError(f"{source} is not an open_clip ViT checkpoint: missing {', '.join(missing[:4])}"
                         f"{' …' if len(missing) > 4 else ''}")
    config = config_from_open_clip(state)
    out: dict[str, torch.Tensor] = {
        "vision_model.embeddings.class_embedding": state["visual.class_embedding"],
        "vision_model.embeddings.patch_embedding.weight": state["visual.conv1.weight"],
        "vision_model.embeddings.position_embedding.weight": state["visual.positional_embedding"],
        "vision_model.pre_layrnorm.weight": state["visual.ln_pre.weight"],
        "vision_model.pre_layrnorm.bias": state["visual.ln_pre.bias"],
        "vision_model.post_layernorm.weight": state["visual.ln_post.weight"],
        "vision_model.post_layernorm.bias": state["visual.ln_post.bias"],
        "visual_projection.weight": state["visual.proj"].T.contiguous(),
        "text_model.embeddings.token_embedding.weight": state["token_embedding.weight"],
        "text_model.embeddings.position_embedding.weight": state["positional_embedding"],
        "text_model.final_layer_norm.weight": state["ln_final.weight"],
        "text_model.final_layer_norm.bias": state["ln_final.bias"],
        "text_projection.weight": state["text_projection"].T.contiguous(),
        "logit_scale": state["logit_scale"].reshape(()),
    }
    for i in range(config.vision_config.num_hidden_layers):
        _convert_block(state, f"visual.transformer.resblocks.{i}", f"vision_model.encoder.layers.{i}", out)
    for i in range(config.text_config.num_hidden_layers):
        _convert_block(state, f"transformer.resblocks.{i}", f"text_model.encoder.layers.{i}", out)
    model = CLIPModel(config)
    result = model.load_state_dict(out, strict=False)
    unexpected = [k for k in result.missing_keys if not k.endswith("position_ids")]
    if unexpected or result.unexpected_keys:
        raise ValueError(f"{source}: conversion left {len(unexpected)} CLIP weights unset "
                         f"(e.g. {(unexpected or result.unexpected_keys)[0]})")
    return model.eval()
