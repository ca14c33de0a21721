"""Stable Diffusion 3 / 3.5 on a tiny random StableDiffusion3Pipeline, through the same sampler and
trainer the presets use: generation pixel-identical to plain diffusers (with and without CFG), a
teacher grid that contains the student's, two RATS steps (teacher with CFG, student without) and
a LoRA round trip in plain diffusers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rats_app.families import Size, family_of
from rats_app.sampler import generate, schedule

PROMPT = "a small red circle at the top left on a white background"


def tiny_sd3(tmp_path):
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        SD3Transformer2DModel,
        StableDiffusion3Pipeline,
    )
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection, T5Config, T5EncoderModel

    from rats_app.worlds.shapes.model import build_clip_tokenizer, build_t5_tokenizer

    torch.manual_seed(0)
    clip_tok, t5_tok = build_clip_tokenizer(), build_t5_tokenizer()

    def clip():
        return CLIPTextModelWithProjection(CLIPTextConfig(
            vocab_size=len(clip_tok), hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
            projection_dim=32, max_position_embeddings=16, bos_token_id=clip_tok.bos_token_id,
            eos_token_id=clip_tok.eos_token_id, pad_token_id=clip_tok.pad_token_id)).eval()

    t5 = T5EncoderModel(T5Config(vocab_size=len(t5_tok), d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
                                 dropout_rate=0.0, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)).eval()
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8),
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        layers_per_block=1, norm_num_groups=2, sample_size=32, use_quant_conv=False,
                        use_post_quant_conv=False, shift_factor=0.06, scaling_factor=1.5).eval()
    transformer = SD3Transformer2DModel(sample_size=16, patch_size=2, in_channels=4, out_channels=4, num_layers=2,
                                        attention_head_dim=8, num_attention_heads=4, joint_attention_dim=32,
                                        caption_projection_dim=32, pooled_projection_dim=64).eval()
    pipe = StableDiffusion3Pipeline(transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
                                    vae=vae, text_encoder=clip(), tokenizer=clip_tok, text_encoder_2=clip(),
                                    tokenizer_2=clip_tok, text_encoder_3=t5, tokenizer_3=t5_tok)
    path = tmp_path / "sd3"
    pipe.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def sd3_path(tmp_path_factory):
    return tiny_sd3(tmp_path_factory.mktemp("sd3"))


def plain_sd3(path):
    from diffusers import StableDiffusion3Pipeline

    pipe = StableDiffusion3Pipeline.from_pretrained(path)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.mark.parametrize("guidance", [7.0, 1.0])  # CFG (teacher, baseline) and one pass (RATS student)
def test_sd3_generation_is_pixel_identical_to_plain_diffusers(sd3_path, guidance):
    from rats_app.models import load_pipeline

    family = family_of(load_pipeline(sd3_path, device="cpu")[0])
    assert family.name == "sd3"
    plain = plain_sd3(sd3_path)
    for nfe in (1, 4):
        ours = generate(family, [PROMPT, PROMPT], nfe, [3, 4], Size(32, 32), guidance_scale=guidance,
                        max_sequence_length=16)
        for seed, image in zip((3, 4), ours):
            ref = plain(PROMPT, num_inference_steps=nfe, height=32, width=32, guidance_scale=guidance,
                        max_sequence_length=16, generator=torch.Generator().manual_seed(seed)).images[0]
            assert np.abs(np.asarray(image).astype(int) - np.asarray(ref).astype(int)).max() <= 3


def test_sd3_teacher_grid_contains_the_student_grid(sd3_path):
    from rats_app.models import load_pipeline

    family = family_of(load_pipeline(sd3_path, device="cpu")[0])
    student = schedule(family, 3, 64).sigmas
    teacher = schedule(family, 12, 64, family.refined_sigmas(3, 4)).sigmas
    assert len(teacher) == 13
    assert torch.allclose(teacher[::4], student, atol=1e-6)
    assert torch.all(teacher[1:] < teacher[:-1])  # strictly decreasing, ends at 0
    # The default grid is SD3's own (linspace(sigma_max, sigma_min) then shift 3), not FLUX's.
    assert student[-2].item() < 0.01


def test_sd3_rats_training_steps_and_lora_round_trip(sd3_path, tmp_path, prepare_tiny):
    from rats_app.model_presets import SD3_FULL

    out = tmp_path / "run"
    run = prepare_tiny(out, model_dir=sd3_path, prompts=[PROMPT], checkpoint_every=10, lora_targets=SD3_FULL,
                       reward="shapes")
    trainer = run.trainer
    assert trainer.size == Size(32, 32)  # the pipeline's own default canvas (no world.json)
    assert trainer.guidance_scale == 7.0 and trainer.student_guidance["guidance_scale"] == 1.0
    calls = []
    hook = trainer.pipe.transformer.register_forward_hook(lambda m, args, kwargs_out: calls.append(1))
    trainer.start_schedule()
    trainer.train_step()
    hook.remove()
    # Teacher: 6 steps, each one CFG pass on a doubled batch; student: 3 single passes.
    assert len(calls) == 6 + 3
    run.train()
    assert "guidance_scale=1.0" in (out / "README.md").read_text()
    plain = plain_sd3(sd3_path)
    before = plain(PROMPT, num_inference_steps=3, height=32, width=32, guidance_scale=1.0, max_sequence_length=16,
                   generator=torch.Generator().manual_seed(0)).images[0]
    plain.load_lora_weights(out)
    names = [n for n, _ in plain.transformer.named_parameters() if "lora" in n]
    assert any("add_q_proj" in n for n in names) and any("ff_context" in n for n in names)
    after = plain(PROMPT, num_inference_steps=3, height=32, width=32, guidance_scale=1.0, max_sequence_length=16,
                  generator=torch.Generator().manual_seed(0)).images[0]
    assert np.abs(np.asarray(before).astype(int) - np.asarray(after).astype(int)).max() > 0
