"""Every real reward path, proven offline on tiny models saved the way the real checkpoints are."""

from __future__ import annotations

import pytest
import torch

from rats_app.errors import RewardUnavailable
from rats_app.rewards.registry import available_rewards, load_reward, reward_status
from rats_app.worlds.shapes.model import build_clip_tokenizer

PROMPTS = ["a small red circle at the top left on a white background",
           "a large blue square at the center on a gray background"]


@pytest.fixture()
def real_paths(tmp_path, monkeypatch):
    """Point every reward's environment variable at tiny local weights."""
    from rats_app.rewards.stand_ins import clip_dir as _tiny_clip_dir
    from rats_app.rewards.stand_ins import open_clip_state as tiny_open_clip_state

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    clip_dir = _tiny_clip_dir(tmp_path / "clip")
    pick_dir = _tiny_clip_dir(tmp_path / "pickscore", seed=1)
    tokenizer = build_clip_tokenizer()
    tok_dir = tmp_path / "tokenizer"
    tokenizer.save_pretrained(tok_dir)
    state = tiny_open_clip_state(vocab=len(tokenizer))
    torch.save({"state_dict": state, "epoch": 3}, tmp_path / "HPS_v2_compressed.pt")
    from safetensors.torch import save_file

    save_file(tiny_open_clip_state(seed=1, vocab=len(tokenizer)), tmp_path / "hps21.safetensors")
    monkeypatch.setenv("RATS_CLIP_MODEL", str(clip_dir))
    monkeypatch.setenv("RATS_PICKSCORE_MODEL", str(pick_dir))
    monkeypatch.setenv("RATS_HPSV2_CHECKPOINT", str(tmp_path / "HPS_v2_compressed.pt"))
    monkeypatch.setenv("RATS_HPSV2_1_CHECKPOINT", str(tmp_path / "hps21.safetensors"))
    monkeypatch.setenv("RATS_HPSV2_TOKENIZER", str(tok_dir))
    return tmp_path


@pytest.mark.parametrize("name", ["hpsv2", "hpsv2.1", "pickscore", "clip"])
def test_real_reward_paths_on_tiny_weights(real_paths, name):
    reward = load_reward(name, device="cpu", cache=False)
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    pixels = images.clone().requires_grad_(True)
    scores = reward.score(pixels, PROMPTS)
    assert scores.shape == (2,) and torch.isfinite(scores).all()
    scores.sum().backward()
    if name != "clip" or (scores > 0).any():  # CLIP score clamps negative cosines at 0
        assert pixels.grad.abs().sum() > 0
    fast = reward.score_fast(images, PROMPTS)
    assert torch.allclose(fast, scores.detach(), atol=1e-5)
    assert torch.equal(reward.score_fast(images, PROMPTS), fast)  # deterministic


def test_hps_is_100_times_the_cosine(real_paths):
    reward = load_reward("hpsv2", device="cpu", cache=False)
    images = torch.rand(1, 3, 64, 64)
    cos = (reward.embed_images(images) * reward.embed_text(PROMPTS[:1])).sum(-1)
    assert torch.allclose(reward.score_fast(images, PROMPTS[:1]), 100 * cos, atol=1e-4)


