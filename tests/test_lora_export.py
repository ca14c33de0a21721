"""kohya / ComfyUI export: keys map one-to-one and back, alpha carried, the result reloads."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from rats_app.lora_export import PREFIX, diffusers_to_kohya, kohya_to_diffusers, main, read_lora


@pytest.fixture(scope="module")
def lora_dir(tmp_path_factory, train_tiny):
    out = tmp_path_factory.mktemp("export") / "run"
    train_tiny(out, steps=1, lora_alpha=4.0)
    return out


def test_keys_map_one_to_one_and_back(lora_dir, tiny_world_model_dir, tmp_path):
    state, alpha = read_lora(lora_dir)
    assert alpha == 4.0
    out = tmp_path / "comfy.safetensors"
    assert main(["--lora", str(lora_dir), "--out", str(out)]) == 0
    kohya = load_file(out)
    weights = {k: v for k, v in kohya.items() if not k.endswith(".alpha")}
    assert len(weights) == len(state)  # one kohya tensor per diffusers tensor
    assert all(k.startswith(PREFIX) and k.endswith((".lora_down.weight", ".lora_up.weight")) for k in weights)
    assert {k for k in kohya if k.endswith(".alpha")} == {k.rsplit(".", 2)[0] + ".alpha" for k in weights}
    assert all(v.item() == 4.0 for k, v in kohya.items() if k.endswith(".alpha"))
    from diffusers import FluxTransformer2DModel

    modules = [n for n, _ in FluxTransformer2DModel.from_pretrained(tiny_world_model_dir, subfolder="transformer").named_modules()]
    back = kohya_to_diffusers(kohya, modules)
    assert back.keys() == state.keys()
    assert all(torch.equal(back[k], state[k]) for k in state)


def test_diffusers_rejects_foreign_keys():
    from rats_app.models import UserError

    with pytest.raises(UserError, match="not a diffusers transformer LoRA key: unet.x"):
        diffusers_to_kohya({"unet.x": torch.zeros(1)}, 1.0)


def test_export_cli_errors(tmp_path, capsys):
    assert main(["--lora", str(tmp_path / "missing"), "--out", str(tmp_path / "o.safetensors")]) == 2
    assert "LoRA not found" in capsys.readouterr().err
