"""Exact values of the RATS loss pieces on hand-made tensors."""

from __future__ import annotations

import math

import pytest
import torch

from rats_app.rats_loss import horizon_distance, rats_loss, reward_gate


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
