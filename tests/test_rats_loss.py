"""Exact values of the RATS loss pieces on hand-made tensors."""

from __future__ import annotations

import math

import pytest
import torch

from rats_app.rats_loss import horizon_distance, object_weights, rats_loss, reward_gate


def test_l2_and_cosine_distances_exact():
    t = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    s = torch.tensor([[0.0, 1.0], [1.0, 1.0]])
    assert horizon_distance(t, s, "l2").tolist() == [1.0, 0.0]   # ((1)^2 + (-1)^2) / 2
    assert horizon_distance(t, s, "cosine").tolist() == pytest.approx([1.0, 0.0], abs=1e-7)
    with pytest.raises(ValueError, match="shapes differ"):
        horizon_distance(t, s[:1])


def test_gate_values_and_stop_gradient():
    r_t = torch.tensor([1.0, 2.0, 0.0])
    r_s = torch.tensor([1.0, 0.0, 2.0], requires_grad=True)
    soft = reward_gate(r_t, r_s, tau=2.0)
    assert soft.tolist() == pytest.approx([0.5, 1 / (1 + math.exp(-1)), 1 / (1 + math.exp(1))])
    assert not soft.requires_grad
    assert reward_gate(r_t, r_s, mode="hard").tolist() == [0.0, 1.0, 0.0]
    assert reward_gate(r_t, r_s, mode="always").tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="unknown gate"):
        reward_gate(r_t, r_s, mode="sometimes")


def test_rats_loss_exact_value_and_gradients():
    # Two samples, two horizons. Student latents require grad; rewards too (terminal reward).
    r_s = torch.tensor([1.0, 3.0], requires_grad=True)
    r_t = torch.tensor([1.0, 1.0])
    s1 = torch.tensor([[0.0, 0.0], [1.0, 1.0]], requires_grad=True)
    s2 = torch.tensor([[2.0, 0.0], [0.0, 0.0]], requires_grad=True)
    t1 = torch.tensor([[1.0, 1.0], [1.0, 1.0]])
    t2 = torch.tensor([[0.0, 0.0], [0.0, 2.0]])
    out = rats_loss(r_s, r_t, [t1, t2], [s1, s2], weights=[1.0, 0.5], alpha=2.0, reward_weight=0.1, tau=1.0)
    # d: sample 0: h1 = 1, h2 = 2 -> 1 + 0.5 * 2 = 2; sample 1: h1 = 0, h2 = 2 -> 1.
    g = torch.sigmoid(torch.tensor([0.0, -2.0]))
    expected_gated = (g[0] * 2 + g[1] * 1) / 2
    expected = -0.1 * 2.0 + 2.0 * expected_gated
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert out.matching.item() == pytest.approx(1.5)
    assert out.gate.tolist() == pytest.approx(g.tolist())
    out.loss.backward()
    # The reward gradient comes only from the terminal term (the gate is stop-gradient).
    assert r_s.grad.tolist() == pytest.approx([-0.05, -0.05])
    # d(l2)/ds = 2 (s - t) / D, times w * g * alpha / B.
    assert s1.grad[0].tolist() == pytest.approx((2.0 * g[0] / 2 * 2 * (torch.tensor([0.0, 0.0]) - 1) / 2).tolist())


def test_presets_reduce_to_their_parts():
    r_s = torch.tensor([0.5], requires_grad=True)
    s = [torch.ones(1, 4, requires_grad=True)]
    t = [torch.zeros(1, 4)]
    distill = rats_loss(r_s, torch.tensor([2.0]), t, s, alpha=1.0, reward_weight=0.0, gate="always")
    assert distill.loss.item() == pytest.approx(1.0)           # pure matching, ungated
    reward_only = rats_loss(r_s, torch.tensor([2.0]), t, s, alpha=0.0, reward_weight=1.0)
    assert reward_only.loss.item() == pytest.approx(-0.5)      # pure -R_S


