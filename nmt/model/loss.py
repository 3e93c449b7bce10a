"""The output layer and the cross-entropy in one pass over row chunks (:func:`output_cross_entropy`), so that training
never holds the (N, V) logits whole. Autograd keeps three such tensors at once (the logits, their log-softmax for
the backward pass, and its gradient), the largest tensors of an update (docs/benchmarks.md). Here each chunk's
logits give the loss and, from the same softmax, the gradients of the features, the weights and the bias at once;
the backward pass only scales them. The result and the gradients equal ``F.cross_entropy(F.linear(f, W, b), y,
reduction="sum", label_smoothing=eps)`` up to float rounding. Under bf16 autocast the products run in bf16, as
autocast's own ``F.linear`` would, and the softmax and the loss in fp32, as its ``F.cross_entropy`` would; the
weights' gradient is summed over the chunks in fp32. Letters: N target positions, M features, V vocabulary, C chunk
rows.
"""

from __future__ import annotations

import torch
from torch import Tensor

CHUNK = 1024  # rows of logits at a time: (C, V) floats, 33 MB at V = 8,000


class _OutputCrossEntropy(torch.autograd.Function):
    """Summed label-smoothed cross-entropy of ``f W^T + b`` against ``gold``, computed in chunks of rows."""

    @staticmethod
    def forward(ctx, features: Tensor, weight: Tensor, bias: Tensor | None, gold: Tensor, smoothing: float,
                chunk: int) -> Tensor:
        vocab, low = weight.shape[0], features.dtype  # low: the products' dtype (bf16 under autocast)
        acc = torch.promote_types(low, torch.float32)  # the softmax's, the loss's and the sums' dtype
        grad_f, grad_w = torch.empty_like(features), torch.zeros_like(weight, dtype=acc)
        grad_b = torch.zeros_like(bias, dtype=acc) if bias is not None else None
        total = features.new_zeros((), dtype=acc)
        for start in range(0, features.shape[0], chunk):
            f, y = features[start : start + chunk], gold[start : start + chunk]  # (C, M), (C,)
            logits = (f @ weight.t() if bias is None else torch.addmm(bias, f, weight.t())).to(acc)  # (C, V)
            lse = logits.logsumexp(-1, keepdim=True)  # (C, 1)
            # (1 - eps) * -log p(y) + eps * mean over the vocabulary of -log p(v)
            nll = lse.squeeze(1) - logits.gather(1, y.unsqueeze(1)).squeeze(1)
            total += (1 - smoothing) * nll.sum() + smoothing * (lse.squeeze(1) - logits.mean(-1)).sum()
            grad = logits.sub_(lse).exp_()  # softmax, in the logits' memory
            if smoothing:
                grad.sub_(smoothing / vocab)
            grad[torch.arange(len(y), device=y.device), y] -= 1 - smoothing  # d loss / d logits
            if grad_b is not None:
                grad_b += grad.sum(0)
            grad = grad.to(low)
            torch.mm(grad, weight, out=grad_f[start : start + chunk])
            if low == acc:
                grad_w.addmm_(grad.t(), f)
            else:
                grad_w += grad.t() @ f
        ctx.save_for_backward(grad_f, grad_w.to(weight.dtype), None if grad_b is None else grad_b.to(bias.dtype))
        return total

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        grad_f, grad_w, grad_b = ctx.saved_tensors
        return grad_f * grad_out, grad_w * grad_out, None if grad_b is None else grad_b * grad_out, None, None, None


def output_cross_entropy(features: Tensor, weight: Tensor, bias: Tensor | None, gold: Tensor,
                         smoothing: float = 0.0, chunk: int = CHUNK) -> Tensor:
    """Summed cross-entropy of the output layer ``features @ weight.T + bias`` against ``gold``.

    :param features: (N, M). :param weight: (V, M). :param bias: (V,) or None. :param gold: (N,) ids.
    :param smoothing: label smoothing. :param chunk: rows at a time.
    :return: a scalar (float32 under autocast); its gradients reach features, weight and bias.
    """
    device = features.device.type
    if not torch.is_autocast_enabled(device):
        return _OutputCrossEntropy.apply(features, weight, bias, gold, smoothing, chunk)
    low = torch.get_autocast_dtype(device)
    if low != torch.bfloat16:
        raise ValueError(f"output_cross_entropy: autocast to {low} is not supported (bf16 or none)")
    with torch.autocast(device, enabled=False):  # the casts below are autograd's, so gradients return in fp32
        return _OutputCrossEntropy.apply(features.to(low), weight.to(low), None if bias is None else bias.to(low),
                                         gold, smoothing, chunk)
