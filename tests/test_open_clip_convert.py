"""open_clip -> transformers CLIP conversion (the HPSv2 path) matches an open_clip-layout forward."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rats_app.rewards.open_clip_convert import convert_open_clip
from rats_app.rewards.stand_ins import CTX, IMAGE, LAYERS, PATCH, TW, VOCAB, W
from rats_app.rewards.stand_ins import open_clip_state as tiny_open_clip_state


def _reference_block(x, s, p, heads, causal):
    b, n, w = x.shape
    h = F.layer_norm(x, (w,), s[f"{p}.ln_1.weight"], s[f"{p}.ln_1.bias"], 1e-5)
    qkv = h @ s[f"{p}.attn.in_proj_weight"].T + s[f"{p}.attn.in_proj_bias"]
    q, k, v = (t.reshape(b, n, heads, w // heads).transpose(1, 2) for t in qkv.chunk(3, dim=-1))
    attn = F.scaled_dot_product_attention(q, k, v, is_causal=causal).transpose(1, 2).reshape(b, n, w)
    x = x + attn @ s[f"{p}.attn.out_proj.weight"].T + s[f"{p}.attn.out_proj.bias"]
    h = F.layer_norm(x, (w,), s[f"{p}.ln_2.weight"], s[f"{p}.ln_2.bias"], 1e-5)
    h = F.gelu(h @ s[f"{p}.mlp.c_fc.weight"].T + s[f"{p}.mlp.c_fc.bias"])
    return x + h @ s[f"{p}.mlp.c_proj.weight"].T + s[f"{p}.mlp.c_proj.bias"]


def reference_features(s, pixels, tokens):
    """open_clip's ViT forward, written from its layout (class token first, ln_post, @ proj)."""
    x = F.conv2d(pixels, s["visual.conv1.weight"], stride=PATCH).flatten(2).transpose(1, 2)
    x = torch.cat([s["visual.class_embedding"].expand(x.shape[0], 1, -1), x], dim=1) + s["visual.positional_embedding"]
    x = F.layer_norm(x, (W,), s["visual.ln_pre.weight"], s["visual.ln_pre.bias"], 1e-5)
    for i in range(LAYERS):
        x = _reference_block(x, s, f"visual.transformer.resblocks.{i}", W // 80, causal=False)
    image = F.layer_norm(x[:, 0], (W,), s["visual.ln_post.weight"], s["visual.ln_post.bias"], 1e-5) @ s["visual.proj"]
    t = s["token_embedding.weight"][tokens] + s["positional_embedding"]
    for i in range(LAYERS):
        t = _reference_block(t, s, f"transformer.resblocks.{i}", TW // 64, causal=True)
    t = F.layer_norm(t, (TW,), s["ln_final.weight"], s["ln_final.bias"], 1e-5)
    text = t[torch.arange(t.shape[0]), tokens.argmax(dim=-1)] @ s["text_projection"]  # EOT has the largest id
    return F.normalize(image, dim=-1), F.normalize(text, dim=-1)


def test_converted_model_matches_open_clip_layout_forward():
    state = tiny_open_clip_state()
    model = convert_open_clip({f"module.{k}": v for k, v in state.items()})
    model.config.text_config.eos_token_id = VOCAB - 1
    model.text_model.eos_token_id = VOCAB - 1
    pixels = torch.randn(2, 3, IMAGE, IMAGE)
    tokens = torch.tensor([[1, 5, 7, VOCAB - 1] + [0] * (CTX - 4), [1, 9, VOCAB - 1] + [0] * (CTX - 3)])
    ref_image, ref_text = reference_features(state, pixels, tokens)
    with torch.no_grad():
        image = F.normalize(model.get_image_features(pixel_values=pixels).pooler_output, dim=-1)
        text = F.normalize(model.get_text_features(input_ids=tokens).pooler_output, dim=-1)
    assert torch.allclose(image, ref_image, atol=1e-5)
    assert torch.allclose(text, ref_text, atol=1e-5)
    assert model.config.vision_config.num_attention_heads == 2 and model.config.text_config.num_attention_heads == 2


def test_wrong_architecture_is_named():
    with pytest.raises(ValueError, match="hps.pt is not an open_clip ViT checkpoint: missing visual.conv1.weight"):
        convert_open_clip({"unet.conv_in.weight": torch.zeros(1)}, source="hps.pt")
