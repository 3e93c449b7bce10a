"""Smoke test that the whole model learns: reverse a short sequence of symbols (JoeyNMT's reverse task).

Without attention (arch=cho2014) the summary c must hold the entire source, so sequences are kept short
(3–7 symbols out of 10) and the hidden state adequate; RNNsearch learns the same task through its
attention. About 1,200 Adam updates, a few seconds on one core per model.
"""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
import torch

from nmt.config import ModelConfig
from nmt.data.batching import BatchIterator
from nmt.data.tokenizer import EOS
from nmt.decoding.search import greedy
from nmt.model import build_model
from nmt.model.base import TranslationModel

V = 14  # ids 0-3 are PAD UNK BOS EOS; symbols are 4..13
MIN_LEN, MAX_LEN = 3, 7
STEPS, LR, BATCH_TOKENS = 1200, 5e-3, 600


def _sequences(rng: random.Random, n: int, exclude: set[tuple[int, ...]]) -> list[list[int]]:
    out: list[list[int]] = []
    while len(out) < n:
        seq = [rng.randrange(EOS + 1, V) for _ in range(rng.randint(MIN_LEN, MAX_LEN))]
        if tuple(seq) not in exclude:
            out.append(seq)
    return out


def _exact_match(model: TranslationModel, src: list[list[int]]) -> float:
    model.eval()
    it = BatchIterator(src, [s[::-1] for s in src], 10_000, shuffle=False, seed=0)
    correct = 0
    for idx in it.epoch(0):
        b = it.make(idx)
        hyps = [h.tokens for h in greedy(model, b.src, b.src_len, b.src_len + 3)]
        correct += sum(h == src[i][::-1] for h, i in zip(hyps, idx, strict=True))
    model.train()
    return correct / len(src)


@pytest.mark.parametrize("arch", ["cho2014", "rnnsearch"])
def test_learns_to_reverse_sequences(arch: str) -> None:
    rng = random.Random(0)
    torch.manual_seed(0)
    held_out = _sequences(rng, 200, exclude=set())
    train = _sequences(rng, 30_000, exclude={tuple(s) for s in held_out})
    batches = BatchIterator(train, [s[::-1] for s in train], BATCH_TOKENS, shuffle=True, seed=0)

    cfg = replace(ModelConfig(), arch=arch, emb_dim=24, hidden_dim=96, attention_dim=32, maxout_dim=32, dropout=0.0,
                  init="torch")
    model = build_model(cfg, V, V)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    # constant for the first half, then linearly down to zero: the last steps polish the fit
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: min(1.0, 2 * (1 - k / STEPS)))
    assert _exact_match(model, held_out) < 0.05

    step, epoch, losses = 0, 0, []
    while step < STEPS:
        for idx in batches.epoch(epoch):
            b = batches.make(idx)
            loss = model.loss(b) / b.n_tgt_tokens
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(loss.item())
            step += 1
            if step == STEPS:
                break
        epoch += 1

    assert sum(losses[-50:]) / 50 < 0.1 * sum(losses[:50]) / 50
    assert _exact_match(model, held_out) >= 0.9
