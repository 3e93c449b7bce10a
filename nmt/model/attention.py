"""Additive attention (Bahdanau et al. 2015, section 3.1 and appendix A.1.2).

``e_ij = v_a^T tanh(W_a s_{i-1} + U_a h_j)``, ``alpha_ij = softmax_j(e_ij)`` over the real source
positions, and the context ``c_i = sum_j alpha_ij h_j``. ``U_a h_j`` does not depend on the decoder
step, so it is computed once per sentence (``project_keys``).
Letters: B batch, S source length, K annotation size (2H), Q query size (H), A alignment units.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class AdditiveAttention(nn.Module):
    """:param query_dim: Q. :param key_dim: K. :param attn_dim: A."""

    def __init__(self, query_dim: int, key_dim: int, attn_dim: int) -> None:
        super().__init__()
        self.w_a = nn.Linear(query_dim, attn_dim, bias=False)
        self.u_a = nn.Linear(key_dim, attn_dim)
        self.v_a = nn.Linear(attn_dim, 1, bias=False)

    def project_keys(self, annotations: Tensor) -> Tensor:
        """``U_a h_j`` for every position: (B, S, K) -> (B, S, A)."""
        return self.u_a(annotations)

    def forward(self, query: Tensor, keys: Tensor, annotations: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Attend once.

        :param query: (B, Q) previous decoder state. :param keys: (B, S, A) from ``project_keys``.
        :param annotations: (B, S, K). :param mask: (B, S) true on real source tokens (at least one per row).
        :return: context (B, K) and weights (B, S), which sum to 1 and are 0 on padding.
        """
        weights = self.weights(query, keys, mask)
        # in the annotations' dtype: under bf16 autocast a bf16 product would copy the fp32 annotations into bf16
        # at every step, and keep each copy for the backward pass
        with torch.autocast(annotations.device.type, enabled=False):
            context = torch.bmm(weights.unsqueeze(1).to(annotations.dtype), annotations).squeeze(1)
        return context, weights

    def weights(self, query: Tensor, keys: Tensor, mask: Tensor) -> Tensor:
        """The weights alpha (B, S) of query (B, Q) over keys (B, S, A) with mask (B, S): see :meth:`forward`."""
        if torch.is_grad_enabled():
            wq, v = self.w_a(query), self.v_a.weight
            with torch.autocast(keys.device.type, enabled=False):  # under autocast keys and wq are already bf16
                energy = RecomputedEnergy.apply(keys, wq, v.to(keys.dtype))  # (B, S)
        else:
            energy = self.v_a(torch.tanh(keys + self.w_a(query).unsqueeze(1))).squeeze(-1)
        return energy.masked_fill(~mask, float("-inf")).softmax(-1)


class RecomputedEnergy(torch.autograd.Function):
    """``e = v_a^T tanh(keys + W_a s)`` that keeps nothing of size (B, S, A) for the backward pass, and computes
    the tanh again there. Training otherwise keeps one such tensor per decoder step, the largest activation of an
    update (docs/benchmarks.md has the sizes); the cost is one more add and tanh per step in the backward pass.
    Used in training; under bf16 autocast it runs in bf16, as autocast's own products would."""

    @staticmethod
    def forward(ctx, keys: Tensor, wq: Tensor, v: Tensor) -> Tensor:
        """:param keys: (B, S, A). :param wq: (B, A) ``W_a s``. :param v: (1, A). :return: energies (B, S)."""
        ctx.save_for_backward(keys, wq, v)
        return (torch.tanh(keys + wq.unsqueeze(1)) @ v.t()).squeeze(-1)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        keys, wq, v = ctx.saved_tensors
        t = torch.tanh(keys + wq.unsqueeze(1))  # (B, S, A)
        grad_v = grad.reshape(1, -1) @ t.reshape(-1, t.shape[-1])  # (1, A)
        grad_pre = t.mul_(t).neg_().add_(1).mul_(grad.unsqueeze(-1) * v)  # (1 - tanh^2) * grad * v, in t's memory
        return grad_pre, grad_pre.sum(1), grad_v
