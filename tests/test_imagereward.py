"""ImageReward rebuilt on transformers' BLIP modules: the real loader on a tiny checkpoint in the
official layout and file format, and the full-size architecture on the meta device."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rats_app.errors import RewardUnavailable
from rats_app.rewards.registry import load_reward

PROMPTS = ["a red circle", "a blue square on white"]


@pytest.fixture()
def official_files(tmp_path, monkeypatch):
    from rats_app.rewards.stand_ins import imagereward_files

    files = imagereward_files(tmp_path / "ir", words=("a", "red", "circle", "blue", "square", "on", "white"))
    monkeypatch.setenv("RATS_IMAGEREWARD_CHECKPOINT", str(files["checkpoint"]))
    monkeypatch.setenv("RATS_IMAGEREWARD_MED_CONFIG", str(files["med_config"]))
    monkeypatch.setenv("RATS_IMAGEREWARD_TOKENIZER", str(files["tokenizer"]))
    return files


def test_loads_through_the_registry_and_scores_deterministically(official_files):
    reward = load_reward("imagereward", device="cpu", cache=False)
    images = torch.rand(2, 3, 64, 48, generator=torch.Generator().manual_seed(0))
    first, again = reward.score_fast(images, PROMPTS), reward.score_fast(images, PROMPTS)
    assert first.shape == (2,) and torch.isfinite(first).all() and torch.equal(first, again)
    assert first[0] != first[1]
    tokens = reward.tokenizer(PROMPTS[:1], padding="max_length", max_length=35)
    assert len(tokens.input_ids[0]) == 35 and tokens.input_ids[0][0] == reward.tokenizer.cls_token_id
    assert reward.tokenizer.convert_tokens_to_ids(["[DEC]", "[ENC]"]) == [len(reward.tokenizer) - 2,
                                                                         len(reward.tokenizer) - 1]


def test_gradients_reach_the_pixels_and_both_paths_agree(official_files):
    from PIL import Image

    reward = load_reward("imagereward", device="cpu", cache=False)
    pixels = torch.rand(2, 3, 40, 40, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    scores = reward.score(pixels, PROMPTS)
    scores.sum().backward()
    assert pixels.grad is not None and pixels.grad.abs().sum() > 0
    assert torch.allclose(scores.detach(), reward.score_fast(pixels.detach(), PROMPTS), atol=1e-6)
    as_uint8 = (pixels.detach().permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    from_pil = reward.score_fast([Image.fromarray(a) for a in as_uint8], PROMPTS)
    assert torch.allclose(from_pil, reward.score_fast(torch.from_numpy(as_uint8).permute(0, 3, 1, 2) / 255.0,
                                                      PROMPTS), atol=1e-6)


def test_score_is_the_head_of_the_cls_feature_normalised_as_imagereward_does(official_files):
    from rats_app.rewards.imagereward import MEAN, STD

    reward = load_reward("imagereward", device="cpu", cache=False)
    model = reward.model
    pixels = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    tokens = reward.tokenizer(PROMPTS[:1], padding="max_length", truncation=True, max_length=35, return_tensors="pt")
    with torch.no_grad():
        image = model.vision(pixel_values=(pixels - torch.tensor(reward.normalization.mean).view(1, 3, 1, 1))
                             / torch.tensor(reward.normalization.std).view(1, 3, 1, 1)).last_hidden_state
        text = model.text(input_ids=tokens.input_ids, attention_mask=tokens.attention_mask,
                          encoder_hidden_states=image, is_decoder=False).last_hidden_state
        expected = (model.head(text[:, 0]) - MEAN) / STD
    assert torch.allclose(reward.score_fast(pixels, PROMPTS[:1]), expected.reshape(1), atol=1e-5)


@pytest.mark.parametrize("damage, message", [
    ("drop", "lacks blip.visual_encoder.blocks.1.attn.qkv.weight"),
    ("extra", "has a key ImageReward does not: blip.itm_head.weight"),
    ("truncate", "is not a readable torch checkpoint"),
    ("pickle", "is not a readable torch checkpoint"),
])
def test_a_damaged_checkpoint_is_refused_naming_why(official_files, damage, message):
    path = official_files["checkpoint"]
    state = torch.load(path, weights_only=True)
    if damage == "drop":
        del state["blip.visual_encoder.blocks.1.attn.qkv.weight"]
        torch.save(state, path)
    elif damage == "extra":
        state["blip.itm_head.weight"] = torch.zeros(2, 32)
        torch.save(state, path)
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[:4000])
    else:  # an arbitrary pickled object is never unpickled
        import pickle

        path.write_bytes(pickle.dumps({"weights": object()}))
    with pytest.raises(RewardUnavailable, match=message):
        load_reward("imagereward", device="cpu", cache=False)


def test_missing_weights_say_where_they_are_looked_for(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("RATS_IMAGEREWARD_CHECKPOINT", raising=False)
    monkeypatch.setattr("rats_app.rewards.imagereward.PACKAGE_CACHE", tmp_path / "none")
    with pytest.raises(RewardUnavailable, match="THUDM/ImageReward/ImageReward.pt is not in the local Hugging Face "
                                                "cache and HF_HUB_OFFLINE=1.*RATS_IMAGEREWARD_CHECKPOINT"):
        load_reward("imagereward", device="cpu", cache=False)


def test_full_size_architecture_has_the_official_parameter_count_and_key_list():
    from transformers import BlipTextConfig, BlipVisionConfig

    from rats_app.rewards.imagereward import BUFFERS, VIT_LARGE, ImageRewardModel, official_keys, our_key

    with torch.device("meta"):
        model = ImageRewardModel(
            BlipTextConfig(vocab_size=30524, hidden_size=768, encoder_hidden_size=1024, intermediate_size=3072,
                           num_hidden_layers=12, num_attention_heads=12, max_position_embeddings=512, is_decoder=True),
            BlipVisionConfig(**VIT_LARGE, hidden_act="gelu", layer_norm_eps=1e-6))
    # ViT-L/16 (303.3 M) + BERT-base with cross-attention (139.5 M) + projections and MLP head.
    assert sum(p.numel() for p in model.parameters()) == 446_665_953
    keys = official_keys()
    assert len(keys) == 625 and len(set(keys)) == 625
    mapped = [our_key(k) for k in keys if k not in BUFFERS]
    assert len(set(mapped)) == len(mapped) == 624 and set(mapped) == set(model.state_dict())
