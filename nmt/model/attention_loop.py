"""The RNNsearch decoder's teacher-forced loop (attention, then a GRU step, at every target position) as one
autograd node with a hand-written backward: :func:`attention_gru_loop`.

Autograd, walking the loop step by step, computes every weight's gradient at every step from that step's rows
alone (about a hundred sentences), and adds them up step by step. The backward here walks the steps only for
what is truly sequential (the gradients of the state and of the context), keeps each step's gate and attention
gradients, and computes the weight gradients after the loop in one product over all steps, the way cuDNN's
recurrent layers do. Each step multiplies its state once, by ``[W_a; W_hh]`` (the attention's query and the
GRU's recurrent terms), and in the backward by the same stacked matrix. The last GRU step, whose new state no
output uses, is skipped.

It computes what ``AttentionDecoder``'s step loop computes with ``torch.nn.GRUCell`` (torch's gate form, reset
after the recurrent product) and ``AdditiveAttention``; tests/model/test_attention_loop.py checks the values and
every gradient against that loop. Letters: B batch, T target length, S source length, E embedding, H hidden,
K annotation size, A alignment units.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = ["attention_gru_loop"]


def attention_gru_loop(e: Tensor, keys: Tensor, annotations: Tensor, mask: Tensor, s0: Tensor, w_a: Tensor,
                       v_a: Tensor, w_ih: Tensor, b_ih: Tensor, w_hh: Tensor, b_hh: Tensor
                       ) -> tuple[Tensor, Tensor, Tensor]:
    """Run the decoder over T teacher-forced inputs.

    :param e: (B, T, E) previous-word embeddings. :param keys: (B, S, A) ``U_a h_j``.
    :param annotations: (B, S, K). :param mask: (B, S) true on real source tokens. :param s0: (B, H).
    :param w_a: (A, H) the query projection. :param v_a: (1, A). :param w_ih: (3H, E + K) and ``b_ih`` (3H,),
        ``w_hh`` (3H, H) and ``b_hh`` (3H,): ``torch.nn.GRUCell``'s parameters.
    :return: the queries s_0 … s_{T−1} (B, T, H), the contexts c_1 … c_T (B, T, K) and the attention weights
        (B, T, S).
    """
    return _AttentionGRULoop.apply(e, keys, annotations, mask, s0, w_a, v_a, w_ih, b_ih, w_hh, b_hh)


def _gru_forward(xw: Tensor, hw: Tensor, s: Tensor) -> tuple[Tensor, tuple[Tensor, ...]]:
    """torch's GRU step from the input terms xw (B, 3H), the recurrent terms hw (B, 3H) and the state s (B, H):
    the new state and (r, u, n, U_n s + b_n)."""
    x_r, x_u, x_n = xw.chunk(3, dim=1)
    h_r, h_u, h_n = hw.chunk(3, dim=1)
    r = torch.sigmoid(x_r + h_r)
    u = torch.sigmoid(x_u + h_u)  # torch's keep gate: s' = (1 − u) n + u s
    n = torch.tanh(torch.addcmul(x_n, r, h_n))
    return torch.lerp(n, s, u), (r, u, n, h_n)


def _gru_backward(ds: Tensor, s: Tensor, saved: tuple[Tensor, ...]) -> tuple[Tensor, Tensor, Tensor]:
    """From dL/ds' (B, H): dL/ds through the gate equations alone (B, H), and the gradients of the input terms
    and of the recurrent terms (B, 3H) (they differ in the candidate block, which r multiplies)."""
    r, u, n, h_n = saved
    d_n = torch.ops.aten.tanh_backward(ds * (1 - u), n)
    d_r = torch.ops.aten.sigmoid_backward(d_n * h_n, r)
    d_u = torch.ops.aten.sigmoid_backward(ds * (s - n), u)
    return ds * u, torch.cat([d_r, d_u, d_n], dim=1), torch.cat([d_r, d_u, d_n * r], dim=1)


def _attend(query: Tensor, keys: Tensor, annotations: Tensor, masked: Tensor, v: Tensor
            ) -> tuple[Tensor, Tensor, Tensor]:
    """The context (B, K), the weights (B, S) and ``tanh(keys + W_a s)`` (B, S, A) for ``W_a s`` (B, A)."""
    hidden = (keys + query.unsqueeze(1)).tanh_()
    alpha = torch.matmul(hidden, v.unsqueeze(-1)).squeeze(-1).masked_fill_(masked, float("-inf")).softmax(-1)
    return torch.bmm(alpha.unsqueeze(1), annotations).squeeze(1), alpha, hidden


def _attend_backward(d_ctx: Tensor, d_alpha: Tensor, alpha: Tensor, hidden: Tensor, annotations: Tensor,
                     v: Tensor) -> tuple[Tensor, Tensor]:
    """From dL/dc (B, K) and dL/dalpha (B, S): dL/d(tanh's input) (B, S, A) and dL/d(energy) (B, S)."""
    d_alpha = torch.baddbmm(d_alpha.unsqueeze(2), annotations, d_ctx.unsqueeze(2)).squeeze(2)
    d_energy = alpha * (d_alpha - (alpha * d_alpha).sum(-1, keepdim=True))
    return torch.ops.aten.tanh_backward(d_energy.unsqueeze(-1) * v, hidden), d_energy


class _AttentionGRULoop(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, e: Tensor, keys: Tensor, annotations: Tensor, mask: Tensor, s0: Tensor, w_a: Tensor,
                v_a: Tensor, w_ih: Tensor, b_ih: Tensor, w_hh: Tensor, b_hh: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        steps, emb = e.shape[1], e.shape[2]
        x_e = F.linear(e[:, :-1], w_ih[:, :emb], b_ih)  # (B, T−1, 3H): the embedding terms of every step at once
        w_c, masked, v, attn = w_ih[:, emb:], ~mask, v_a.squeeze(0), w_a.shape[0]
        w_s, b_s = torch.cat([w_a, w_hh]), torch.cat([b_hh.new_zeros(attn), b_hh])  # both products of s in one
        s, states, contexts, weights, hiddens, gates = s0, [], [], [], [], []
        for t in range(steps):
            last = t == steps - 1  # the last step's new state is never used
            proj = F.linear(s, w_a) if last else torch.addmm(b_s, s, w_s.t())  # (B, A) or (B, A + 3H)
            query, h_w = proj[:, :attn], proj[:, attn:]
            c, alpha, hidden = _attend(query, keys, annotations, masked, v)
            states.append(s)
            contexts.append(c)
            weights.append(alpha)
            hiddens.append(hidden)
            if not last:
                s, saved = _gru_forward(torch.addmm(x_e[:, t], c, w_c.t()), h_w, s)
                gates.append(saved)
        out = torch.stack(states, 1), torch.stack(contexts, 1), torch.stack(weights, 1)
        ctx.save_for_backward(e, keys, annotations, s0, w_a, v_a, w_ih, w_hh, *out)
        ctx.hiddens, ctx.gates = hiddens, gates
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, d_states: Tensor | None, d_contexts: Tensor | None, d_weights: Tensor | None
                 ) -> tuple[Tensor | None, ...]:
        saved = ctx.saved_tensors
        e, keys, annotations, s0, w_a, v_a, w_ih, w_hh, states, contexts, weights = saved
        steps, emb, v = e.shape[1], e.shape[2], v_a.squeeze(0)
        d_states = torch.zeros_like(states) if d_states is None else d_states
        d_contexts = torch.zeros_like(contexts) if d_contexts is None else d_contexts
        d_weights = torch.zeros_like(weights) if d_weights is None else d_weights
        g_x = e.new_zeros(e.shape[0], steps, w_ih.shape[0])  # input-term gradients; the last step has none
        g_h = torch.zeros_like(g_x)  # recurrent-term gradients
        d_query = e.new_empty(e.shape[0], steps, w_a.shape[0])  # dL/d(W_a s) of every step
        d_ctx_all, d_keys, d_v = torch.empty_like(contexts), torch.zeros_like(keys), torch.zeros_like(v)
        w_s, ds = torch.cat([w_a, w_hh]), torch.zeros_like(s0)
        for t in range(steps - 1, -1, -1):
            d_ctx, last = d_contexts[:, t], t == steps - 1
            if not last:  # ds holds dL/ds_{t+1}, through step t's GRU
                ds, gx, gh = _gru_backward(ds, states[:, t], ctx.gates[t])
                d_ctx = torch.addmm(d_ctx, gx, w_ih[:, emb:])
                g_x[:, t], g_h[:, t] = gx, gh
            d_pre, d_energy = _attend_backward(d_ctx, d_weights[:, t], weights[:, t], ctx.hiddens[t], annotations, v)
            d_keys += d_pre
            d_v += torch.mm(d_energy.reshape(1, -1), ctx.hiddens[t].reshape(-1, v.shape[0])).squeeze(0)
            dq = d_pre.sum(1)
            d_query[:, t] = dq
            ds = torch.addmm(ds + d_states[:, t], *((dq, w_a) if last else (torch.cat([dq, gh], 1), w_s)))
            d_ctx_all[:, t] = d_ctx
        return _input_grads(ctx.needs_input_grad, saved, g_x, g_h, d_query, d_ctx_all, d_keys, d_v, ds)


def _input_grads(need: tuple[bool, ...], saved: tuple[Tensor, ...], g_x: Tensor, g_h: Tensor, d_query: Tensor,
                 d_ctx_all: Tensor, d_keys: Tensor, d_v: Tensor, ds0: Tensor) -> tuple[Tensor | None, ...]:
    """The gradients of every input of the loop, the weights' in one product over all B·T rows."""
    e, _, _, _, _, _, w_ih, _, states, contexts, weights = saved
    flat = lambda x: x.reshape(-1, x.shape[-1])  # noqa: E731  (B, T, X) -> (B·T, X)
    d_e = torch.matmul(g_x, w_ih[:, : e.shape[2]]) if need[0] else None
    d_ann = torch.bmm(weights.transpose(1, 2), d_ctx_all) if need[2] else None
    d_w_a = torch.mm(flat(d_query).t(), flat(states)) if need[5] else None
    d_w_ih = torch.mm(flat(g_x).t(), flat(torch.cat([e, contexts], dim=-1))) if need[7] else None
    d_w_hh = torch.mm(flat(g_h).t(), flat(states)) if need[9] else None
    return (d_e, d_keys if need[1] else None, d_ann, None, ds0 if need[4] else None, d_w_a,
            d_v.unsqueeze(0) if need[6] else None, d_w_ih, flat(g_x).sum(0) if need[8] else None, d_w_hh,
            flat(g_h).sum(0) if need[10] else None)