def test_missing_weights_name_the_path(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("RATS_HPSV2_CHECKPOINT", str(tmp_path / "nope" / "HPS_v2_compressed.pt"))
    monkeypatch.setenv("RATS_PICKSCORE_MODEL", "yuvalkirstain/PickScore_v1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("RATS_IMAGEREWARD_CHECKPOINT", raising=False)
    monkeypatch.setattr("rats_app.rewards.imagereward.PACKAGE_CACHE", tmp_path / "no-cache")
    status = reward_status(["hpsv2", "pickscore", "imagereward"], device="cpu")
    assert status["hpsv2"].startswith("unavailable: hpsv2: checkpoint not found: ")
    assert str(tmp_path / "nope") in status["hpsv2"]
    assert "'yuvalkirstain/PickScore_v1' is not in the local Hugging Face cache" in status["pickscore"]
    assert status["imagereward"].startswith("unavailable: imagereward: THUDM/ImageReward/ImageReward.pt is not in "
                                            "the local Hugging Face cache and HF_HUB_OFFLINE=1")


def test_corrupt_and_wrong_architecture_checkpoints(real_paths, monkeypatch):
    bad = real_paths / "corrupt.pt"
    bad.write_bytes(b"\x00garbage")
    monkeypatch.setenv("RATS_HPSV2_CHECKPOINT", str(bad))
    with pytest.raises(RewardUnavailable, match="cannot read checkpoint .*corrupt.pt"):
        load_reward("hpsv2", device="cpu", cache=False)
    wrong = real_paths / "unet.pt"
    torch.save({"state_dict": {"conv_in.weight": torch.zeros(2, 2)}}, wrong)
    monkeypatch.setenv("RATS_HPSV2_CHECKPOINT", str(wrong))
    with pytest.raises(RewardUnavailable, match="unet.pt is not an open_clip ViT checkpoint"):
        load_reward("hpsv2", device="cpu", cache=False)
    monkeypatch.setenv("RATS_PICKSCORE_MODEL", str(real_paths / "tokenizer"))
    with pytest.raises(RewardUnavailable, match="pickscore: no CLIP model at .*tokenizer"):
        load_reward("pickscore", device="cpu", cache=False)


def test_bad_batches_are_named(real_paths):
    reward = load_reward("clip", device="cpu", cache=False)
    with pytest.raises(ValueError, match="2 images but 1 prompts"):
        reward.score(torch.rand(2, 3, 32, 32), PROMPTS[:1])
    with pytest.raises(ValueError, match="RGB"):
        reward.score_fast([__import__("numpy").zeros((8, 8), "uint8")], PROMPTS[:1])


def test_registry_lists_all_rewards():
    """The embedded worlds' own rewards first, then the built-in ones; each says what it scores."""
    from rats_app.rewards.registry import reward_media, rewards_for

    assert available_rewards() == ["shapes", "moving-shapes", "hpsv2", "hpsv2.1", "pickscore", "clip", "imagereward"]
    assert reward_media("moving-shapes") == "video" and reward_media("shapes") == reward_media("hpsv2") == "image"
    assert "moving-shapes" not in rewards_for("image") and set(rewards_for("video")) == set(available_rewards())
    with pytest.raises(RewardUnavailable, match="unknown reward 'hps3'"):
        load_reward("hps3")


def test_pickled_only_or_non_clip_model_dirs_are_refused(real_paths, monkeypatch):
    import json

    pick = real_paths / "pickscore"
    config = json.loads((pick / "config.json").read_text())
    (pick / "config.json").write_text(json.dumps({**config, "model_type": "blip"}))
    monkeypatch.setenv("RATS_PICKSCORE_MODEL", str(pick))
    with pytest.raises(RewardUnavailable, match="holds a 'blip' model, not a CLIP model"):
        load_reward("pickscore", device="cpu", cache=False)
    (pick / "config.json").write_text(json.dumps(config))
    for f in pick.glob("*.safetensors"):
        f.rename(f.with_suffix(".bin"))
    with pytest.raises(RewardUnavailable, match="has no .safetensors weights"):
        load_reward("pickscore", device="cpu", cache=False)


def test_hpsv2_uses_the_hpsv2_package_cache(real_paths, monkeypatch, tmp_path):
    """A checkpoint that hpsv2.score() downloaded earlier is found without any setting."""
    import shutil

    cache = tmp_path / "hps-cache"
    cache.mkdir()
    shutil.copyfile(real_paths / "HPS_v2_compressed.pt", cache / "HPS_v2_compressed.pt")
    monkeypatch.delenv("RATS_HPSV2_CHECKPOINT")
    monkeypatch.setenv("HPS_ROOT", str(cache))
    reward = load_reward("hpsv2", device="cpu", cache=False)
    assert reward.score_fast(torch.rand(1, 3, 32, 32), PROMPTS[:1]).shape == (1,)


def test_an_unreachable_hub_is_asked_once_per_process(monkeypatch):
    """huggingface_hub retries an unreachable hub for ~23 s per file: the second reward that would
    download is told at once, and names the file that found no hub."""
    from huggingface_hub.errors import LocalEntryNotFoundError

    from rats_app.rewards import sources

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(sources, "_unreachable_hub", [])
    asked = []

    def fetch(local_only: bool) -> str:
        asked.append(local_only)
        raise LocalEntryNotFoundError("connection error, and not in the cache")

    with pytest.raises(RewardUnavailable, match="a/one.pt is not in the local cache and the hub could not be reached"):
        sources._from_hub("first", "a/one.pt", "ENV_ONE", "the checkpoint file", fetch)
    assert asked == [True, False]
    with pytest.raises(RewardUnavailable, match=r"b/two.pt .* could not be reached \(tried for a/one.pt in this "
                                                r"process\); set ENV_TWO to the checkpoint file"):
        sources._from_hub("second", "b/two.pt", "ENV_TWO", "the checkpoint file", fetch)
    assert asked == [True, False, True]  # the cache is still looked in; the hub is not asked again
