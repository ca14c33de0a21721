"""The one sampler: schedules, recorded predictions, gradients through the chain."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rats_app.families import Size, family_of
from rats_app.models import load_pipeline
from rats_app.sampler import denoise, generate, schedule

PROMPT = "a small red circle at the top left on a white background"


SIZE = Size(64, 64)


@pytest.fixture(scope="module")
def family(tiny_world_model_dir):
    return family_of(load_pipeline(tiny_world_model_dir, device="cpu")[0])


def test_refined_grid_contains_the_student_grid(family):
    student = schedule(family, 3, 64).sigmas
    teacher = schedule(family, 12, 64, family.refined_sigmas(3, 4)).sigmas
    assert len(teacher) == 13 and len(student) == 4
    assert torch.allclose(teacher[::4], student, atol=1e-6)


def test_recorded_predictions_are_x0_hat(family):
    cond = family.encode([PROMPT], 16)
    noise = family.initial_noise([torch.Generator().manual_seed(0)], SIZE, torch.float32)
    rollout = denoise(family, noise, cond, SIZE, num_steps=3, record=True)
    assert len(rollout.x0_preds) == len(rollout.states) == 3
    assert torch.equal(rollout.states[0], noise)
    # One Euler step from sigma_i to 0 lands on x0_hat: x_t - sigma_i * v.
    last = denoise(family, rollout.states[2], cond, SIZE, num_steps=1, sigmas=np.array([rollout.sigmas[2].item()]),
                   solver="euler")
    assert torch.allclose(last.latents, rollout.x0_preds[2], atol=1e-5)
    assert torch.allclose(last.latents, rollout.latents, atol=1e-5)


def test_gradients_flow_through_a_checkpointed_chain(family):
    pipe = family.pipe
    cond = family.encode([PROMPT, PROMPT], 16)
    noise = family.initial_noise([torch.Generator().manual_seed(i) for i in range(2)], SIZE, torch.float32)
    weight = pipe.transformer.proj_out.weight
    weight.requires_grad_(True)
    try:
        grads = []
        for use_checkpoint in (False, True):
            weight.grad = None
            rollout = denoise(family, noise, cond, SIZE, num_steps=2, grad=True, checkpoint=use_checkpoint)
            family.decode(rollout.latents, SIZE).mean().backward()
            grads.append(weight.grad.clone())
        assert grads[0].abs().sum() > 0
        assert torch.allclose(grads[0], grads[1], atol=1e-6)
    finally:
        weight.requires_grad_(False)
        weight.grad = None


def test_flux_true_cfg_is_pixel_identical_to_plain_diffusers(family, tiny_world_model_dir):
    """call_defaults may ask for FluxPipeline's true CFG (negative prompt, true_cfg_scale > 1)."""
    from diffusers import FluxPipeline

    plain = FluxPipeline.from_pretrained(tiny_world_model_dir)
    plain.set_progress_bar_config(disable=True)
    kwargs = dict(max_sequence_length=16, true_cfg_scale=3.0, negative_prompt="")
    ours = generate(family, [PROMPT, PROMPT], 4, [5, 6], SIZE, **kwargs)
    without = generate(family, [PROMPT], 4, [5], SIZE, max_sequence_length=16)[0]
    for seed, image in zip((5, 6), ours):
        ref = plain(PROMPT, num_inference_steps=4, height=64, width=64, generator=torch.Generator().manual_seed(seed),
                    **kwargs).images[0]
        assert np.abs(np.asarray(image).astype(int) - np.asarray(ref).astype(int)).max() <= 3
    assert np.abs(np.asarray(ours[0]).astype(int) - np.asarray(without).astype(int)).max() > 3


def test_a_custom_grid_is_pixel_identical_to_plain_diffusers(family, tiny_world_model_dir):
    """``sigmas``: FluxPipeline's own keyword (a budget's grid in a RATS LoRA's call_by_nfe); its
    length must be the step count."""
    from diffusers import FluxPipeline

    plain = FluxPipeline.from_pretrained(tiny_world_model_dir)
    plain.set_progress_bar_config(disable=True)
    ours = generate(family, [PROMPT], 2, [5], SIZE, max_sequence_length=16, sigmas=[1.0, 0.7])[0]
    default = generate(family, [PROMPT], 2, [5], SIZE, max_sequence_length=16)[0]
    ref = plain(PROMPT, num_inference_steps=2, sigmas=[1.0, 0.7], height=64, width=64, max_sequence_length=16,
                generator=torch.Generator().manual_seed(5)).images[0]
    assert np.abs(np.asarray(ours).astype(int) - np.asarray(ref).astype(int)).max() <= 3
    assert np.abs(np.asarray(ours).astype(int) - np.asarray(default).astype(int)).max() > 3
    with pytest.raises(ValueError, match="a grid of 3 sigmas for 2 steps"):
        generate(family, [PROMPT], 2, [5], SIZE, sigmas=[1.0, 0.7, 0.3])
