"""Tests for :mod:`nmt.model.attention` with random tensors and no model around it."""

from __future__ import annotations

import torch

from nmt.model.attention import AdditiveAttention, RecomputedEnergy


def test_attention_is_a_distribution_over_real_tokens() -> None:
    torch.manual_seed(0)
    att = AdditiveAttention(6, 8, 5)
    ann = torch.randn(3, 4, 8)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    keys_in = att.project_keys(ann)
    ctx, w = att(torch.randn(3, 6), keys_in, ann, mask)
    assert torch.allclose(w.sum(-1), torch.ones(3))
    assert (w[~mask] == 0).all() and (w[mask] > 0).all()
    assert torch.allclose(ctx, (w.unsqueeze(-1) * ann).sum(1), atol=1e-6)


def test_keys_are_projected_once_and_padding_gets_no_weight_whatever_it_holds() -> None:
    torch.manual_seed(1)
    att = AdditiveAttention(6, 8, 5)
    ann, query = torch.randn(2, 5, 8), torch.randn(2, 6)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    ctx, w = att(query, att.project_keys(ann), ann, mask)
    noisy = ann.clone()
    noisy[0, 3:] = 1e3  # garbage on padded positions changes nothing
    ctx2, w2 = att(query, att.project_keys(noisy), noisy, mask)
    torch.testing.assert_close(ctx2, ctx)
    torch.testing.assert_close(w2, w)
    assert w.shape == (2, 5) and ctx.shape == (2, 8)


def test_recomputed_energy_equals_the_expression_in_values_and_gradients() -> None:
    """The fp32 training path keeps no (B, S, A) tensor for backward; its values and gradients are those of
    ``v^T tanh(keys + W_a s)`` under autograd (and pass gradcheck in float64)."""
    g = torch.Generator().manual_seed(2)
    keys, wq, v = (torch.randn(*shape, generator=g, dtype=torch.float64, requires_grad=True)
                   for shape in ((3, 4, 5), (3, 5), (1, 5)))
    assert torch.autograd.gradcheck(RecomputedEnergy.apply, (keys, wq, v))
    weight = torch.randn(3, 4, dtype=torch.float64, generator=g)
    got = RecomputedEnergy.apply(keys, wq, v)
    (got * weight).sum().backward()
    grads = [t.grad.clone() for t in (keys, wq, v)]
    for t in (keys, wq, v):
        t.grad = None
    want = (torch.tanh(keys + wq.unsqueeze(1)) @ v.t()).squeeze(-1)
    (want * weight).sum().backward()
    torch.testing.assert_close(got, want)
    for mine, ref in zip(grads, (keys.grad, wq.grad, v.grad), strict=True):
        torch.testing.assert_close(mine, ref)


def test_recomputed_energy_runs_under_bf16_autocast_like_the_expression() -> None:
    """Under bf16 autocast training also keeps no (B, S, A) tensor: the energy runs as RecomputedEnergy in bf16,
    and the weights and every gradient are autocast's plain expression's, up to bf16 rounding."""
    torch.manual_seed(0)
    att = AdditiveAttention(16, 20, 12)
    ann, query = torch.randn(3, 7, 20, requires_grad=True), torch.randn(3, 16, requires_grad=True)
    mask = torch.ones(3, 7, dtype=torch.bool)
    mask[0, 5:] = False
    weight = torch.randn(3, 7)
    results = []
    for recomputed in (True, False):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            keys = att.project_keys(ann)
            if recomputed:
                alpha = att.weights(query, keys, mask)
                assert "RecomputedEnergy" in str(alpha.grad_fn.next_functions[0][0].next_functions)
            else:
                energy = att.v_a(torch.tanh(keys + att.w_a(query).unsqueeze(1))).squeeze(-1)
                alpha = energy.masked_fill(~mask, float("-inf")).softmax(-1)
        grads = torch.autograd.grad((alpha * weight).sum(), [ann, query, *att.parameters()])
        results.append((alpha, grads))
    (alpha, grads), (ref, ref_grads) = results
    torch.testing.assert_close(alpha, ref, atol=1e-2, rtol=0)
    for got, want in zip(grads, ref_grads, strict=True):
        assert got.dtype == torch.float32
        assert (got - want).norm() <= 2e-2 * want.norm()


def test_context_under_bf16_autocast_mixes_the_annotations_in_their_own_dtype() -> None:
    """The context sum_j alpha_j h_j is taken on the fp32 annotations under bf16 autocast (a bf16 product would
    copy them into bf16 at every decoder step and keep each copy for the backward pass)."""
    torch.manual_seed(0)
    att = AdditiveAttention(16, 20, 12)
    ann, query = torch.randn(3, 7, 20), torch.randn(3, 16)
    mask = torch.ones(3, 7, dtype=torch.bool)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        context, alpha = att(query, att.project_keys(ann), ann, mask)
    assert alpha.dtype == torch.bfloat16 and context.dtype == torch.float32
    torch.testing.assert_close(context, (alpha.float().unsqueeze(-1) * ann).sum(1))
