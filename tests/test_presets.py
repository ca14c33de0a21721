"""FLUX-dev (guidance embedding, dynamic shift) and FLUX-schnell presets on tiny random pipelines:
generation at several NFEs through the same code, two RATS steps, LoRA round trip; and the message
when a preset's weights are missing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline

from rats_app.errors import UserError
from rats_app.families import Size, family_of
from rats_app.model_presets import FLUX_FULL, MODEL_PRESETS, availability, locate
from rats_app.sampler import generate, schedule

PROMPT = "a small red circle at the top left on a white background"


def tiny_flux(tmp_path, kind: str):
    """A tiny FluxPipeline shaped like FLUX.1-dev (guidance embeds, dynamic shift) or -schnell."""
    from rats_app.worlds.shapes.model import WorldModelConfig, build_world_pipeline

    pipe = build_world_pipeline(WorldModelConfig(double_layers=1, single_layers=1))
    if kind == "dev":
        from diffusers import FluxTransformer2DModel

        cfg = dict(pipe.transformer.config)
        cfg["guidance_embeds"] = True
        pipe.transformer = FluxTransformer2DModel.from_config(cfg).eval()
        pipe.scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True, base_shift=0.5,
                                                         max_shift=1.15, base_image_seq_len=256, max_image_seq_len=4096)
    path = tmp_path / f"flux-{kind}"
    pipe.save_pretrained(path)
    return path


@pytest.mark.parametrize("kind", ["dev", "schnell"])
def test_flux_family_generation_training_and_lora(tmp_path, kind, prepare_tiny):
    from rats_app.models import load_pipeline

    path = tiny_flux(tmp_path, kind)
    family = family_of(load_pipeline(path, device="cpu")[0])
    guidance = 3.5 if kind == "dev" else None
    kwargs = {"max_sequence_length": 16, **({"guidance_scale": guidance} if guidance else {})}
    for nfe in (1, 4):
        ours = np.asarray(generate(family, [PROMPT], nfe, [3], Size(64, 64), **kwargs)[0]).astype(int)
        plain = FluxPipeline.from_pretrained(path)
        plain.set_progress_bar_config(disable=True)
        ref = plain(PROMPT, num_inference_steps=nfe, height=64, width=64, generator=torch.Generator().manual_seed(3),
                    **kwargs).images[0]
        assert np.abs(ours - np.asarray(ref).astype(int)).max() <= 3
    if kind == "dev":  # the dynamic shift keeps the teacher grid a refinement of the student's
        student = schedule(family, 3, 64).sigmas
        teacher = schedule(family, 12, 64, family.refined_sigmas(3, 4)).sigmas
        assert torch.allclose(teacher[::4], student, atol=1e-6)
    (path / "call_defaults.json").write_text('{"height": 64, "width": 64, "max_sequence_length": 16}')
    targets = [t for t in FLUX_FULL if t != "proj_out"]  # tiny single blocks share names with the final proj_out
    out = tmp_path / f"run-{kind}"
    run = prepare_tiny(out, model_dir=path, prompts=[PROMPT], steps=2, batch_size=1, checkpoint_every=10,
                       lora_targets=targets, reward="shapes")
    assert run.trainer.guidance_scale == 3.5  # FLUX's default; schnell has no guidance input, so it is unused
    run.train()
    plain = FluxPipeline.from_pretrained(path)
    plain.load_lora_weights(out)  # round trip in plain diffusers
    assert any("add_q_proj" in n and "lora" in n for n, _ in plain.transformer.named_parameters())


def test_missing_preset_weights_say_how_to_supply_them(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("RATS_FLUX_DEV", raising=False)
    with pytest.raises(UserError, match="flux.1-dev: weights not found. Set RATS_FLUX_DEV"):
        locate(MODEL_PRESETS["flux.1-dev"])
    status = availability()
    assert status["flux.1-schnell"].startswith("unavailable: flux.1-schnell: weights not found")
    monkeypatch.setenv("RATS_FLUX_DEV", str(tmp_path))
    tiny = tiny_flux(tmp_path, "dev")
    monkeypatch.setenv("RATS_FLUX_DEV", str(tiny))
    assert locate(MODEL_PRESETS["flux.1-dev"]) == tiny
    # The CLIs take a preset's name or hub id as the app does, and say the same when it is missing.
    from rats_app.generate import main as generate_main
    from rats_app.models import resolve_model_path

    assert resolve_model_path("flux.1-dev") == tiny == resolve_model_path("black-forest-labs/FLUX.1-dev")
    monkeypatch.delenv("RATS_WAN_1_3B", raising=False)
    assert generate_main(["--model", "wan2.1-t2v-1.3b", "--prompt", "a cat", "--out", str(tmp_path / "x.mp4"),
                          "--nfe", "2"]) == 2
    assert "wan2.1-t2v-1.3b: weights not found. Set RATS_WAN_1_3B" in capsys.readouterr().err


def test_full_size_flux_dev_benchmark_code_runs_scaled_down(tmp_path):
    """benchmarks/flux_dev_memory.py's FLUX.1-dev architecture (rats_app.architectures) (guidance embedding, T5 + CLIP,
    HPSv2-sized reward); on a GPU at full size, here scaled down, with every memory option on."""
    from rats_app.architectures import flux_dev
    from rats_app.config import TrainConfig
    from rats_app.models import ModelInfo
    from rats_app.training import Components, prepare_run

    pipe, reward, prompts = flux_dev(tiny=True, device="cpu")
    assert pipe.transformer.config.guidance_embeds and pipe.transformer.dtype == torch.bfloat16
    config = TrainConfig.from_dict({"model": "random", "reward": "hpsv2", "steps": 1, "batch_size": 1,
                                    "sample_every": 0, "teacher_steps": 6, "lora_rank": 4, "device": "cpu",
                                    "dtype": "bfloat16", "gradient_checkpointing": True, "vae_tiling": True,
                                    "lora_targets": [t for t in FLUX_FULL if t != "proj_out"]})
    info = ModelInfo(path="random", pipeline_class="FluxPipeline", height=64, width=64)
    trainer = prepare_run(config, tmp_path / "run", components=Components(pipe, info, reward, {}, prompts)).trainer
    trainer.start_schedule()
    metrics = trainer.train_step()
    assert np.isfinite(metrics.loss) and metrics.grad_norm > 0


def test_full_size_wan_benchmark_code_runs_scaled_down(tmp_path):
    """benchmarks/wan_memory.py's Wan2.1 architecture (UMT5, Wan VAE, UniPC flow scheduler), scaled
    down, through a RATS step with CFG, cached text, checkpointing, a frame subset and VAE tiling."""
    from rats_app.architectures import wan21
    from rats_app.config import TrainConfig
    from rats_app.model_presets import WAN_FULL
    from rats_app.models import ModelInfo
    from rats_app.training import Components, prepare_run

    pipe, reward, prompts = wan21("tiny", "cpu")
    assert type(pipe.scheduler).__name__ == "UniPCMultistepScheduler" and pipe.scheduler.config.flow_shift == 3.0
    config = TrainConfig.from_dict({"model": "random", "reward": "hpsv2", "steps": 1, "batch_size": 1,
                                    "sample_every": 0, "teacher_steps": 6, "lora_rank": 4, "device": "cpu",
                                    "dtype": "bfloat16", "gradient_checkpointing": True, "vae_tiling": True,
                                    "cache_text_embeddings": True, "reward_frames": 2, "lora_targets": WAN_FULL})
    info = ModelInfo(path="random", pipeline_class="WanPipeline", height=32, width=32, frames=5,
                     call_defaults={"max_sequence_length": 16, "guidance_scale": 5.0})
    trainer = prepare_run(config, tmp_path / "run", components=Components(pipe, info, reward, {}, prompts)).trainer
    trainer.start_schedule()
    metrics = trainer.train_step()
    assert np.isfinite(metrics.loss) and metrics.grad_norm > 0


def test_published_architectures_have_their_published_sizes():
    """Built on the meta device: FLUX.1-dev's 11.9B transformer, Wan2.1's 1.42B and 14.3B, UMT5-XXL's 5.7B."""
    from rats_app.architectures import flux_dev, parameter_counts, wan21

    flux = parameter_counts(lambda: flux_dev(False, "meta"))
    small, large = (parameter_counts(lambda s=s: wan21(s, "meta")) for s in ("1.3b", "14b"))
    assert flux["transformer"] == 11_901_408_320 and flux["text_encoder_2"] == 4_762_310_656
    assert small["transformer"] == 1_418_996_800 and large["transformer"] == 14_288_491_584
    assert small["text_encoder"] == 5_680_910_336 and small["vae"] == 126_892_531