def test_object_weighted_distance_exact():
    # Two positions of two channels (channels on dim 1): the first position counts 3x.
    t = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])   # B x C x positions
    s = torch.tensor([[[0.0, 0.0], [0.0, 2.0]]])
    w = torch.tensor([[3.0, 1.0]])
    # per position, channel-mean squared difference: (1 + 1) / 2 = 1 and (0 + 4) / 2 = 2
    assert horizon_distance(t, s, "l2", w, channel_dim=1).tolist() == pytest.approx([(3 * 1 + 1 * 2) / 4])
    assert horizon_distance(t, s, "l2", torch.ones(1, 2)).tolist() == horizon_distance(t, s, "l2").tolist()
    # cosine on sqrt(w)-scaled positions: t -> (sqrt3, sqrt3, 0, 0) over (c0p0, c1p0, c0p1, c1p1), s -> (0, 0, 0, 2)
    assert horizon_distance(t, s, "cosine", w).tolist() == pytest.approx([1.0], abs=1e-7)
    with pytest.raises(ValueError, match="position weights"):
        horizon_distance(t, s, "l2", torch.ones(1, 3))


def test_object_weights_mark_what_differs_from_the_median():
    x0 = torch.zeros(1, 2, 3, 3)          # B x C x H x W, background 0
    x0[0, :, 1, 1] = 1.0                  # one object position
    w = object_weights(x0, 4.0)
    assert w.shape == (1, 9) and w[0, 4] == 5.0 and (w.sum() - 5.0) == 8.0
    packed = x0.flatten(2).transpose(1, 2)  # B x positions x C (FLUX's layout)
    assert torch.equal(object_weights(packed, 4.0, channel_dim=-1), w)
    # in the loss: an error on the object costs 5x an error on the background
    student = x0.clone()
    student[0, :, 1, 1] = 0.0
    on_object = rats_loss(torch.zeros(1), torch.zeros(1), [x0], [student], alpha=1.0, reward_weight=0.0,
                          gate="always", position_weights=w)
    background = x0.clone()
    background[0, :, 0, 0] = 1.0
    off_object = rats_loss(torch.zeros(1), torch.zeros(1), [x0], [background], alpha=1.0, reward_weight=0.0,
                           gate="always", position_weights=w)
    assert on_object.loss.item() == pytest.approx(5 * off_object.loss.item())


def test_the_pixel_term_is_gated_object_weighted_and_exact():
    r_s, r_t = torch.tensor([1.0, 3.0]), torch.tensor([1.0, 1.0])
    s, t = [torch.zeros(2, 2, requires_grad=True)], [torch.zeros(2, 2)]  # no latent matching
    # 2 images of 1 channel x 1 x 2 pixels: teacher background 0 with one object pixel of 1
    teacher_images = torch.tensor([[[[0.0, 1.0]]], [[[0.0, 1.0]]]])
    student_images = torch.tensor([[[[0.5, 0.0]]], [[[0.0, 0.5]]]], requires_grad=True)
    weights = object_weights(teacher_images, 3.0, channel_dim=1, threshold=0.05)
    assert weights.tolist() == [[1.0, 4.0], [1.0, 4.0]]  # torch: the median of two is the lower, the background
    out = rats_loss(r_s, r_t, t, s, alpha=1.0, reward_weight=0.0, pixels=(teacher_images, student_images),
                    pixel_weight=2.0, pixel_object_weight=3.0)
    d = torch.tensor([(1 * 0.25 + 4 * 1.0) / 5, (1 * 0.0 + 4 * 0.25) / 5])
    g = torch.sigmoid(torch.tensor([0.0, -2.0]))
    assert out.pixel_matching.item() == pytest.approx(d.mean().item())
    assert out.loss.item() == pytest.approx((2.0 * (g * d).mean()).item(), rel=1e-6)
    out.loss.backward()
    # d(d_px)/ds = 2 w (s - t) / sum(w), times beta * g / B
    assert student_images.grad[0, 0, 0].tolist() == pytest.approx(
        [2.0 * g[0].item() / 2 * 2 * 1 * 0.5 / 5, 2.0 * g[0].item() / 2 * 2 * 4 * -1.0 / 5])
    assert rats_loss(r_s, r_t, t, s).pixel_matching is None
